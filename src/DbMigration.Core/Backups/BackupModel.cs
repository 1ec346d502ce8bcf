using System.Text.Json.Serialization;

namespace DbMigration.Backups;

[JsonConverter(typeof(JsonStringEnumConverter<BackupCategory>))]
public enum BackupCategory
{
    Manual,
    Daily,
    Weekly,
    Monthly,
    PreMigration,
}

[JsonConverter(typeof(JsonStringEnumConverter<BackupCompression>))]
public enum BackupCompression
{
    None,

    /// <summary>Zstandard level 1 on up to four threads: several hundred MB/s and smaller than Brotli's fastest, for nightly runs.</summary>
    Fast,

    /// <summary>Brotli at quality 4 (.NET's Optimal): smaller files, still streaming speed.</summary>
    Small,
}

/// <summary>How the primary copy of a PostgreSQL or MariaDB backup is taken (SQLite always uses its backup API).</summary>
public enum BackupDumpMethod
{
    /// <summary>The engine's dump tool (pg_dump, mariadb-dump) when a usable one is installed, else the built-in dump with a warning.</summary>
    Auto,

    /// <summary>The engine's dump tool only: fail with DbMigration.Backup.ToolFailed when it is missing or too old.</summary>
    EngineTool,

    /// <summary>DbMigration's built-in logical dump: plain SQL that needs no client tools to take, verify or restore.</summary>
    BuiltIn,
}

[JsonConverter(typeof(JsonStringEnumConverter<VerificationStatus>))]
public enum VerificationStatus
{
    NotVerified,
    Passed,
    Failed,
}

/// <summary>One file of a backup, with its size and SHA-256 as written.</summary>
public sealed record BackupFile(string Name, long Size, string Sha256, string Kind)
{
    public override string ToString() => $"{Name} ({IO.ByteSize.Format(Size)}, {Kind})";
}

/// <summary>A table as it was when the backup was taken.</summary>
public sealed record TableSnapshot(string Table, long Rows, string ContentHash)
{
    public override string ToString() => $"{Table}: {Rows} row(s)";
}

/// <summary>How the primary copy is encrypted. The key is derived from the passphrase and never stored.</summary>
public sealed record BackupEncryption(string Algorithm, string KeyDerivation, int Iterations, string Salt, string KeyCheck, int ChunkSize);

/// <summary>The outcome of the last Test-DatabaseBackup on a backup.</summary>
/// <param name="FilesDigest">
/// For a passed verification: a digest of the file names, sizes and SHA-256 values it verified. A restore trusts the
/// verification only while backup.json still lists exactly those files.
/// </param>
public sealed record BackupVerificationState(VerificationStatus Status, DateTimeOffset? VerifiedUtc, string? Message, string? FilesDigest = null)
{
    /// <summary>How Format-List shows it inside a BackupInfo.</summary>
    public override string ToString() => VerifiedUtc is { } at ? $"{Status} ({at:u})" + (Status == VerificationStatus.Passed || Message is null ? string.Empty : $": {Message}") : Status.ToString();
}

/// <summary>One backup in a repository, as described by its backup.json. Returned by Backup-Database and Get-DatabaseBackup.</summary>
public sealed record BackupInfo
{
    public required string Id { get; init; }

    /// <summary>The database name the backup is filed under.</summary>
    public required string Database { get; init; }

    public required Targets.DatabaseEngine Engine { get; init; }

    public required string ServerVersion { get; init; }

    /// <summary>The source, redacted (no password).</summary>
    public required string Source { get; init; }

    /// <summary>
    /// The source as the caller gave it, credentials included, on the object a backup just returned: piped on to
    /// Test-DatabaseBackup it reaches the server without asking again. Internal, so never in backup.json or output.
    /// </summary>
    internal Targets.DatabaseTarget? ConnectedSource { get; init; }

    /// <summary>
    /// The source's <see cref="Targets.DatabaseTarget.Identity"/>, so backups of same-named databases on different
    /// servers are told apart; null when the source text cannot be read back (then only the name counts).
    /// </summary>
    internal string? SourceIdentity
    {
        get
        {
            try
            {
                return Targets.DatabaseTarget.Parse(Source).WithEngine(Engine).Identity;
            }
            catch (Errors.DbMigrationException)
            {
                return null;
            }
        }
    }

    /// <summary>True unless the backup is known to come from a database other than <paramref name="target"/>.</summary>
    internal bool MayComeFrom(Targets.DatabaseTarget target) => SourceIdentity is not { } identity || identity == target.Identity;

    public required DateTimeOffset CreatedUtc { get; init; }

