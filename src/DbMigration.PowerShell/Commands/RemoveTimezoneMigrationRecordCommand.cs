using System.Management.Automation;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Timezone;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Releases the rollback record of a finished timezone migration run; the run can then only be reversed from its backup.</para>
/// </summary>
[Cmdlet(VerbsCommon.Remove, "TimezoneMigrationRecord", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(TimezoneRecordRemoval))]
public sealed class RemoveTimezoneMigrationRecordCommand : DatabaseCmdlet
{
    // `$run | Undo-TimezoneMigration ./events.db`: a run's result binds its RunId.
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true, HelpMessage = "The run id from Invoke-TimezoneMigration (RunId) or its report.")]
    [Alias("RunId")]
    [ValidateNotNullOrEmpty]
    public string Id { get; set; } = string.Empty;

    [Parameter(HelpMessage = "Remove the record of a run that failed its validation too.")]
    public SwitchParameter Force { get => new(ForceMode); set => ForceMode = value.IsPresent; }

    internal bool ForceMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        if (host.ShouldProcess(target.ToString(), $"Remove the rollback record of timezone migration run {Id}; the run can then no longer be undone, only its backup restored"))
        {
            host.WriteObject(await new TimezoneMigrationService().RemoveRecordAsync(target, Id, ForceMode, new HostProgress(host), cancellationToken).ConfigureAwait(false));
        }
    }
}
