using System.Diagnostics;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

public sealed record RestoreRequest
{
    public required DatabaseTarget Target { get; init; }

    public required BackupInfo Backup { get; init; }

    public string? Passphrase { get; init; }

    /// <summary>Where the safety backup of the current database goes (defaults to the backup's repository).</summary>
    public string? SafetyBackupPath { get; init; }

    public bool SkipSafetyBackup { get; init; }

    /// <summary>Restore even while other sessions are connected (PostgreSQL sessions are terminated).</summary>
    public bool Force { get; init; }
}

/// <summary>
/// Restores a backup onto a database: verify, take a safety backup, refuse while others are connected, restore
/// into a new database or file, check row counts, then swap it in. Any failure before the swap leaves the
/// original exactly as it was.
/// </summary>
public sealed class RestoreService
{
    public async Task<RestoreResult> RestoreAsync(RestoreRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var target = request.Target;
        var backup = request.Backup;
        if (backup.Engine != target.Engine)
        {
            throw new DbMigrationException(ErrorIds.RestoreEngineMismatch, ErrorKind.InvalidArgument,
                $"Backup {backup.Id} is a {backup.Engine} backup of '{backup.Database}'; it cannot be restored onto the {target.Engine} database {target}.")
            { Target = target.ToString() };
        }

        var provider = DatabaseProviders.For(target);
        progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", $"Verifying {backup.Id}", 5));
        var verification = await new BackupVerifier().VerifyAsync(backup, request.Passphrase, target, null, cancellationToken).ConfigureAwait(false);
        if (verification.Status != VerificationStatus.Passed)
        {
            throw new DbMigrationException(verification.ErrorId ?? ErrorIds.BackupVerificationFailed, ErrorKind.InvalidData,
                $"Backup {backup.Id} failed verification, so nothing was restored: {verification.Message}")
            { Target = backup.Path };
        }

        provider.ReleasePooledConnections(target);
        await using (var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            var sessions = await provider.GetOtherSessionsAsync(target, connection, cancellationToken).ConfigureAwait(false);
            if (sessions.Count > 0 && !request.Force)
            {
                throw new DbMigrationException(ErrorIds.RestoreSessionsConnected, ErrorKind.ResourceBusy,
                    $"{sessions.Count} other session(s) are connected to {target}: {string.Join("; ", sessions)}. Stop them, or pass -Force.")
                { Target = target.ToString() };
            }

            if (sessions.Count > 0 && target.Engine == DatabaseEngine.PostgreSql)
            {
                progress.Warning($"-Force: terminating {sessions.Count} session(s) on {target}.");
                await connection.ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", cancellationToken).ConfigureAwait(false);
            }
        }

        string? safetyId = null;
        if (!request.SkipSafetyBackup)
        {
            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Safety backup of the current database", 30));
            var safety = await new BackupService().CreateAsync(new BackupRequest
            {
                Source = target,
                Path = request.SafetyBackupPath ?? RepositoryRoot(backup),
                Category = BackupCategory.Manual,
                Tags = ["safety", "before-restore-" + backup.Id],
            }, progress, cancellationToken).ConfigureAwait(false);
            safetyId = safety.Id;
        }

        progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Restoring into a new database", 50));
        var strategy = provider.BackupStrategy;
        var work = Path.Combine(Path.GetTempPath(), "dbm-restore-" + Guid.NewGuid().ToString("N"));
        SecureFiles.CreateDirectory(work);
        DatabaseTarget? restored = null;
        var swapped = false;
        try
        {
            var raw = await BackupVerifier.ExtractPrimaryAsync(backup, BackupVerifier.Key(backup, request.Passphrase), work, cancellationToken).ConfigureAwait(false);
            var name = target.Engine == DatabaseEngine.Sqlite
                ? "." + Path.GetFileName(target.FilePath) + ".dbm-restore-" + backup.Id
                : PostgreSqlBackupStrategy.ShortName("dbm_restore", target.Database!, backup.Id);
            restored = await strategy.RestoreToNewAsync(raw, target, name, progress, cancellationToken).ConfigureAwait(false);

            IReadOnlyList<TableSnapshot> tables;
            await using (var connection = await provider.OpenConnectionAsync(restored, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
            {
                tables = await ContentHasher.SnapshotAsync(provider, connection, null, cancellationToken).ConfigureAwait(false);
            }

            var mismatches = BackupVerifier.CompareTables(backup.Tables, tables).Where(c => !c.Passed).ToList();
            if (mismatches.Count > 0)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.InvalidData,
                    "The restored copy does not match the manifest, so the original was left in place: " + string.Join("; ", mismatches.Select(m => m.Message)))
                { Target = target.ToString() };
            }

            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Swapping the restored database in", 90));
            provider.ReleasePooledConnections(target);
            provider.ReleasePooledConnections(restored);
            await strategy.SwapAsync(target, restored, backup.Id, cancellationToken).ConfigureAwait(false);
            swapped = true;
            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Done", 100, Completed: true));
            return new RestoreResult
            {
                BackupId = backup.Id,
                Target = target.ToString(),
                SafetyBackupId = safetyId,
                Tables = tables,
                RowCountsMatch = true,
                Duration = stopwatch.Elapsed,
            };
        }
        catch (Exception ex) when (ex is not DbMigrationException and not OperationCanceledException)
        {
            throw provider.TranslateException(ex, target, null)
                ?? new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.NotSpecified, $"The restore failed and the original was left in place: {ex.Message}", ex) { Target = target.ToString() };
        }
        finally
        {
            if (restored is not null && !swapped)
            {
                try
                {
                    await strategy.DropAsync(restored, CancellationToken.None).ConfigureAwait(false);
                }
                catch (DbMigrationException)
                {
                }
            }

            BackupService.TryDelete(work);
        }
    }

    /// <summary>&lt;root&gt;/&lt;database&gt;/&lt;id&gt; → &lt;root&gt;.</summary>
    internal static string RepositoryRoot(BackupInfo backup) => Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(backup.Path))!)!;
}
