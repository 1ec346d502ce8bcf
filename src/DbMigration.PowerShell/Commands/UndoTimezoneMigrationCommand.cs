using System.Management.Automation;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Timezone;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Restores, byte for byte, the values a timezone migration run changed (values changed since are kept).</para>
/// </summary>
[Cmdlet(VerbsCommon.Undo, "TimezoneMigration", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(TimezoneUndoResult))]
public sealed class UndoTimezoneMigrationCommand : DatabaseCmdlet
{
    // `$run | Undo-TimezoneMigration ./events.db`: a run's result binds its RunId.
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true, HelpMessage = "The run id from Invoke-TimezoneMigration (RunId) or its report.")]
    [Alias("RunId")]
    [ValidateNotNullOrEmpty]
    public string Id { get; set; } = string.Empty;

    [Parameter(HelpMessage = "Seconds each statement may wait for a table or row lock another session holds before the undo fails (PostgreSQL, MariaDB; default 10; 0 waits as long as the server allows).")]
    [ValidateRange(0, 86400)]
    public int StatementLockTimeout { get; set; } = (int)DbMigration.Migrations.MigrationRequest.DefaultStatementLockTimeout.TotalSeconds;

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        if (host.ShouldProcess(target.ToString(), $"Restore the original timestamps changed by run {Id}"))
        {
            host.WriteObject(await new TimezoneMigrationService().UndoAsync(target, Id, TimeSpan.FromSeconds(StatementLockTimeout), new HostProgress(host), cancellationToken).ConfigureAwait(false));
        }
    }
}
