using System.Diagnostics;
using DbMigration.Targets;

namespace DbMigration.Tests.Fixtures;

/// <summary>Runs tests/DbMigration.TestHost as a separate OS process and reads its stdout line by line.</summary>
internal sealed class TestHostProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Threading.Channels.Channel<string> _lines = System.Threading.Channels.Channel.CreateUnbounded<string>();
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _errors = new();

    private TestHostProcess(Process process)
    {
        _process = process;
        // A null line marks the end of stdout; Exited can fire before the last lines are delivered.
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _lines.Writer.TryComplete();
            }
            else
            {
                _lines.Writer.TryWrite(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _errors.Enqueue(e.Data);
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static TestHostProcess StartLock(DatabaseTarget target, string? password, string lockName, int holdMs, int timeoutMs)
    {
        if (!File.Exists(Repo.TestHostDll))
        {
            throw new InvalidOperationException("The test host was not built: " + Repo.TestHostDll);
        }

        var environment = new Dictionary<string, string>();
        if (password is not null)
        {
            environment[DatabaseTarget.PasswordEnvironmentVariable] = password;
        }

        var info = ProcessRunner.StartInfo("dotnet", [Repo.TestHostDll, "lock", target.ToString(), lockName, holdMs.ToString(System.Globalization.CultureInfo.InvariantCulture), timeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture)], environment: environment);
        return new TestHostProcess(Process.Start(info) ?? throw new InvalidOperationException("Could not start the test host."));
    }

    /// <summary>Starts the test host with any command (backup, restore).</summary>
    public static TestHostProcess Start(string? password, params string[] arguments)
    {
        var environment = new Dictionary<string, string>();
        if (password is not null)
        {
            environment[DatabaseTarget.PasswordEnvironmentVariable] = password;
        }

        return StartWith(environment, arguments);
    }

    /// <summary>Starts the test host with extra environment variables (a TMPDIR of the test's own, say).</summary>
    public static TestHostProcess StartWith(Dictionary<string, string> environment, params string[] arguments)
    {
        var info = ProcessRunner.StartInfo("dotnet", [Repo.TestHostDll, .. arguments], environment: environment);
        return new TestHostProcess(Process.Start(info) ?? throw new InvalidOperationException("Could not start the test host."));
    }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>What the host wrote to stderr so far, for assertion messages.</summary>
    public string Errors => string.Join(Environment.NewLine, _errors);

    /// <summary>Waits for the next line of output, failing the test if none comes in time.</summary>
    public async Task<string> NextLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _lines.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("The test host printed nothing within " + timeout);
        }
        catch (System.Threading.Channels.ChannelClosedException)
        {
            throw new InvalidOperationException("The test host exited without printing; exit code " + (_process.HasExited ? _process.ExitCode : -1));
        }
    }

    /// <summary>
    /// The host's next line, or, when it exits without one (an unhandled exception), null once it has exited and its
    /// stderr is all in <see cref="Errors"/>.
    /// </summary>
    public async Task<string?> LastLineAsync(TimeSpan timeout)
    {
        try
        {
            return await NextLineAsync(timeout);
        }
        catch (InvalidOperationException)
        {
            await WaitForExitAsync(TimeSpan.FromSeconds(30));
            return null;
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
