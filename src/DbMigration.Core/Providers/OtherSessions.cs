using System.Data.Common;
using System.Diagnostics;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>Who else is connected, once DbMigration's own idle connections have gone.</summary>
internal static class OtherSessions
{
    /// <summary>
    /// Lists the other sessions on the target, re-reading for up to <paramref name="grace"/> while any are listed:
    /// a server lists a session for a moment after its client closed it, DbMigration's own released pooled
    /// connections included, and those must not be reported as someone else's.
    /// </summary>
    public static async Task<IReadOnlyList<SessionInfo>> ListSettledAsync(IDatabaseProvider provider, DatabaseTarget target, DbConnection connection, TimeSpan grace, CancellationToken cancellationToken)
    {
        var sessions = await provider.GetOtherSessionsAsync(target, connection, cancellationToken).ConfigureAwait(false);
        var waited = Stopwatch.StartNew();
        while (sessions.Count > 0 && waited.Elapsed < grace)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            sessions = await provider.GetOtherSessionsAsync(target, connection, cancellationToken).ConfigureAwait(false);
        }

        return sessions;
    }
}
