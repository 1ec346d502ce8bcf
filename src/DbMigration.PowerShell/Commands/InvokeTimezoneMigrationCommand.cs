using System.Management.Automation;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Timezone;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Converts naive local timestamps to UTC, with explicit policies for DST gaps and overlaps, a rollback record, validation and a report.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "TimezoneMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(TimezoneMigrationResult))]
public sealed class InvokeTimezoneMigrationCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The zone the stored local times are in: an IANA id (America/New_York) or a Windows id.")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TimeZoneCompleter))]
    public string SourceTimeZone { get; set; } = string.Empty;

    [Parameter(HelpMessage = "Only discover columns in these tables.")]
    public string[] Table { get; set; } = [];

    [Parameter(HelpMessage = "Convert exactly these table.column names instead of discovering.")]
    public string[] Column { get; set; } = [];

    [Parameter(HelpMessage = "Leave these table.column names alone.")]
    public string[] ExcludeColumn { get; set; } = [];

    [Parameter(HelpMessage = "Local times that occur twice: Earlier, Later, or Fail (default: change nothing and list them).")]
    public AmbiguousTimePolicy Ambiguous { get; set; } = AmbiguousTimePolicy.Fail;

    [Parameter(HelpMessage = "Local times that never occurred: ShiftForward, or Fail (default: change nothing and list them).")]
    public NonexistentTimePolicy Nonexistent { get; set; } = NonexistentTimePolicy.Fail;

    [Parameter(HelpMessage = "Iso8601Z (2024-03-10T07:30:00Z, default) or Native (2024-03-10 07:30:00+00:00) for text columns.")]
    public TimestampOutputFormat OutputFormat { get; set; } = TimestampOutputFormat.Iso8601Z;

    [Parameter(HelpMessage = "Rows per transaction for batched conversions (MariaDB DATETIME; text on PostgreSQL and MariaDB); default 50000.")]
    [ValidateRange(100, 10_000_000)]
    public int BatchSize { get; set; } = 50_000;

    [Parameter(HelpMessage = "Where the PreMigration backup goes (required unless -SkipBackup).")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    [Parameter(HelpMessage = "Convert without taking a backup first (the rollback record is still kept).")]
    public SwitchParameter SkipBackup { get => new(SkipBackupMode); set => SkipBackupMode = value.IsPresent; }

    [Parameter(HelpMessage = "Folder for report.json and summary.txt (default ./dbmigration-reports).")]
    [ValidateNotNullOrEmpty]
    public string? ReportPath { get; set; }

    [Parameter(HelpMessage = "Seconds each statement may wait for a table or row lock another session holds before the run fails (PostgreSQL, MariaDB; default 10; 0 waits as long as the server allows).")]
    [ValidateRange(0, 86400)]
    public int StatementLockTimeout { get; set; } = (int)DbMigration.Migrations.MigrationRequest.DefaultStatementLockTimeout.TotalSeconds;

    internal bool SkipBackupMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var request = new TimezoneMigrationRequest
        {
            Target = target,
            SourceTimeZone = SourceTimeZone,
            Tables = Table,
            Columns = Column,
            ExcludeColumns = ExcludeColumn,
            Ambiguous = Ambiguous,
            Nonexistent = Nonexistent,
            OutputFormat = OutputFormat,
            BatchSize = BatchSize,
            BackupPath = BackupPath is null ? null : host.ResolvePath(BackupPath),
            SkipBackup = SkipBackupMode,
            ReportPath = host.ResolvePath(ReportPath ?? "dbmigration-reports"),
            ConnectTimeout = TimeSpan.FromSeconds(ConnectTimeout),
            StatementLockTimeout = TimeSpan.FromSeconds(StatementLockTimeout),
        };
        var service = new TimezoneMigrationService();
        var zone = TimezoneResolver.Resolve(SourceTimeZone);
        if (!host.ShouldProcess(target.ToString(), $"Convert local timestamps from {zone.Id} to UTC (ambiguous: {Ambiguous}, nonexistent: {Nonexistent})"))
        {
            // -WhatIf: what would be converted, and what needs judgement; nothing is written.
            host.WriteObject(await service.AnalyzeAsync(request, new HostProgress(host), cancellationToken).ConfigureAwait(false));
            return;
        }

        var result = await service.RunAsync(request, new HostProgress(host), cancellationToken).ConfigureAwait(false);
        if (result.Validation is { Passed: false })
        {
            host.WriteError(new Errors.DbMigrationException(Errors.ErrorIds.TimezoneValidationFailed, Errors.ErrorKind.InvalidData,
                $"Run {result.RunId} converted the data but validation failed: {string.Join("; ", result.Validation.Checks.Where(c => c.StartsWith("FAILED", StringComparison.Ordinal)))}. Undo it with Undo-TimezoneMigration -Database '{target}' -Id {result.RunId}.")
            { Target = target.ToString() });
        }

        host.WriteObject(result);
    }
}
