using System.Management.Automation;
using System.Security;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Backs up a database into a checksummed, optionally compressed and encrypted backup folder.</para>
/// </summary>
[Cmdlet(VerbsData.Backup, "Database", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(BackupInfo))]
public sealed class BackupDatabaseCommand : DatabaseCmdlet
{
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The backup repository folder; backups go to <Path>/<database>/<id>/.")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(HelpMessage = "A second, independent repository that receives a verified copy of the backup.")]
    [ValidateNotNullOrEmpty]
    public string? SecondaryPath { get; set; }

    [Parameter(HelpMessage = "Manual, Daily, Weekly, Monthly or PreMigration; retention and -Latest use it.")]
    public BackupCategory Category { get; set; } = BackupCategory.Manual;

    [Parameter(HelpMessage = "None, Fast (Zstandard level 1, on up to four threads) or Small (Brotli quality 4).")]
    public BackupCompression Compress { get; set; } = BackupCompression.None;

    [Parameter(HelpMessage = "PostgreSQL and MariaDB: Auto (the engine's dump tool, else the built-in dump), EngineTool (the tool only) or BuiltIn (no client tools needed).")]
    public BackupDumpMethod DumpMethod { get; set; } = BackupDumpMethod.Auto;

    [Parameter(HelpMessage = "Also write a human-readable SQL dump (compressed and encrypted like the primary copy).")]
    public SwitchParameter IncludeSqlDump { get => new(IncludeSqlDumpMode); set => IncludeSqlDumpMode = value.IsPresent; }

    [Parameter(HelpMessage = "Encrypt with AES-256-GCM using a key derived from -Passphrase.")]
    public SwitchParameter Encrypt { get => new(EncryptMode); set => EncryptMode = value.IsPresent; }

    [Parameter(HelpMessage = "The passphrase for -Encrypt. It is never stored.")]
    public SecureString? Passphrase { get; set; }

    [Parameter(HelpMessage = "Run Test-DatabaseBackup right after the backup.")]
    public SwitchParameter Verify { get => new(VerifyMode); set => VerifyMode = value.IsPresent; }

    [Parameter(HelpMessage = "Labels stored in backup.json.")]
    [ValidateNotNullOrEmpty]
    public string[] Tag { get; set; } = [];

    internal bool IncludeSqlDumpMode { get; set; }

    internal bool EncryptMode { get; set; }

    internal bool VerifyMode { get; set; }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var passphrase = Secrets.ToPlain(Passphrase);
        if (EncryptMode && string.IsNullOrEmpty(passphrase))
        {
            throw new DbMigrationException(ErrorIds.BackupPassphraseRequired, ErrorKind.InvalidArgument, "-Encrypt needs -Passphrase.");
        }

        if (!EncryptMode && passphrase is not null)
        {
            throw new DbMigrationException(ErrorIds.BackupPassphraseRequired, ErrorKind.InvalidArgument, "-Passphrase was given without -Encrypt; add -Encrypt to encrypt the backup.");
        }

        var path = host.ResolvePath(Path);
        if (!host.ShouldProcess(target.ToString(), $"Back up to '{path}' ({Category}, {BackupStreams.Describe(BackupStreams.MethodFor(Compress), EncryptMode)})"))
        {
            return;
        }

        var progress = new HostProgress(host);
        var info = await new BackupService().CreateAsync(new BackupRequest
        {
            Source = target,
            Path = path,
            SecondaryPath = SecondaryPath is null ? null : host.ResolvePath(SecondaryPath),
            Category = Category,
            Compression = Compress,
            IncludeSqlDump = IncludeSqlDumpMode,
            DumpMethod = DumpMethod,
            Passphrase = EncryptMode ? passphrase : null,
            Tags = Tag,
        }, progress, cancellationToken).ConfigureAwait(false);

        if (VerifyMode)
        {
            var verification = await new BackupVerifier().VerifyAsync(info, passphrase, target, progress, cancellationToken).ConfigureAwait(false);
            info = BackupManifest.Read(info.Path) with { SecondaryPath = info.SecondaryPath, ConnectedSource = info.ConnectedSource };
            if (verification.Status != VerificationStatus.Passed)
            {
                host.WriteError(new DbMigrationException(verification.ErrorId ?? ErrorIds.BackupVerificationFailed, verification.FailureKind,
                    $"Backup {info.Id} was written but {(verification.Status == VerificationStatus.NotVerified ? "could not be verified" : "failed verification")}: {verification.Message}") { Target = info.Path });
            }
        }

        host.WriteObject(info);
    }
}
