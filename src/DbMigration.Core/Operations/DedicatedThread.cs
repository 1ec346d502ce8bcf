namespace DbMigration.Operations;

/// <summary>
/// Runs blocking work (hashing, fsync, SQLite scans) on a thread of its own. On the thread pool, with as few
/// threads as cores, several such items starve the pool: a queued item, or a FileStream read, then waits for the
/// pool to inject a thread, which it does about twice a second.
/// </summary>
internal static class DedicatedThread
{
    public static Task<T> Run<T>(Func<T> work, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public static Task Run(Action work, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
