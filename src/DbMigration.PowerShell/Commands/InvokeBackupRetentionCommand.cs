using System.Management.Automation;
using DbMigration.Backups;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Targets;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Removes backups outside a grandfather-father-son policy, from the primary and secondary repositories.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "BackupRetention", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(RetentionDecision))]
public sealed class InvokeBackupRetentionCommand : DbMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, HelpMessage = "The backup repository folder.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(HelpMessage = "The secondary repository; the same backups are removed there.")]
    [ValidateNotNullOrEmpty]
    public string? SecondaryPath { get; set; }

    [Parameter(HelpMessage = "Only apply the policy to this database: its name, file path or URI.")]
    [ValidateNotNullOrEmpty]
    public string? Database { get; set; }

    [Parameter(HelpMessage = "Only apply the policy to backups of these categories (say Daily, Weekly, Monthly); backups of the others are left alone and not counted.")]
    [ValidateNotNullOrEmpty]
    public BackupCategory[]? Category { get; set; }

    [Parameter(HelpMessage = "Always keep this many newest backups (default 3).")]
    [ValidateRange(0, 10000)]
    public int KeepLast { get; set; } = 3;

    [Parameter(HelpMessage = "Keep the newest backup of each of this many days (default 7).")]
    [ValidateRange(0, 10000)]
    public int KeepDaily { get; set; } = 7;

    [Parameter(HelpMessage = "Keep the newest backup of each of this many ISO weeks (default 4).")]
    [ValidateRange(0, 10000)]
    public int KeepWeekly { get; set; } = 4;

    [Parameter(HelpMessage = "Keep the newest backup of each of this many months (default 12).")]
    [ValidateRange(0, 10000)]
    public int KeepMonthly { get; set; } = 12;

    internal override Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var secondary = SecondaryPath is null ? null : host.ResolvePath(SecondaryPath);
        var request = new RetentionRequest(host.ResolvePath(Path), new RetentionPolicy(KeepLast, KeepDaily, KeepWeekly, KeepMonthly))
        {
            SecondaryPath = secondary,
            Database = Database is null ? null : DatabaseTarget.Parse(Database).Name,
            Categories = Category ?? [],
        };
        var plan = new RetentionService().Plan(request, host.WriteError);
        var copiesKept = new List<string>();
        foreach (var (backup, reason) in plan)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var removed = host.ShouldProcess(backup.Path, $"Remove backup {backup.Id} of '{backup.Database}': {reason}");
            var paths = removed ? RetentionService.Remove(backup, secondary) : [];
            if (removed && secondary is null && backup.SecondaryPath is { } copy)
            {
                copiesKept.Add(copy);
            }

            host.WriteObject(new RetentionDecision
            {
                BackupId = backup.Id,
                Database = backup.Database,
                CreatedUtc = backup.CreatedUtc,
                Category = backup.Category,
                Reason = reason,
                Removed = removed,
                Paths = paths,
            });
        }

        if (copiesKept.Count > 0)
        {
            // Off-site copies may be kept longer on purpose, so they are removed only when asked.
            host.WriteWarning($"{copiesKept.Count} removed backup(s) have a secondary copy that was kept: {string.Join(", ", copiesKept)}. Pass -SecondaryPath {System.IO.Path.GetDirectoryName(System.IO.Path.GetDirectoryName(copiesKept[0]))} to apply the policy there too.");
        }

        return Task.CompletedTask;
    }
}
