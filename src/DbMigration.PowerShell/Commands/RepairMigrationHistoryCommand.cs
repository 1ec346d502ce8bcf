using System.Management.Automation;
using DbMigration.Migrations;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>What a failed migration really left behind.</summary>
public enum MigrationResolution
{
    Applied,
    RolledBack,
}

/// <summary>
/// <para type="synopsis">Repairs one version's journal entry: accept its changed checksum, or resolve a failure. Never all at once.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Repair, "MigrationHistory", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = ResolveSet)]
[OutputType(typeof(MigrationInfo))]
public sealed class RepairMigrationHistoryCommand : DatabaseCmdlet
{
    private const string ChecksumSet = "AcceptChecksum";
    private const string ResolveSet = "Resolve";

    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The one version to repair.")]
    [ValidateNotNullOrEmpty]
    public string Version { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ParameterSetName = ChecksumSet, HelpMessage = "The migrations folder, to read the file's current checksum.")]
    [Parameter(ParameterSetName = ResolveSet, HelpMessage = "The migrations folder (optional with -Resolve).")]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ChecksumSet, HelpMessage = "Record the file's current checksum for this applied version.")]
    public SwitchParameter AcceptChecksum { get => new(AcceptChecksumMode); set => AcceptChecksumMode = value.IsPresent; }

    [Parameter(Mandatory = true, ParameterSetName = ResolveSet, HelpMessage = "What the failed migration left: Applied or RolledBack.")]
    public MigrationResolution Resolve { get; set; }

    [Parameter(HelpMessage = "An audit note kept in the journal's event log.")]
    [ValidateNotNullOrEmpty]
    public string? Note { get; set; }

    internal bool AcceptChecksumMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var action = AcceptChecksumMode ? $"Accept the current checksum of V{Version}" : $"Resolve failed V{Version} as {Resolve}";
        if (!host.ShouldProcess(target.ToString(), action))
        {
            return;
        }

        host.WriteObject(await new MigrationService().RepairAsync(
            target, Path is null ? null : host.ResolvePath(Path), Version, AcceptChecksumMode,
            AcceptChecksumMode ? null : Resolve == MigrationResolution.Applied ? MigrationState.Applied : MigrationState.Pending,
            Note, new HostProgress(host), cancellationToken).ConfigureAwait(false));
    }
}
