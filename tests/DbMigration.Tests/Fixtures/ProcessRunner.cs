using System.Diagnostics;
using System.Text;

namespace DbMigration.Tests.Fixtures;

internal sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    public string Describe(string command) => $"'{command}' exited {ExitCode}.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
}

/// <summary>Runs helper programs (initdb, pg_ctl, mariadbd, the test host) with a time limit.</summary>
internal static class ProcessRunner
{
    public static bool IsRoot => !OperatingSystem.IsWindows() && Environment.UserName == "root";

    public static ProcessStartInfo StartInfo(string file, IEnumerable<string> arguments, string? runAsUser = null, IDictionary<string, string>? environment = null)
    {
        ProcessStartInfo info;
        if (runAsUser is not null && IsRoot)
        {
            info = new ProcessStartInfo("runuser") { ArgumentList = { "-u", runAsUser, "--", file } };
        }
        else
        {
            info = new ProcessStartInfo(file);
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.RedirectStandardInput = true;
        info.UseShellExecute = false;
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        return info;
    }

    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> arguments, TimeSpan timeout, string? runAsUser = null, IDictionary<string, string>? environment = null, string? standardInput = null)
    {
        using var process = Process.Start(StartInfo(file, arguments, runAsUser, environment))
            ?? throw new InvalidOperationException("Could not start " + file);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{file} {string.Join(' ', arguments)}' did not finish within {timeout}.");
        }

        process.WaitForExit();
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static async Task<ProcessResult> RunCheckedAsync(string file, IEnumerable<string> arguments, TimeSpan timeout, string? runAsUser = null, IDictionary<string, string>? environment = null, string? standardInput = null)
    {
        var list = arguments.ToList();
        var result = await RunAsync(file, list, timeout, runAsUser, environment, standardInput);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(result.Describe(file + " " + string.Join(' ', list)));
        }

        return result;
    }

    public static int FreeTcpPort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Makes a temp folder the service user can own (servers refuse to run as root).</summary>
    public static async Task<string> CreateServiceDirectoryAsync(string prefix, string? owner)
    {
        var dir = Path.Combine(Path.GetTempPath(), prefix + "-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        if (owner is not null && IsRoot)
        {
            await RunCheckedAsync("chown", [owner + ":", dir], TimeSpan.FromSeconds(30));
        }

        return dir;
    }

    /// <summary>Finds a server binary: an override folder, the Debian versioned folders, then PATH.</summary>
    public static string FindBinary(string name, string? overrideVariable, params string[] globRoots)
    {
        if (overrideVariable is not null && Environment.GetEnvironmentVariable(overrideVariable) is { Length: > 0 } dir && File.Exists(Path.Combine(dir, name)))
        {
            return Path.Combine(dir, name);
        }

        foreach (var root in globRoots)
        {
            if (!Directory.Exists(root))
            {
                continue;
            }

            var match = Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin", name))
                .Where(File.Exists)
                .OrderByDescending(p => p, StringComparer.Ordinal)
                .FirstOrDefault();
            if (match is not null)
            {
                return match;
            }
        }

        foreach (var pathDir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator).Concat(["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin"]))
        {
            var candidate = Path.Combine(pathDir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"'{name}' was not found. Install the server package (see .ci/run) or set {overrideVariable ?? "PATH"}.");
    }
}
