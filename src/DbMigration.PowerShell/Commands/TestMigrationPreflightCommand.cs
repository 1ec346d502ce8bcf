using System.Management.Automation;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Preflight;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Checks that a database is safe to migrate, and reports one object per check.</para>
/// <para type="description">Checks connectivity and server version, the engine's integrity check, other
/// sessions, the privilege to create and alter tables, size and row counts, and - with -BackupPath - that the
/// backup location is writable and has room. Bad input becomes a Failed check, never an exception.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "MigrationPreflight")]
[OutputType(typeof(PreflightCheck))]
[OutputType(typeof(bool))]
public sealed class TestMigrationPreflightCommand : DatabaseCmdlet
{
    private readonly PreflightService _service = new();

    /// <summary>Where backups will be written; its space and writability are checked.</summary>
    [Parameter(HelpMessage = "Where backups will be written; checked for free space and writability.")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    /// <summary>Free space must be this many times the estimated backup size.</summary>
    [Parameter(HelpMessage = "Free space must be this many times the estimated backup size (default 2).")]
    [ValidateRange(1.0, 100.0)]
    public double SafetyFactor { get; set; } = 2.0;

    /// <summary>Return only $true (no check failed) or $false.</summary>
    [Parameter(HelpMessage = "Return only $true when no check failed, otherwise $false.")]
    public SwitchParameter Quiet
    {
        get => new(QuietMode);
        set => QuietMode = value.IsPresent;
    }

    /// <summary>The switch as a plain bool, so the logic never touches SwitchParameter (tests set it directly).</summary>
    internal bool QuietMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var backupPath = BackupPath is null ? null : host.ResolvePath(BackupPath);
        IReadOnlyList<PreflightCheck> checks;
        try
        {
            var target = ResolveTarget(host);
            checks = await _service.RunAsync(new PreflightRequest(target, backupPath, TimeSpan.FromSeconds(ConnectTimeout), SafetyFactor), new HostProgress(host), cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.ErrorId is ErrorIds.TargetInvalid or ErrorIds.TargetEngineRequired)
        {
            // Bad input is a failed check, as a missing file is: one bad path among many piped in stops nothing.
            checks = PreflightService.Unusable(Database.ToString(), ex, "the target is not usable", backupPath);
        }

        if (QuietMode)
        {
            host.WriteObject(checks.All(c => c.Status != PreflightStatus.Failed));
            return;
        }

        foreach (var check in checks)
        {
            host.WriteObject(check);
        }
    }
}
