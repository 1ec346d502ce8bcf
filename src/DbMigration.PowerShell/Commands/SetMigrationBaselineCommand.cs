using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Adopts an existing database at a version: earlier migrations are recorded as baseline, not run.</para>
/// </summary>
[Cmdlet(VerbsCommon.Set, "MigrationBaseline", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(MigrationInfo))]
public sealed class SetMigrationBaselineCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The version the database is already at.")]
    [ValidateNotNullOrEmpty]
    public string Version { get; set; } = string.Empty;

    [Parameter(HelpMessage = "The migrations folder; every file up to -Version is recorded with its checksum.")]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        if (!host.ShouldProcess(target.ToString(), $"Record migrations up to V{Version} as baseline (they are not run)"))
        {
            return;
        }

        var adopted = await new MigrationService().BaselineAsync(target, Path is null ? null : host.ResolvePath(Path), Version, new HostProgress(host), cancellationToken).ConfigureAwait(false);
        foreach (var info in adopted)
        {
            host.WriteObject(info);
        }
    }
}
