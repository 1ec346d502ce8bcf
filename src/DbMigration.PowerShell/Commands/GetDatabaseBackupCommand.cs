using System.Management.Automation;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Targets;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Lists the backups in a repository, oldest first.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "DatabaseBackup")]
[OutputType(typeof(BackupInfo))]
public sealed class GetDatabaseBackupCommand : DbMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, HelpMessage = "The backup repository folder.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Position = 1, HelpMessage = "Only backups of this database: its name, file path or URI.")]
    [ValidateNotNullOrEmpty]
    public string? Database { get; set; }

    [Parameter(HelpMessage = "Only backups of these categories.")]
    public BackupCategory[]? Category { get; set; }

    [Parameter(HelpMessage = "Only the newest matching backup of each database (per name and source).")]
    public SwitchParameter Latest { get => new(LatestMode); set => LatestMode = value.IsPresent; }

    [Parameter(HelpMessage = "Only the backup with this id.")]
    [ValidateNotNullOrEmpty]
    public string? Id { get; set; }

    internal bool LatestMode { get; set; }

    internal override Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var repository = new BackupRepository(host.ResolvePath(Path));
        repository.EnsureExists();
        var name = Database is null ? null : DatabaseTarget.Parse(Database).Name;
        IEnumerable<BackupInfo> backups = repository.List(name, host.WriteError);
        if (Category is { Length: > 0 })
        {
            backups = backups.Where(b => Category.Contains(b.Category));
        }

        if (Id is not null)
        {
            backups = backups.Where(b => b.Id == Id);
        }

        if (LatestMode)
        {
            // Per database and source: two servers' same-named databases are two databases.
            backups = backups.GroupBy(b => (Name: b.Database.ToUpperInvariant(), Source: b.SourceIdentity)).Select(g => g.Last()).OrderBy(b => b.CreatedUtc).ThenBy(b => b.Id, StringComparer.Ordinal);
        }

        var found = false;
        foreach (var backup in backups)
        {
            found = true;
            host.WriteObject(backup);
        }

        if (!found && Id is not null)
        {
            host.WriteError(new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound,
                $"No backup {Id}{(Database is null ? string.Empty : $" of '{Database}'")} under '{repository.Root}'.") { Target = repository.Root });
        }

        return Task.CompletedTask;
    }
}
