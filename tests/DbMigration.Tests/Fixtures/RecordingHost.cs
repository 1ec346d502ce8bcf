using System.Collections.Concurrent;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.Tests.Fixtures;

/// <summary>
/// Records everything a cmdlet says, and the thread it said it on. <see cref="WhatIf"/> makes ShouldProcess
/// answer no, as -WhatIf does.
/// </summary>
internal sealed class RecordingHost(string? currentDirectory = null) : ICmdletHost
{
    public string CurrentDirectory { get; } = currentDirectory ?? Environment.CurrentDirectory;

    /// <summary>Replaces <see cref="ResolvePath"/>'s own rule, for a test that needs a path refused.</summary>
    public Func<string, string>? Resolver { get; init; }

    /// <summary>Relative paths against <see cref="CurrentDirectory"/>, and ~ as the home folder, as pwsh resolves them.</summary>
    public string ResolvePath(string path)
    {
        CallingThreads.Add(Environment.CurrentManagedThreadId);
        if (Resolver is not null)
        {
            return Resolver(path);
        }

        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            path = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.TrimStart('~', '/'));
        }

        return Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(CurrentDirectory, path));
    }

    public bool WhatIf { get; init; }

    public List<object> Objects { get; } = [];

    public List<DbMigrationException> Errors { get; } = [];

    public List<string> Verbose { get; } = [];

    public List<string> Warnings { get; } = [];

    public List<ProgressUpdate> Progress { get; } = [];

    public List<(string Target, string Action)> ShouldProcessCalls { get; } = [];

    public ConcurrentBag<int> CallingThreads { get; } = [];

    public IEnumerable<T> ObjectsOf<T>() => Objects.OfType<T>();

    public void WriteObject(object item) => Record(() => Objects.Add(item));

    public void WriteError(DbMigrationException error) => Record(() => Errors.Add(error));

    public void WriteVerbose(string text) => Record(() => Verbose.Add(text));

    public void WriteWarning(string text) => Record(() => Warnings.Add(text));

    public void WriteDebug(string text) => Record(() => { });

    public void WriteProgress(ProgressUpdate progress) => Record(() => Progress.Add(progress));

    public bool ShouldProcess(string target, string action)
    {
        Record(() => ShouldProcessCalls.Add((target, action)));
        return !WhatIf;
    }

    public bool ShouldContinue(string query, string caption) => !WhatIf;

    private void Record(Action action)
    {
        CallingThreads.Add(Environment.CurrentManagedThreadId);
        action();
    }
}
