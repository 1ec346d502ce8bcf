using System.Collections.Concurrent;
using DbMigration.Errors;
using DbMigration.Operations;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>
/// Runs a cmdlet's async logic on the thread pool while the calling (pipeline) thread performs every host call.
/// PowerShell allows Write* and ShouldProcess only on the pipeline thread; the worker queues them here, and waits
/// for ShouldProcess answers. The queue is bounded, so a slow pipeline slows the producer instead of buffering a
/// whole result set.
/// </summary>
internal static class PipelineDispatcher
{
    private const int QueueCapacity = 1024;

    public static void Run(ICmdletHost pipelineHost, Func<ICmdletHost, CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var queue = new BlockingCollection<Action>(QueueCapacity);
        var proxy = new QueuedHost(pipelineHost, queue, linked.Token);
        var task = Task.Run(() => work(proxy, linked.Token), linked.Token);
        _ = task.ContinueWith(_ => queue.CompleteAdding(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        Exception? hostFailure = null;
        foreach (var action in queue.GetConsumingEnumerable(CancellationToken.None))
        {
            if (hostFailure is not null)
            {
                continue;
            }

            try
            {
                action();
            }
            catch (Exception ex)
            {
                // The host refused (pipeline stopped, a downstream error): stop the work, drain, rethrow below.
                hostFailure = ex;
                linked.Cancel();
            }
        }

        try
        {
            task.GetAwaiter().GetResult();
        }
        catch (Exception) when (hostFailure is not null)
        {
            // The work only failed because we cancelled it.
        }

        proxy.Close();
        if (hostFailure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(hostFailure).Throw();
        }
    }

    private sealed class QueuedHost(ICmdletHost inner, BlockingCollection<Action> queue, CancellationToken cancellationToken) : ICmdletHost
    {
        private volatile bool _closed;

        /// <summary>After this, posts are dropped: the call is over and its queue is about to be disposed.</summary>
        public void Close() => _closed = true;

        // PowerShell's session state may only be read on the pipeline thread.
        public string ResolvePath(string path) => Ask(() => inner.ResolvePath(path));

        public void WriteObject(object item) => Post(() => inner.WriteObject(item));

        public void WriteError(DbMigrationException error) => Post(() => inner.WriteError(error));

        public void WriteVerbose(string text) => Post(() => inner.WriteVerbose(text));

        public void WriteWarning(string text) => Post(() => inner.WriteWarning(text));

        public void WriteDebug(string text) => Post(() => inner.WriteDebug(text));

        public void WriteProgress(ProgressUpdate progress) => Post(() => inner.WriteProgress(progress));

        public bool ShouldProcess(string target, string action) => Ask(() => inner.ShouldProcess(target, action));

        public bool ShouldContinue(string query, string caption) => Ask(() => inner.ShouldContinue(query, caption));

        private void Post(Action action)
        {
            // Messages that arrive after the call has finished, or while it is being stopped, have nowhere to go.
            // Dropping them beats throwing into the work's own cleanup (a failed backup removing its partial folder
            // logs as it goes) or crashing a pool thread.
            if (_closed || cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                queue.Add(action, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException && (_closed || queue.IsAddingCompleted))
            {
            }
        }

        /// <summary>Runs <paramref name="question"/> on the pipeline thread and waits for its answer.</summary>
        private T Ask<T>(Func<T> question)
        {
            var answer = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(() =>
            {
                try
                {
                    answer.SetResult(question());
                }
                catch (DbMigrationException ex)
                {
                    // The work's own error to report (a path that does not resolve), not a reason to stop the host.
                    answer.SetException(ex);
                }
                catch (Exception ex)
                {
                    answer.SetException(ex);
                    throw;
                }
            });
            return answer.Task.WaitAsync(cancellationToken).GetAwaiter().GetResult();
        }
    }
}
