using Microsoft.Data.Sqlite;

namespace DbMigration.Providers.Sqlite;

/// <summary>
/// Flushes the file a long write transaction is filling to disk from the thread pool, a piece at a time, while the
/// connection's own thread keeps writing. The commit's fsync then finds little left to write, and the flushing
/// happens on an otherwise idle core. The commit still syncs, so durability is SQLite's as before. The owner must
/// await <see cref="WhenIdleAsync"/> before the transaction ends, so the VFS is never used from two threads then.
/// </summary>
internal sealed class SqliteBackgroundSync(SqliteConnection connection, bool walMode, bool enabled)
{
    private Task<int> _inFlight = Task.FromResult(0);

    /// <summary>Starts a flush unless one is still running; called on the connection's thread.</summary>
    public void Nudge()
    {
        if (!enabled || !_inFlight.IsCompleted || connection.Handle is not { IsInvalid: false } handle)
        {
            return;
        }

        var db = handle.DangerousGetHandle();
        // A failed early flush only leaves more to the commit, whose own fsync reports any real I/O error.
        _inFlight = Task.Run(() => SqliteNative.SyncTransactionFile(db, walMode), CancellationToken.None);
    }

    /// <summary>Completes when no flush is running, with SQLite's result code of the last one (0 for none).</summary>
    public Task<int> WhenIdleAsync() => _inFlight;
}
