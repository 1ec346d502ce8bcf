using System.Data.Common;
using System.Text.Json.Serialization;
using DbMigration.Targets;

namespace DbMigration.Timezone;

[JsonConverter(typeof(JsonStringEnumConverter<TimestampOutputFormat>))]
public enum TimestampOutputFormat
{
    /// <summary>Text values become ISO-8601 UTC with Z; typed columns become UTC (timestamptz on PostgreSQL).</summary>
    Iso8601Z,

    /// <summary>Text values become "YYYY-MM-DD HH:MM:SS+00:00"; typed columns as with Iso8601Z.</summary>
    Native,
}

/// <summary>What Invoke-TimezoneMigration was asked to do.</summary>
public sealed record TimezoneMigrationRequest
{
    public required DatabaseTarget Target { get; init; }

    public required string SourceTimeZone { get; init; }

    public IReadOnlyList<string> Tables { get; init; } = [];

    /// <summary>table.column names; when given, only these are converted and discovery is skipped.</summary>
    public IReadOnlyList<string> Columns { get; init; } = [];

    public IReadOnlyList<string> ExcludeColumns { get; init; } = [];

    public AmbiguousTimePolicy Ambiguous { get; init; } = AmbiguousTimePolicy.Fail;

    public NonexistentTimePolicy Nonexistent { get; init; } = NonexistentTimePolicy.Fail;

    public TimestampOutputFormat OutputFormat { get; init; } = TimestampOutputFormat.Iso8601Z;

    public int BatchSize { get; init; } = 50_000;

    /// <summary>
    /// MariaDB: how long batches may share one transaction before it commits. Committing every batch lets InnoDB's
    /// purge compete with the conversion for the CPU (about 20% slower measured at 1M rows); a kill inside the
    /// transaction rolls its batches back, and the rollback record covers what was committed before.
    /// </summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(60);

    public string? BackupPath { get; init; }

    public bool SkipBackup { get; init; }

    public string? ReportPath { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long each statement may wait for a table or row lock another session holds before the run fails
    /// (PostgreSQL and MariaDB); <see cref="TimeSpan.Zero"/> waits as long as the server allows. While PostgreSQL's
    /// ALTER waits, every later query on the table queues behind it.
    /// </summary>
    public TimeSpan StatementLockTimeout { get; init; } = Migrations.MigrationRequest.DefaultStatementLockTimeout;

    /// <summary>Fault injection for tests: runs inside a PostgreSQL conversion's transaction, just before its validation.</summary>
    internal Func<DbConnection, DbTransaction, CancellationToken, Task>? BeforeValidation { get; init; }
}

/// <summary>A value the migration did not or could not convert, by primary key (for the report).</summary>
public sealed record TimestampIssue(string Table, string Column, string Key, string Value, string Issue);

/// <summary>One column: what was found and what was done.</summary>
public sealed record TimezoneColumnResult
{
    public required string Table { get; init; }

    public required string Column { get; init; }

    public required string DataType { get; init; }

    /// <summary>Why the column was chosen: its declared type, sampled values, or -Column.</summary>
    public required string Reason { get; init; }

    public long RowsSeen { get; init; }

    public long Converted { get; init; }

    public long AlreadyUtc { get; init; }

    public long Epoch { get; init; }

    /// <summary>
    /// Values left as they were because they cannot be converted: text that is no timestamp, MariaDB zero and partial
    /// dates, and sentinels at the calendar's edge such as 9999-12-31 or infinity. The report lists each by key with
    /// its reason ("unparseable" or "out of range").
    /// </summary>
    public long Unparseable { get; init; }

    public long Ambiguous { get; init; }

    public long Nonexistent { get; init; }

    public string AmbiguousResolution { get; init; } = string.Empty;

    public string NonexistentResolution { get; init; } = string.Empty;

    /// <summary>rewrite (text, per row), alter-using (one ALTER … USING … AT TIME ZONE), or client-side (typed, per row).</summary>
    public string Method { get; init; } = string.Empty;

    public override string ToString() => $"{Table}.{Column}: {Converted} converted, {AlreadyUtc} already UTC, {Unparseable} unparseable, {Ambiguous} ambiguous, {Nonexistent} nonexistent";
}

public sealed record TimezoneValidation(bool Passed, IReadOnlyList<string> Checks, int SampleSize)
{
    /// <summary>How Format-List shows it inside a result: the verdict and the first failed check.</summary>
    public override string ToString() => Passed
        ? $"Passed ({Checks.Count} checks, {SampleSize} values sampled)"
        : $"FAILED: {Checks.FirstOrDefault(c => c.StartsWith("FAILED", StringComparison.Ordinal))?["FAILED: ".Length..] ?? "see Checks"}";
}

/// <summary>The outcome of Invoke-TimezoneMigration (or, with -WhatIf, of the analysis alone).</summary>
public sealed record TimezoneMigrationResult
{
    public required string RunId { get; init; }

    public string? BackupId { get; init; }

    public required string SourceTimeZone { get; init; }

    public required string TzdbVersion { get; init; }

    public required IReadOnlyList<TimezoneColumnResult> Columns { get; init; }

    public required TimeSpan Duration { get; init; }

    public required double RowsPerSecond { get; init; }

    public TimezoneValidation? Validation { get; init; }

    public string? ReportPath { get; init; }

    /// <summary>True for an analysis (-WhatIf): nothing was changed.</summary>
    public bool AnalysisOnly { get; init; }

    public override string ToString() => $"{RunId}: {Columns.Sum(c => c.Converted)} value(s) converted from {SourceTimeZone} in {Duration.TotalSeconds:0.0} s";
}

/// <summary>The outcome of Undo-TimezoneMigration.</summary>
public sealed record TimezoneUndoResult(string RunId, long ValuesRestored, IReadOnlyList<string> Columns, TimeSpan Duration);

/// <summary>The outcome of Remove-TimezoneMigrationRecord: what of a run's rollback record was released.</summary>
public sealed record TimezoneRecordRemoval(string RunId, string? BackupId, IReadOnlyList<string> TablesDropped, long RollbackRowsDeleted, TimeSpan Duration)
{
    public override string ToString() => $"{RunId}: {TablesDropped.Count} record table(s) dropped, {RollbackRowsDeleted} recorded value(s) deleted";
}

/// <summary>report.json: what a run did and how to undo it.</summary>
internal sealed record TimezoneReport(
    string RunId,
    string? BackupId,
    string Target,
    string SourceTimeZone,
    string TzdbVersion,
    TimezoneReportPolicies Policies,
    string EpochRule,
    IReadOnlyList<TimezoneColumnResult> Columns,
    double DurationSeconds,
    double RowsPerSecond,
    TimezoneValidation? Validation,
    IReadOnlyList<TimestampIssue> Issues,
    string UndoWith);

internal sealed record TimezoneReportPolicies(string Ambiguous, string Nonexistent, string OutputFormat);
