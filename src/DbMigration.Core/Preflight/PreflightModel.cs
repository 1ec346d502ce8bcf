using DbMigration.Targets;

namespace DbMigration.Preflight;

public enum PreflightStatus
{
    Passed,
    Warning,
    Failed,
    Skipped,
}

/// <summary>Stable codes for pre-flight checks. Runbooks filter on them; never reuse one for another check.</summary>
public static class PreflightCodes
{
    public const string Connectivity = "PF001";
    public const string Integrity = "PF002";
    public const string Sessions = "PF003";
    public const string SchemaPrivileges = "PF004";
    public const string DatabaseSize = "PF005";
    public const string BackupLocation = "PF006";
    public const string DiskSpace = "PF007";
    public const string LeftoverCopies = "PF008";
}

/// <summary>One pre-flight check's outcome.</summary>
public sealed class PreflightCheck
{
    public PreflightCheck(string code, string name, PreflightStatus status, string message, string target, IReadOnlyDictionary<string, object?>? details = null)
    {
        Code = code;
        Name = name;
        Status = status;
        Message = message;
        Target = target;
        Details = details ?? new Dictionary<string, object?>();
    }

    public string Code { get; }

    public string Name { get; }

    public PreflightStatus Status { get; }

    public string Message { get; }

    /// <summary>The redacted database target, or the backup location for location checks.</summary>
    public string Target { get; }

    public IReadOnlyDictionary<string, object?> Details { get; }

    /// <summary>The stable error id behind a Failed check, when there is one.</summary>
    public string? ErrorId { get; init; }

    public override string ToString() => $"{Code} {Name}: {Status} - {Message}";
}

/// <summary>A table's exact row count, reported in the size check's details.</summary>
public sealed record TableRowCount(string Table, long Rows);

/// <summary>What to check.</summary>
/// <param name="SafetyFactor">Free space must be at least this many times the estimated backup size.</param>
public sealed record PreflightRequest(DatabaseTarget Target, string? BackupPath, TimeSpan ConnectTimeout, double SafetyFactor = 2.0);
