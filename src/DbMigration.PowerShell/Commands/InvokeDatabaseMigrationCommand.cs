using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Applies pending migrations, each in its own transaction where the engine allows, after a pre-flight and a safety backup.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "DatabaseMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationRun))]
public sealed class InvokeDatabaseMigrationCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The folder of V<version>__<description>.sql files.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(HelpMessage = "Stop after this version.")]
    [ValidateNotNullOrEmpty]
    public string? TargetVersion { get; set; }

    [Parameter(HelpMessage = "Also run pending migrations older than ones already applied.")]
    public SwitchParameter AllowOutOfOrder { get => new(AllowOutOfOrderMode); set => AllowOutOfOrderMode = value.IsPresent; }

    [Parameter(HelpMessage = "Where the PreMigration safety backup goes (required unless -SkipBackup).")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    [Parameter(HelpMessage = "Migrate without a safety backup.")]
    public SwitchParameter SkipBackup { get => new(SkipBackupMode); set => SkipBackupMode = value.IsPresent; }

    [Parameter(HelpMessage = "Seconds to wait for another migration to release the lock (default 30).")]
    [ValidateRange(0, 86400)]
    public int LockTimeout { get; set; } = 30;

    [Parameter(HelpMessage = "Seconds each statement may wait for a table or row lock another session holds before the migration fails (PostgreSQL, MariaDB; default 10; 0 waits as long as the server allows).")]
    [ValidateRange(0, 86400)]
    public int StatementLockTimeout { get; set; } = (int)MigrationRequest.DefaultStatementLockTimeout.TotalSeconds;

    [Parameter(HelpMessage = "Migrate despite failed pre-flight checks, and take over a stale lock.")]
    public SwitchParameter Force { get => new(ForceMode); set => ForceMode = value.IsPresent; }

    internal bool AllowOutOfOrderMode { get; set; }

    internal bool SkipBackupMode { get; set; }

    internal bool ForceMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var request = new MigrationRequest
        {
            Target = target,
            Path = host.ResolvePath(Path),
            TargetVersion = TargetVersion,
            AllowOutOfOrder = AllowOutOfOrderMode,
            BackupPath = BackupPath is null ? null : host.ResolvePath(BackupPath),
            SkipBackup = SkipBackupMode,
            LockTimeout = TimeSpan.FromSeconds(LockTimeout),
            StatementLockTimeout = TimeSpan.FromSeconds(StatementLockTimeout),
            Force = ForceMode,
            ConnectTimeout = TimeSpan.FromSeconds(ConnectTimeout),
        };
        var service = new MigrationService();
        var plan = await service.PlanAsync(request, cancellationToken).ConfigureAwait(false);
        if (plan.Steps.Count == 0)
        {
            host.WriteVerbose($"{target} is up to date.");
            return;
        }

        foreach (var note in plan.Notes)
        {
            host.WriteWarning(note);
        }

        // Confirm in order and stop at the first refusal: later migrations may depend on earlier ones.
        var confirmed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var step in plan.Steps)
        {
            var mode = step.Transactional ? "in a transaction" : "NOT in a transaction";
            if (!host.ShouldProcess(target.ToString(), $"Apply V{step.Version} {step.Description} ({step.Script}, {mode}):{Environment.NewLine}{step.Sql}"))
            {
                break;
            }

            confirmed.Add(step.Version);
        }

        if (confirmed.Count == 0)
        {
            return;
        }

        await service.ExecuteAsync(request, confirmed, host.WriteObject, new HostProgress(host), cancellationToken, notesShown: plan.Notes).ConfigureAwait(false);
    }
}
