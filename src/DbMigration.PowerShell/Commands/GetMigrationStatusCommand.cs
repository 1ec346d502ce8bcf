using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Reports every migration version: Applied, Pending, Failed, Missing, ChecksumMismatch, OutOfOrder or Baseline.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "MigrationStatus")]
[OutputType(typeof(MigrationInfo))]
public sealed class GetMigrationStatusCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The folder of V<version>__<description>.sql files.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        foreach (var info in await new MigrationService().StatusAsync(ResolveTarget(host), host.ResolvePath(Path), cancellationToken).ConfigureAwait(false))
        {
            host.WriteObject(info);
        }
    }
}