    public required BackupCategory Category { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public required string ToolVersion { get; init; }

    /// <summary>How the primary copy was taken: sqlite-backup-api, pg_dump-custom, mariadb-dump-sql.</summary>
    public required string Format { get; init; }

    public required IReadOnlyList<BackupFile> Files { get; init; }

    public required IReadOnlyList<TableSnapshot> Tables { get; init; }

    public required BackupCompression Compression { get; init; }

    /// <summary>
    /// The codec and level the files were written with: zstd-1 or brotli-4, and null when uncompressed. Backups
    /// written before Fast became Zstandard do not say: theirs is brotli-0 (Fast) or brotli-4 (Small).
    /// </summary>
    public string? CompressionMethod { get; init; }

    public BackupEncryption? Encryption { get; init; }

    public required long DurationMs { get; init; }

    public BackupVerificationState Verification { get; init; } = new(VerificationStatus.NotVerified, null, null);

    /// <summary>
    /// SQLite on Unix: the database file's permission bits when it was backed up, in octal (0640); a restore onto a
    /// file that is gone gives them back. Null for server engines, on Windows and in older backups.
    /// </summary>
    public string? SourceFileMode { get; init; }

    /// <summary>
    /// How the tables' content hashes were computed: 1 in backups written before MariaDB FLOAT columns were hashed
    /// exactly (as their DOUBLE widening, not their six-digit text) and TINYINT(1) columns as numbers (not as
    /// booleans, where 2 read as 1 did), and PostgreSQL timestamptz values inside arrays and ranges in UTC (not in
    /// the session's zone, which a role may set), 2 since. Verification hashes the same way.
    /// </summary>
    public int ContentHashVersion { get; init; } = 1;

    /// <summary>The folder holding this backup (not stored in backup.json; filled in when read).</summary>
    [JsonIgnore]
    public string Path { get; init; } = string.Empty;

    /// <summary>
    /// The folder of the independent second copy (-SecondaryPath), recorded in the primary's backup.json; null when
    /// none was written or it is gone. The copy's own backup.json does not name itself.
    /// </summary>
    public string? SecondaryPath { get; init; }

    [JsonIgnore]
    public bool IsEncrypted => Encryption is not null;

    [JsonIgnore]
    public long TotalSize => Files.Sum(f => f.Size);

    public override string ToString() => $"{Database} {Id} ({Category}, {Engine})";
}

/// <summary>One check made by Test-DatabaseBackup.</summary>
public sealed record BackupCheck(string Name, bool Passed, string Message)
{
    /// <summary>How Format-List shows it inside a verification: a line, as the timezone validation's checks read.</summary>
    public override string ToString() => $"{(Passed ? "ok" : "FAILED")}: {Message}";
}

/// <summary>The outcome of Test-DatabaseBackup for one backup.</summary>
public sealed record BackupVerification
{
    public required string BackupId { get; init; }

    public required string Database { get; init; }

    public required string Path { get; init; }

    public required VerificationStatus Status { get; init; }

    public required string Message { get; init; }

    public required IReadOnlyList<BackupCheck> Checks { get; init; }

    public required TimeSpan Duration { get; init; }

    public string? ErrorId { get; init; }

    /// <summary>What kind of failure the error is, for the cmdlet's error record.</summary>
    internal Errors.ErrorKind FailureKind { get; init; } = Errors.ErrorKind.InvalidData;

    public override string ToString() => $"{BackupId}: {Status} - {Message}";
}

/// <summary>The outcome of Restore-MigrationBackup.</summary>
public sealed record RestoreResult
{
    public required string BackupId { get; init; }

    public required string Target { get; init; }

    public string? SafetyBackupId { get; init; }

    public required IReadOnlyList<TableSnapshot> Tables { get; init; }

    public required bool RowCountsMatch { get; init; }

    /// <summary>
    /// True when the restored copy was verified in full (integrity check, row counts and content hashes); false when
    /// the files matched a backup already verified in full and only the row counts were checked after the restore.
    /// </summary>
    public bool Reverified { get; init; }

    /// <summary>How the backup and the restored copy were checked, in words.</summary>
    public string Verification { get; init; } = string.Empty;

    public required TimeSpan Duration { get; init; }

    public override string ToString() => $"Restored {BackupId} onto {Target}";
}

/// <summary>A backup that retention removed, or would remove under -WhatIf.</summary>
public sealed record RetentionDecision
{
    public required string BackupId { get; init; }

    public required string Database { get; init; }

    public required DateTimeOffset CreatedUtc { get; init; }

    public required BackupCategory Category { get; init; }

    public required string Reason { get; init; }

    public required bool Removed { get; init; }

    public required IReadOnlyList<string> Paths { get; init; }
}
