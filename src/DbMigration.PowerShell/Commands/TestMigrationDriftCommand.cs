using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Compares the live schema with the schema recorded after the last migration, and reports every difference.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "MigrationDrift")]
[OutputType(typeof(SchemaDifference))]
public sealed class TestMigrationDriftCommand : DatabaseCmdlet
{
    [Parameter(Position = 1, HelpMessage = "The migrations folder; pending migrations are reported as a warning.")]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var service = new MigrationService();
        if (Path is not null)
        {
            var pending = (await service.StatusAsync(target, host.ResolvePath(Path), cancellationToken).ConfigureAwait(false))
                .Where(i => i.State is MigrationState.Pending or MigrationState.OutOfOrder).ToList();
            if (pending.Count > 0)
            {
                host.WriteWarning($"{pending.Count} migration(s) are pending ({string.Join(", ", pending.Select(p => "V" + p.Version))}); drift is measured against the schema after the last one applied.");
            }
        }

        foreach (var difference in await service.DriftAsync(target, cancellationToken, new HostProgress(host)).ConfigureAwait(false))
        {
            host.WriteObject(difference);
        }
    }
}
