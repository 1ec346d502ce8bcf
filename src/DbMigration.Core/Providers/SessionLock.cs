using System.Data;
using System.Data.Common;

namespace DbMigration.Providers;

/// <summary>
/// A lock held by a server session (a PostgreSQL advisory lock, a MySQL GET_LOCK): released by a statement on
/// dispose, or by the session's end. A lock on a connection of its own closes that connection too; a lock on the
/// caller's connection leaves it open.
/// </summary>
internal sealed class SessionLock(string name, string resource, DbConnection connection, bool ownsConnection, string releaseSql, object key, Action<DbConnection> discardSession) : IDatabaseLock
{
    private DbConnection? _connection = connection;

    public string Name { get; } = name;

    public string Resource { get; } = resource;

    public async ValueTask DisposeAsync()
    {
        var held = Interlocked.Exchange(ref _connection, null);
        if (held is null)
        {
            return;
        }

        if (ownsConnection)
        {
            try
            {
                await ReleaseAsync(held).ConfigureAwait(false);
            }
            finally
            {
                // Closing the session releases the lock even if the statement above failed.
                await held.DisposeAsync().ConfigureAwait(false);
            }

            return;
        }

        if (held.State != ConnectionState.Open)
        {
            return; // a closed session holds no locks
        }

        try
        {
            await ReleaseAsync(held).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or IOException)
        {
            // The caller's own failure is the one to report. The session must not go back to the pool still holding
            // the lock: its pool ends it instead.
            discardSession(held);
        }
    }

    private async Task ReleaseAsync(DbConnection held)
    {
        await using var command = held.CreateCommand(releaseSql).AddParameter("@key", key);
        await command.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
    }
}
