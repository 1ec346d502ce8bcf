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
    public static string? Find(params string[] names)
    {
        if (Hidden.Value)
        {
            return null;
        }

        var candidates = new List<string>();
        foreach (var name in names)
        {
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                candidates.Add(Path.Combine(dir, name));
            }

            if (Directory.Exists("/usr/lib/postgresql"))
            {
                candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin", name)));
            }

            candidates.Add(Path.Combine("/usr/bin", name));
        }

        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a tool; stdout goes to <paramref name="stdoutPath"/> when given. Throws with stderr on failure.</summary>
    public static async Task RunAsync(string tool, IEnumerable<string> arguments, IDictionary<string, string?> environment, string? stdinPath, string? stdoutPath, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = stdoutPath is not null,
            RedirectStandardInput = stdinPath is not null,
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

        using var process = Process.Start(info) ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled, $"Could not start {tool}.");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        using var kill = cancellationToken.Register(() =>
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        });

        var pumps = new List<Task>();
        if (stdoutPath is not null)
        {
            pumps.Add(Task.Run(async () =>
            {
                await using var output = Backups.SecureFiles.Create(stdoutPath, 1 << 20);
                await process.StandardOutput.BaseStream.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
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
                        await input.CopyToAsync(process.StandardInput.BaseStream, cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException)
                    {
                        // The tool exited early; its exit code and stderr say why.
                    }
                }

                process.StandardInput.Close();
            }, cancellationToken));
        }

        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(pumps).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (process.ExitCode != 0)
        {
            string text;
            lock (stderr)
            {
                text = stderr.ToString().Trim();
            }

            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.InvalidOperation,
                $"{Path.GetFileName(tool)} exited with code {process.ExitCode}: {text}")
            { Target = Path.GetFileName(tool) };
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

    private sealed class Restore : IDisposable
    {
        public void Dispose() => Hidden.Value = false;
    }
}
