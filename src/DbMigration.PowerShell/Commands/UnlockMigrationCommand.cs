using System.Management.Automation;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Providers;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Removes a stale migration lock left by a killed run. A lock held by a live process is never removed.</para>
/// </summary>
[Cmdlet(VerbsCommon.Unlock, "Migration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(MigrationLockInfo))]
public sealed class UnlockMigrationCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, HelpMessage = "Required: removing a lock is deliberate.")]
    public SwitchParameter Force { get => new(ForceMode); set => ForceMode = value.IsPresent; }

    internal bool ForceMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        if (!ForceMode)
        {
            throw new DbMigrationException(ErrorIds.MigrationLockHeld, ErrorKind.InvalidArgument, "Unlock-Migration needs -Force.");
        }

        var provider = DatabaseProviders.For(target);
        var info = await MigrationLock.InspectAsync(provider, target, cancellationToken).ConfigureAwait(false);
        if (!info.IsStale && !info.IsHeld)
        {
            host.WriteVerbose("No migration lock is set.");
            host.WriteObject(info);
            return;
        }

        if (host.ShouldProcess(target.ToString(), $"Remove the migration lock of {info.Owner}@{info.Host} (pid {info.ProcessId})"))
        {
            host.WriteObject(await MigrationLock.BreakAsync(provider, target, cancellationToken).ConfigureAwait(false));
        }
    }
}
