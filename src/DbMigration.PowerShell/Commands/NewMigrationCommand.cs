using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Scaffolds the next V&lt;n&gt;__&lt;name&gt;.sql migration with up and down sections.</para>
/// </summary>
[Cmdlet(VerbsCommon.New, "Migration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(MigrationFile))]
public sealed class NewMigrationCommand : DbMigrationCmdlet
{
    [Parameter(Mandatory = true, Position = 0, HelpMessage = "The migrations folder (created if missing).")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1, HelpMessage = "What the migration does; it becomes the file's description.")]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    internal override Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var folder = host.ResolvePath(Path);
        if (host.ShouldProcess(folder, $"Create the next migration '{Name}'"))
        {
            host.WriteObject(MigrationService.NewFile(folder, Name));
        }

        return Task.CompletedTask;
    }
}
