namespace DbMigration.Operations;

/// <summary>What a long-running core service reports while it works: progress or a message.</summary>
public abstract record OperationUpdate;

/// <summary>Progress of one activity. <see cref="Completed"/> closes the bar.</summary>
public sealed record ProgressUpdate(
    int ActivityId,
    string Activity,
    string Status,
    double? PercentComplete = null,
    TimeSpan? Remaining = null,
    string? CurrentOperation = null,
    bool Completed = false) : OperationUpdate;

public enum MessageLevel
{
    Debug,
    Verbose,
    Information,
    Warning,
}

/// <summary>A message for the verbose, warning or information stream.</summary>
public sealed record MessageUpdate(MessageLevel Level, string Text) : OperationUpdate;

/// <summary>Small helpers so services can report without null checks everywhere.</summary>
public static class OperationUpdateExtensions
{
    public static void Verbose(this IProgress<OperationUpdate>? progress, string text) =>
        progress?.Report(new MessageUpdate(MessageLevel.Verbose, text));

    public static void Warning(this IProgress<OperationUpdate>? progress, string text) =>
        progress?.Report(new MessageUpdate(MessageLevel.Warning, text));
}
