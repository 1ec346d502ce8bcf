using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Providers;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Shows who holds the migration lock, and whether a stale lock from a killed run remains.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "MigrationLock")]
[OutputType(typeof(MigrationLockInfo))]
public sealed class GetMigrationLockCommand : DatabaseCmdlet
{
    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        host.WriteObject(await MigrationLock.InspectAsync(DatabaseProviders.For(target), target, cancellationToken).ConfigureAwait(false));
    }
}
