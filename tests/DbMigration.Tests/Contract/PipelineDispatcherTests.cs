using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

public sealed class PipelineDispatcherTests
{
    [Fact]
    public void Writes_from_worker_threads_arrive_in_order_on_the_calling_thread()
    {
        var host = new RecordingHost();
        PipelineDispatcher.Run(host, async (h, ct) =>
        {
            for (var i = 0; i < 3000; i++)
            {
                h.WriteObject(i);
                if (i % 500 == 0)
                {
                    await Task.Yield();
                }
            }
        }, CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, 3000).Cast<object>(), host.Objects);
        Assert.Equal([Environment.CurrentManagedThreadId], host.CallingThreads.Distinct());
    }

    [Fact]
    public void ShouldProcess_answers_reach_the_worker()
    {
        var answers = new List<bool>();
        PipelineDispatcher.Run(new RecordingHost { WhatIf = true }, (h, ct) =>
        {
            answers.Add(h.ShouldProcess("db", "drop"));
            return Task.CompletedTask;
        }, CancellationToken.None);
        Assert.Equal([false], answers);
    }

    [Fact]
    public void A_failing_worker_surfaces_its_exception_unchanged()
    {
        var ex = Assert.Throws<DbMigrationException>(() => PipelineDispatcher.Run(new RecordingHost(), (h, ct) =>
            throw new DbMigrationException(ErrorIds.LockTimeout, ErrorKind.ResourceBusy, "busy"), CancellationToken.None));
        Assert.Equal(ErrorIds.LockTimeout, ex.ErrorId);
    }

    [Fact]
    public void A_host_that_refuses_a_write_stops_the_worker()
    {
        var produced = 0;
        var host = new ThrowingHost(after: 5);
        Assert.Throws<InvalidOperationException>(() => PipelineDispatcher.Run(host, async (h, ct) =>
        {
            for (var i = 0; i < 1_000_000; i++)
            {
                ct.ThrowIfCancellationRequested();
                h.WriteObject(i);
                Interlocked.Increment(ref produced);
                await Task.Yield();
            }
        }, CancellationToken.None));
        Assert.True(produced < 1_000_000, "the worker kept producing after the host failed");
    }

    [Fact]
    public void Work_stopped_by_Ctrl_C_can_still_write_while_it_cleans_up()
    {
        using var stop = new CancellationTokenSource();
        var cleanedUp = false;
        Assert.ThrowsAny<OperationCanceledException>(() => PipelineDispatcher.Run(new RecordingHost(), async (h, ct) =>
        {
            try
            {
                stop.Cancel();
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                // A failed backup logs (and echoes to -Verbose) before it removes its partial folder.
                h.WriteVerbose("FAILED: stopped");
                h.WriteProgress(new DbMigration.Operations.ProgressUpdate(1, "work", "stopped", 0));
                cleanedUp = true;
                throw;
            }
        }, stop.Token));
        Assert.True(cleanedUp, "a write during cleanup threw, so the cleanup never finished");
    }

    private sealed class ThrowingHost(int after) : ICmdletHost
    {
        private int _writes;

        public string ResolvePath(string path) => Path.GetFullPath(path);

        public void WriteObject(object item)
        {
            if (++_writes > after)
            {
                throw new InvalidOperationException("pipeline stopped");
            }
        }

        public void WriteError(DbMigrationException error)
        {
        }

        public void WriteVerbose(string text)
        {
        }

        public void WriteWarning(string text)
        {
        }

        public void WriteDebug(string text)
        {
        }

        public void WriteProgress(DbMigration.Operations.ProgressUpdate progress)
        {
        }

        public bool ShouldProcess(string target, string action) => true;

        public bool ShouldContinue(string query, string caption) => true;
    }
}

public sealed class PathResolutionTests
{
    [Fact]
    public void Paths_are_resolved_on_the_calling_thread_for_work_on_the_thread_pool()
    {
        var host = new RecordingHost("/srv/app");
        string? resolved = null;
        PipelineDispatcher.Run(host, async (h, ct) =>
        {
            await Task.Yield();
            resolved = h.ResolvePath("data/events.db");
        }, CancellationToken.None);

        Assert.Equal(Path.GetFullPath("/srv/app/data/events.db"), resolved);
        Assert.Equal([Environment.CurrentManagedThreadId], host.CallingThreads.Distinct());
    }

    [Fact]
    public void A_path_the_host_refuses_fails_the_work_with_its_error_and_the_host_keeps_working()
    {
        var refused = new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument, "not a file-system path");
        var host = new RecordingHost { Resolver = _ => throw refused };
        DbMigrationException? seen = null;
        PipelineDispatcher.Run(host, async (h, ct) =>
        {
            await Task.Yield();
            seen = Assert.Throws<DbMigrationException>(() => h.ResolvePath("Env:/PATH"));
            h.WriteObject("after");
        }, CancellationToken.None);

        Assert.Same(refused, seen);
        Assert.Equal(["after"], host.Objects);
    }
}

public sealed class LateMessageTests
{
    [Fact]
    public async Task A_message_posted_after_the_call_ended_is_dropped_not_thrown()
    {
        ICmdletHost? captured = null;
        var host = new RecordingHost();
        PipelineDispatcher.Run(host, (h, ct) =>
        {
            captured = h;
            h.WriteObject(1);
            return Task.CompletedTask;
        }, CancellationToken.None);

        await Task.Run(() => captured!.WriteProgress(new DbMigration.Operations.ProgressUpdate(1, "late", "late")));
        Assert.Equal([1], host.Objects);
        Assert.Empty(host.Progress);
    }
}
