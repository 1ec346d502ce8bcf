using System.Management.Automation;
using System.Security;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Targets;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Proves a backup restores: checksums, decryption, a scratch restore, integrity and content.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "DatabaseBackup", DefaultParameterSetName = InputObjectSet)]
[OutputType(typeof(BackupVerification))]
public sealed class TestDatabaseBackupCommand : DbMigrationCmdlet
{
    private const string InputObjectSet = "InputObject";
    private const string PathSet = "BackupPath";

    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputObjectSet, HelpMessage = "A BackupInfo from Backup-Database or Get-DatabaseBackup.")]
    public BackupInfo? InputObject { get; set; }

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, HelpMessage = "The folder of one backup (the one holding backup.json).")]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    [Parameter(HelpMessage = "The passphrase of an encrypted backup.")]
    public SecureString? Passphrase { get; set; }

    [Parameter(HelpMessage = "For server engines: the server (and credentials) to create the scratch database on. Defaults to the backup's source (with the credentials it was taken with, when piped from Backup-Database).")]
    public DatabaseTarget? Server { get; set; }

    [Parameter(HelpMessage = "User name and password for the scratch server.")]
    [Credential]
    public PSCredential? Credential { get; set; }

    internal (string? UserName, string? Password)? ResolvedCredential { get; set; }

    internal override void PrepareOnPipelineThread()
    {
        if (Credential is not null && Credential != PSCredential.Empty)
        {
            ResolvedCredential = (Credential.UserName, Credential.GetNetworkCredential().Password);
        }
    }

    private DatabaseTarget? _server;

    // The scratch restore's server connections (the maintenance database's included) close with the call.
    internal override void ReleaseIdleConnections()
    {
        if (_server is not null)
        {
            Providers.DatabaseProviders.For(_server).ReleasePooledConnections(_server);
        }
    }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var backup = InputObject ?? BackupManifest.Read(host.ResolvePath(BackupPath!));
        var server = Server;
        if (backup.Engine != DatabaseEngine.Sqlite)
        {
            server ??= backup.ConnectedSource ?? DatabaseTarget.Parse(backup.Source);
            if (ResolvedCredential is { } credential)
            {
                server = server.WithCredential(credential.UserName, credential.Password);
            }
        }

        _server = server;
        var verification = await new BackupVerifier().VerifyAsync(backup, Secrets.ToPlain(Passphrase), server, new HostProgress(host), cancellationToken).ConfigureAwait(false);
        host.WriteObject(verification);
        if (verification.Status != VerificationStatus.Passed)
        {
            host.WriteError(new DbMigrationException(verification.ErrorId ?? ErrorIds.BackupVerificationFailed, verification.FailureKind,
                $"Backup {backup.Id} of '{backup.Database}' {(verification.Status == VerificationStatus.NotVerified ? "could not be verified" : "failed verification")}: {verification.Message}") { Target = backup.Path });
        }
    }
}
