using System.Management.Automation;
using System.Security;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Reverses applied migrations by running their down sections, newest first, or restores their pre-run backup.</para>
/// </summary>
[Cmdlet(VerbsCommon.Undo, "DatabaseMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = StepsSet)]
[OutputType(typeof(MigrationRun))]
[OutputType(typeof(RestoreResult))]
public sealed class UndoDatabaseMigrationCommand : DatabaseCmdlet
{
    private const string StepsSet = "Steps";
    private const string VersionSet = "Version";
    private const string ToVersionSet = "ToVersion";

    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The folder of V<version>__<description>.sql files.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ParameterSetName = VersionSet, HelpMessage = "Undo this one applied version.")]
    [ValidateNotNullOrEmpty]
    public string? Version { get; set; }

    [Parameter(ParameterSetName = StepsSet, HelpMessage = "Undo the newest N applied migrations (default 1).")]
    [ValidateRange(1, 100000)]
    public int Steps { get; set; } = 1;

    [Parameter(Mandatory = true, ParameterSetName = ToVersionSet, HelpMessage = "Undo every applied migration newer than this version.")]
    [ValidateNotNullOrEmpty]
    public string? ToVersion { get; set; }

    [Parameter(HelpMessage = "When a migration has no down section, restore its pre-run backup instead (from -BackupPath).")]
    public SwitchParameter UseBackup { get => new(UseBackupMode); set => UseBackupMode = value.IsPresent; }

    [Parameter(HelpMessage = "The backup repository holding the pre-run backups, for -UseBackup.")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    [Parameter(HelpMessage = "The passphrase of an encrypted pre-run backup, for -UseBackup.")]
    public SecureString? Passphrase { get; set; }

    [Parameter(HelpMessage = "Seconds to wait for another migration to release the lock (default 30).")]
    [ValidateRange(0, 86400)]
    public int LockTimeout { get; set; } = 30;

    [Parameter(HelpMessage = "Seconds each statement may wait for a table or row lock another session holds before the undo fails (PostgreSQL, MariaDB; default 10; 0 waits as long as the server allows).")]
    [ValidateRange(0, 86400)]
    public int StatementLockTimeout { get; set; } = (int)MigrationRequest.DefaultStatementLockTimeout.TotalSeconds;

    internal bool UseBackupMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var path = host.ResolvePath(Path);
        var service = new MigrationService();
        var selection = new UndoSelection(Version, Version is null && ToVersion is null ? Steps : null, ToVersion);
        var plan = await service.PlanUndoAsync(target, path, selection, cancellationToken).ConfigureAwait(false);
        if (plan.Count == 0)
        {
            host.WriteVerbose("Nothing to undo.");
            return;
        }

        var withoutDown = plan.Where(p => !p.HasDown).Select(p => p.Step).ToList();
        if (withoutDown.Count > 0)
        {
            // The oldest selected migration's pre-run backup is the state before everything selected.
            var oldest = plan[^1].Step;
            var names = string.Join(", ", withoutDown.Select(s => "V" + s.Version));
            if (!UseBackupMode)
            {
                throw new DbMigrationException(ErrorIds.MigrationNoDownSection, ErrorKind.InvalidOperation,
                    $"{names} {(withoutDown.Count == 1 ? "has" : "have")} no down section, so nothing was undone. " +
                    (oldest.BackupId is null
                        ? "No pre-run backup was recorded for them."
                        : $"The backup taken before V{oldest.Version} is {oldest.BackupId}: rerun with -UseBackup -BackupPath <repository> to restore it."))
                { Target = target.ToString() };
            }

            if (oldest.BackupId is null || BackupPath is null)
            {
                throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.InvalidArgument,
                    oldest.BackupId is null ? $"No pre-run backup was recorded for V{oldest.Version}." : "-UseBackup needs -BackupPath, the repository holding the pre-run backups.")
                { Target = target.ToString() };
            }

            var backup = new BackupRepository(host.ResolvePath(BackupPath)).Get(oldest.BackupId);
            host.WriteWarning($"{names} cannot be undone statement by statement; restoring backup {backup.Id} taken before V{oldest.Version}.");
            if (host.ShouldProcess(target.ToString(), $"Restore backup {backup.Id} (taken {backup.CreatedUtc:u}, before V{oldest.Version})"))
            {
                host.WriteObject(await new RestoreService().RestoreAsync(new RestoreRequest { Target = target, Backup = backup, Passphrase = Secrets.ToPlain(Passphrase) }, new HostProgress(host), cancellationToken).ConfigureAwait(false));
            }

            return;
        }

        var confirmed = new List<MigrationStep>();
        foreach (var (step, _) in plan)
        {
            if (!host.ShouldProcess(target.ToString(), $"Undo V{step.Version} {step.Description}:{Environment.NewLine}{step.Sql}"))
            {
                break;
            }

            confirmed.Add(step);
        }

        if (confirmed.Count > 0)
        {
            await service.UndoAsync(target, path, confirmed, TimeSpan.FromSeconds(LockTimeout), TimeSpan.FromSeconds(StatementLockTimeout), host.WriteObject, new HostProgress(host), cancellationToken).ConfigureAwait(false);
        }
    }
}
