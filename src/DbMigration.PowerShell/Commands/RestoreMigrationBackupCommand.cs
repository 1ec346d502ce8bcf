using System.Management.Automation;
using System.Security;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Restores a backup onto a database, verifying first and never leaving it half-written.</para>
/// </summary>
[Cmdlet(VerbsData.Restore, "MigrationBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = LatestSet)]
[OutputType(typeof(RestoreResult))]
public sealed class RestoreMigrationBackupCommand : DatabaseCmdlet
{
    private const string LatestSet = "Latest";
    private const string IdSet = "Id";
    private const string BackupPathSet = "BackupPath";
    private const string InputObjectSet = "InputObject";

    [Parameter(Mandatory = true, ParameterSetName = LatestSet, HelpMessage = "The backup repository to choose from (with -Latest or -Id).")]
    [Parameter(Mandatory = true, ParameterSetName = IdSet, HelpMessage = "The backup repository to choose from (with -Latest or -Id).")]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = IdSet, HelpMessage = "The id of the backup to restore.")]
    [ValidateNotNullOrEmpty]
    public string? Id { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = LatestSet, HelpMessage = "Restore the newest backup of this database (the emergency rollback).")]
    public SwitchParameter Latest { get => new(LatestMode); set => LatestMode = value.IsPresent; }

    [Parameter(ParameterSetName = LatestSet, HelpMessage = "With -Latest: only consider backups of this category, such as PreMigration.")]
    public BackupCategory? Category { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = BackupPathSet, HelpMessage = "The folder of one backup (the one holding backup.json).")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet, HelpMessage = "A BackupInfo from Get-DatabaseBackup or Backup-Database.")]
    public BackupInfo? InputObject { get; set; }

    [Parameter(HelpMessage = "The passphrase of an encrypted backup.")]
    public SecureString? Passphrase { get; set; }

    [Parameter(HelpMessage = "Do not back up the current database before replacing it.")]
    public SwitchParameter SkipSafetyBackup { get => new(SkipSafetyBackupMode); set => SkipSafetyBackupMode = value.IsPresent; }

    [Parameter(HelpMessage = "Where the safety backup goes; defaults to the backup's repository.")]
    [ValidateNotNullOrEmpty]
    public string? SafetyBackupPath { get; set; }

    [Parameter(HelpMessage = "Restore even while other sessions are connected: PostgreSQL and MariaDB sessions on the database are ended (their open transactions roll back).")]
    public SwitchParameter Force { get => new(ForceMode); set => ForceMode = value.IsPresent; }

    [Parameter(HelpMessage = "Verify the restored copy in full even when the backup already passed Test-DatabaseBackup with these exact files.")]
    public SwitchParameter Reverify { get => new(ReverifyMode); set => ReverifyMode = value.IsPresent; }

    internal bool LatestMode { get; set; }

    internal bool SkipSafetyBackupMode { get; set; }

    internal bool ForceMode { get; set; }

    internal bool ReverifyMode { get; set; }

    /// <summary>False when -Database was bound from a piped object's property instead of by the caller.</summary>
    internal bool DatabaseNamedByCaller { get; set; } = true;

    protected override void BeginProcessing()
    {
        // Only the caller's parameters are bound here. A piped BackupInfo binds its Database property (the backed-up
        // database's name) to -Database later, which would restore into a new file of that name beside the caller.
        DatabaseNamedByCaller = MyInvocation.BoundParameters.ContainsKey(nameof(Database));
        base.BeginProcessing();
    }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        if (InputObject is not null && !DatabaseNamedByCaller)
        {
            throw new DbMigrationException(ErrorIds.RestoreTargetRequired, ErrorKind.InvalidArgument,
                $"Name the database to restore onto with -Database. The piped backup's Database property ('{InputObject.Database}') is the backed-up database's name, not a target; the backup was taken from {InputObject.Source}.")
            { Target = InputObject.Path };
        }

        var target = ResolveTarget(host);
        var backup = ChooseBackup(host, target);
        RestoreService.EnsureSameEngine(backup, target);
        // Restoring another database's backup is allowed (a staging copy), but never unannounced.
        var other = !string.Equals(backup.Database, target.Name, StringComparison.OrdinalIgnoreCase)
            ? $" of another database, '{backup.Database}' (taken from {backup.Source})"
            : !backup.MayComeFrom(target) ? $" of a database of the same name elsewhere (taken from {backup.Source})" : string.Empty;
        if (other.Length > 0)
        {
            host.WriteWarning($"Backup {backup.Id} is{other}; restoring it gives '{target.Name}' that database's data (whatever '{target.Name}' holds now, if it exists, is replaced).");
        }

        if (!host.ShouldProcess(target.ToString(), $"Replace the database with backup {backup.Id}{other} ({backup.Category}, taken {backup.CreatedUtc:u})"))
        {
            return;
        }

        RestoreResult result;
        try
        {
            result = await new RestoreService().RestoreAsync(new RestoreRequest
            {
                Target = target,
                Backup = backup,
                Passphrase = Secrets.ToPlain(Passphrase),
                SkipSafetyBackup = SkipSafetyBackupMode,
                SafetyBackupPath = SafetyBackupPath is null ? null : host.ResolvePath(SafetyBackupPath),
                Force = ForceMode,
                Reverify = ReverifyMode,
            }, new HostProgress(host), cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (LatestMode && ex.ErrorId is ErrorIds.BackupVerificationFailed or ErrorIds.BackupCorrupt)
        {
            throw PointToOlderBackup(host, target, backup, ex);
        }

        host.WriteObject(result);
    }

    /// <summary>
    /// The emergency rollback's newest backup is damaged: say which older one to take instead (the newest that passed
    /// verification, else the newest), rather than pick it silently.
    /// </summary>
    private DbMigrationException PointToOlderBackup(ICmdletHost host, Targets.DatabaseTarget target, BackupInfo damaged, DbMigrationException error)
    {
        var root = host.ResolvePath(Path!);
        var older = new BackupRepository(root).List(target.Name)
            .Where(b => (Category is null || b.Category == Category) && b.CreatedUtc < damaged.CreatedUtc && b.MayComeFrom(target))
            .ToList();
        var candidate = older.LastOrDefault(b => b.Verification.Status == VerificationStatus.Passed) ?? older.LastOrDefault();
        if (candidate is null)
        {
            return error;
        }

        return new DbMigrationException(error.ErrorId, error.Kind,
            $"{error.Message} The newest older {(Category is null ? string.Empty : Category + " ")}backup is {candidate.Id} (taken {candidate.CreatedUtc:u}, verification: {candidate.Verification.Status}): Restore-MigrationBackup -Database '{target}' -Path '{root}' -Id {candidate.Id}", error)
        { Target = error.Target };
    }

    private BackupInfo ChooseBackup(ICmdletHost host, Targets.DatabaseTarget target)
    {
        // The manifest on disk, not the piped copy: `$b = Backup-Database …; $b | Test-DatabaseBackup` records a
        // verdict that the object held in $b predates.
        if (InputObject is not null)
        {
            return Directory.Exists(InputObject.Path) ? BackupManifest.Read(InputObject.Path) : InputObject;
        }

        if (BackupPath is not null)
        {
            return BackupManifest.Read(host.ResolvePath(BackupPath));
        }

        var repository = new BackupRepository(host.ResolvePath(Path!));
        if (Id is not null)
        {
            return repository.Get(Id, target.Name);
        }

        return repository.Latest(target, Category);
    }
}
