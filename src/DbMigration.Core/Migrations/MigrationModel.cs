using System.Globalization;
using DbMigration.Errors;

namespace DbMigration.Migrations;

/// <summary>An integer or dotted version (1, 2.1, 10.0.3), compared numerically: 2 &lt; 10, 1.9 &lt; 1.10.</summary>
public sealed class MigrationVersion : IComparable<MigrationVersion>, IEquatable<MigrationVersion>
{
    private readonly long[] _parts;

    private MigrationVersion(long[] parts) => _parts = parts;

    public static MigrationVersion Parse(string text)
    {
        if (!TryParse(text, out var version))
        {
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument,
                $"'{text}' is not a migration version: use an integer or a dotted number such as 3 or 2.1.");
        }

        return version;
    }

    public static bool TryParse(string? text, out MigrationVersion version)
    {
        version = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var pieces = text.Trim().TrimStart('V', 'v').Split('.', '_');
        var parts = new long[pieces.Length];
        for (var i = 0; i < pieces.Length; i++)
        {
            if (pieces[i].Length == 0 || !pieces[i].All(char.IsAsciiDigit) || !long.TryParse(pieces[i], NumberStyles.None, CultureInfo.InvariantCulture, out parts[i]))
            {
                return false;
            }
        }

        // 2 and 2.0 are the same version.
        var length = parts.Length;
        while (length > 1 && parts[length - 1] == 0)
        {
            length--;
        }

        version = new MigrationVersion(parts[..length]);
        return true;
    }

    public int CompareTo(MigrationVersion? other)
    {
        if (other is null)
        {
            return 1;
        }

        for (var i = 0; i < Math.Max(_parts.Length, other._parts.Length); i++)
        {
            var a = i < _parts.Length ? _parts[i] : 0;
            var b = i < other._parts.Length ? other._parts[i] : 0;
            if (a != b)
            {
                return a.CompareTo(b);
            }
        }

        return 0;
    }

    public bool Equals(MigrationVersion? other) => other is not null && CompareTo(other) == 0;

    public override bool Equals(object? obj) => obj is MigrationVersion other && Equals(other);

    public override int GetHashCode() => string.Join('.', _parts).GetHashCode(StringComparison.Ordinal);

    /// <summary>Zero-padded so that text order equals numeric order (stored in the journal's sort_key).</summary>
    public string SortKey => string.Join('.', _parts.Select(p => p.ToString("D12", CultureInfo.InvariantCulture)));

    public override string ToString() => string.Join('.', _parts.Select(p => p.ToString(CultureInfo.InvariantCulture)));

    public static bool operator <(MigrationVersion left, MigrationVersion right) => left.CompareTo(right) < 0;

    public static bool operator >(MigrationVersion left, MigrationVersion right) => left.CompareTo(right) > 0;

    public static bool operator <=(MigrationVersion left, MigrationVersion right) => left.CompareTo(right) <= 0;

    public static bool operator >=(MigrationVersion left, MigrationVersion right) => left.CompareTo(right) >= 0;

    public static bool operator ==(MigrationVersion? left, MigrationVersion? right) => left?.Equals(right) ?? right is null;

    public static bool operator !=(MigrationVersion? left, MigrationVersion? right) => !(left == right);
}

public enum MigrationState
{
    Applied,
    Pending,
    Failed,

    /// <summary>Applied, but its file is gone.</summary>
    Missing,

    /// <summary>Applied, but the file changed since (beyond line endings and trailing spaces).</summary>
    ChecksumMismatch,

    /// <summary>Pending, with a lower version than one already applied.</summary>
    OutOfOrder,

    /// <summary>Adopted by Set-MigrationBaseline rather than run.</summary>
    Baseline,

    /// <summary>Undone or resolved as rolled back; it will run again.</summary>
    RolledBack,

    /// <summary>Being applied now, outside a transaction, by a run that holds the migration lock.</summary>
    Running,
}

/// <summary>One version as Get-MigrationStatus sees it: the file, the journal, or both.</summary>
public sealed record MigrationInfo
{
    public required string Version { get; init; }

    public required string Description { get; init; }

    public string? Script { get; init; }

    public required MigrationState State { get; init; }

    public DateTimeOffset? AppliedUtc { get; init; }

    public long? ExecutionMs { get; init; }

    public string? Checksum { get; init; }

    public string? BackupId { get; init; }

    public string? Error { get; init; }

    public bool HasDownSection { get; init; }

    public override string ToString() => $"V{Version} {Description}: {State}";
}

/// <summary>The outcome of one migration run by Invoke-DatabaseMigration or Undo-DatabaseMigration.</summary>
public sealed record MigrationRun
{
    public required string Version { get; init; }

    public required string Description { get; init; }

    /// <summary>applied, rolled_back (after undo), failed, or partially_applied.</summary>
    public required string Status { get; init; }

    public required bool Transactional { get; init; }

    public required int Statements { get; init; }

    public required TimeSpan Duration { get; init; }

    public string? BackupId { get; init; }

    public override string ToString() => $"V{Version} {Description}: {Status} in {Duration.TotalMilliseconds:0} ms";
}

/// <summary>A new migration file made by New-Migration.</summary>
public sealed record MigrationFile(string Version, string Description, string Path);

/// <summary>Who holds the migration lock, as Get-MigrationLock reports it.</summary>
public sealed record MigrationLockInfo
{
    public required string Target { get; init; }

    /// <summary>True when a live process holds the engine's lock right now.</summary>
    public required bool IsHeld { get; init; }

    /// <summary>True when a lock row remains but no process holds the lock: its owner died.</summary>
    public required bool IsStale { get; init; }

    public string? Owner { get; init; }

    public string? Host { get; init; }

    public int? ProcessId { get; init; }

    public DateTimeOffset? AcquiredUtc { get; init; }

    public DateTimeOffset? HeartbeatUtc { get; init; }

    public override string ToString() => IsHeld ? $"held by {Owner}@{Host} pid {ProcessId}" : IsStale ? $"stale: {Owner}@{Host} pid {ProcessId} is gone" : "free";
}

public enum SchemaObjectType
{
    Table,
    Column,
    Index,
    ForeignKey,
    View,
    Trigger,
    Routine,
}

public enum DifferenceKind
{
    Added,
    Removed,
    Changed,
}

/// <summary>One way the live schema differs from the schema recorded after the last migration.</summary>
public sealed record SchemaDifference(DifferenceKind Kind, SchemaObjectType ObjectType, string Table, string Name, string? Expected, string? Actual)
{
    public override string ToString() => $"{Kind} {ObjectType} {(ObjectType == SchemaObjectType.Table || Name == Table ? Table : $"{Table}.{Name}")}" + (Kind == DifferenceKind.Changed ? $": {Expected} -> {Actual}" : string.Empty);
}
