namespace DbMigration.Operations;

/// <summary>Work that runs beside other work it must stop when it fails.</summary>
internal static class TaskFailures
{
    /// <summary>
    /// <paramref name="task"/>, which cancels <paramref name="stop"/> when it fails and only then completes: awaiting it
    /// means the cancellation has been requested, so no callback can outlive the source.
    /// </summary>
    public static async Task StopOnFailure(this Task task, CancellationTokenSource stop)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch
        {
            await stop.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc cref="StopOnFailure(Task, CancellationTokenSource)"/>
    public static async Task<T> StopOnFailure<T>(this Task<T> task, CancellationTokenSource stop)
    {
        await ((Task)task).StopOnFailure(stop).ConfigureAwait(false);
        return await task.ConfigureAwait(false);
    }
}
