using System.Diagnostics;
using System.Text;
using DbMigration.Errors;

namespace DbMigration.IO;

/// <summary>Finds and runs the engines' own dump tools (pg_dump, mariadb-dump). Passwords go in the environment, never in arguments.</summary>
internal static class ExternalTool
{
    private static readonly AsyncLocal<bool> Hidden = new();

    /// <summary>Test: within the current async flow, behave as if no external tool were installed.</summary>
    internal static IDisposable HideAll()
    {
        Hidden.Value = true;
        return new Restore();
    }

    /// <summary>The first of <paramref name="names"/> on PATH or in the Debian server folders; newest version first.</summary>
    public static string? Find(params string[] names) => FindOn(Environment.GetEnvironmentVariable("PATH") ?? string.Empty, names);

    /// <summary><see cref="Find"/> with <paramref name="path"/> in place of the PATH variable.</summary>
    internal static string? FindOn(string path, params string[] names)
    {
        if (Hidden.Value)
        {
            return null;
        }

        var candidates = new List<string>();
        foreach (var name in names)
        {
            foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                candidates.Add(Path.Combine(dir, name));
            }

            if (Directory.Exists("/usr/lib/postgresql"))
            {
                candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin", name)));
            }

            candidates.Add(Path.Combine("/usr/bin", name));
        }

        // Debian's /usr/bin/pg_dump and pg_restore link to pg_wrapper, a Perl script that costs about 55 ms a call
        // to pick the newest installed binary for a host connection: that binary, found above, is called directly.
        return candidates.Where(File.Exists).OrderBy(IsDebianWrapper).FirstOrDefault();
    }

    private static bool IsDebianWrapper(string path) =>
        new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.Name == "pg_wrapper";

    /// <summary>Runs a tool; stdout goes to <paramref name="stdoutPath"/> when given. Throws with stderr on failure.</summary>
    public static async Task RunAsync(string tool, IEnumerable<string> arguments, IDictionary<string, string?> environment, string? stdinPath, string? stdoutPath, CancellationToken cancellationToken)
    {
        using var run = new ToolRun(tool, arguments, environment, stdoutPath is not null, stdinPath is not null, cancellationToken);
        var pumps = new List<Task>();
        if (stdoutPath is not null)
        {
            pumps.Add(Task.Run(async () =>
            {
                await using var output = Backups.SecureFiles.Create(stdoutPath, 1 << 20);
                await run.Process.StandardOutput.BaseStream.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }, cancellationToken));
        }

        if (stdinPath is not null)
        {
            pumps.Add(Task.Run(async () =>
            {
                await using (var input = new FileStream(stdinPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan))
                {
                    try
                    {
                        await input.CopyToAsync(run.Process.StandardInput.BaseStream, cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException)
                    {
                        // The tool exited early; its exit code and stderr say why.
                    }
                }

                run.Process.StandardInput.Close();
            }, cancellationToken));
        }

        await run.Process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(pumps).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        run.ThrowIfFailed();
    }

    /// <summary>
    /// Runs a tool and hands its stdout to <paramref name="consume"/> as the tool writes it. A consumer that finds the
    /// output cut short throws <see cref="EndOfStreamException"/>: the tool's exit code and stderr then say why. A
    /// consumer failing otherwise stops the tool.
    /// </summary>
    public static async Task<T> RunReadingAsync<T>(string tool, IEnumerable<string> arguments, IDictionary<string, string?> environment, Func<Stream, Task<T>> consume, CancellationToken cancellationToken)
    {
        using var run = new ToolRun(tool, arguments, environment, redirectOutput: true, redirectInput: false, cancellationToken);
        var output = run.Process.StandardOutput.BaseStream;
        try
        {
            var result = await consume(output).ConfigureAwait(false);
            if (output.CanRead)
            {
                // Whatever the consumer left unread, so that the tool can finish writing and exit.
                await output.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            }

            await run.Process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            run.ThrowIfFailed();
            return result;
        }
        catch (EndOfStreamException) when (!cancellationToken.IsCancellationRequested)
        {
            // The output ended early because the tool closed it on its way out: its own error says why.
            await run.Process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            run.ThrowIfFailed();
            throw;
        }
    }

    /// <summary>"pg_dump (PostgreSQL) 15.18" → 15.</summary>
    public static async Task<int> MajorVersionAsync(string tool, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(tool, "--version") { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(info)!;
        var text = await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        var digits = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('.')[0]).FirstOrDefault(p => p.Length > 0 && p.All(char.IsAsciiDigit));
        return digits is null ? 0 : int.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>One started tool: its process, its stderr as it arrives, and a kill on cancellation.</summary>
    private sealed class ToolRun : IDisposable
    {
        private readonly string _tool;
        private readonly ToolErrorText _stderr = new();
        private readonly CancellationTokenRegistration _kill;

        public ToolRun(string tool, IEnumerable<string> arguments, IDictionary<string, string?> environment, bool redirectOutput, bool redirectInput, CancellationToken cancellationToken)
        {
            _tool = tool;
            var info = new ProcessStartInfo(tool)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = redirectOutput,
                RedirectStandardInput = redirectInput,
                UseShellExecute = false,
            };
            foreach (var argument in arguments)
            {
                info.ArgumentList.Add(argument);
            }

            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }

            Process = Process.Start(info) ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled, $"Could not start {tool}.");
            Process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (_stderr)
                    {
                        _stderr.Add(e.Data);
                    }
                }
            };
            Process.BeginErrorReadLine();
            _kill = cancellationToken.Register(Kill);
        }

        public Process Process { get; }

        public void ThrowIfFailed()
        {
            if (Process.ExitCode == 0)
            {
                return;
            }

            string text;
            lock (_stderr)
            {
                text = _stderr.ToString();
            }

            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.InvalidOperation,
                $"{Path.GetFileName(_tool)} exited with code {Process.ExitCode}: {text}")
            { Target = Path.GetFileName(_tool) };
        }

        public void Dispose()
        {
            _kill.Dispose();
            if (!Process.HasExited)
            {
                Kill();
            }

            Process.Dispose();
        }

        private void Kill()
        {
            try
            {
                Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    private sealed class Restore : IDisposable
    {
        public void Dispose() => Hidden.Value = false;
    }
}

/// <summary>
/// What a failed tool said, kept to a readable size: a client echoes the statement it failed on, and one row of a dump
/// can be many megabytes, which would otherwise fill the error, the log and memory. The first and last lines are
/// kept (the cause is usually in one of them), each cut at a length a person reads.
/// </summary>
internal sealed class ToolErrorText
{
    private const int LinesKept = 20;
    private const int LineLength = 1_000;
    private readonly List<string> _first = [];
    private readonly Queue<string> _last = new();
    private int _left;

    public void Add(string line)
    {
        if (line.Length > LineLength)
        {
            line = string.Concat(line.AsSpan(0, LineLength), $"… ({line.Length - LineLength:N0} more characters)");
        }

        if (_first.Count < LinesKept)
        {
            _first.Add(line);
            return;
        }

        _last.Enqueue(line);
        if (_last.Count > LinesKept)
        {
            _last.Dequeue();
            _left++;
        }
    }

    public override string ToString()
    {
        var lines = _left == 0 ? _first.Concat(_last) : _first.Append($"… ({_left:N0} more lines)").Concat(_last);
        return string.Join(Environment.NewLine, lines).Trim();
    }
}
