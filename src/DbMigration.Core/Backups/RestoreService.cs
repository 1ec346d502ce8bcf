using System.Data.Common;
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

    /// <summary>Restore even while other sessions are connected: server sessions on the database are ended first.</summary>
    public bool Force { get; init; }

    /// <summary>
    /// Verify the restored copy in full (integrity check and content hashes) even when the backup already passed a
    /// full verification with exactly these files.
    /// </summary>
    public bool Reverify { get; init; }
}

/// <summary>
/// Restores a backup onto a database: verify, take a safety backup, refuse while others are connected, restore
/// into a new database or file, check row counts, then swap it in. Any failure before the swap leaves the
/// original exactly as it was. A backup that already passed a full verification with exactly the files it has now
/// (checksums included) is not verified in full a second time: the restored copy's row counts are checked.
/// </summary>
public sealed class RestoreService
{
    /// <summary>Refuses a backup of another engine; callers check it before asking to confirm or warning.</summary>
    public static void EnsureSameEngine(BackupInfo backup, Targets.DatabaseTarget target)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(target);
        if (backup.Engine != target.Engine)
        {
            throw new DbMigrationException(ErrorIds.RestoreEngineMismatch, ErrorKind.InvalidArgument,
                $"Backup {backup.Id} is a {backup.Engine} backup of '{backup.Database}'; it cannot be restored onto the {target.Engine} database {target}.")
            { Target = target.ToString() };
        }
    }

    public async Task<RestoreResult> RestoreAsync(RestoreRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var target = request.Target;
        var backup = request.Backup;
        EnsureSameEngine(backup, target);

        var provider = DatabaseProviders.For(target);
        var strategy = provider.BackupStrategy;
        // A migration or timezone run would go on writing into the database being replaced and report success
        // while its work vanished: refuse while one runs. SQLite's locks are files beside the database, held here
        // until the swap is done; a server's are checked with each sessions check (beside the restore into a new
        // database, and again just before the swap), since a connection holding them would block the swap.
        await using var runLocks = provider.Engine == DatabaseEngine.Sqlite
            ? await HoldSqliteRunLocksAsync(provider, target, cancellationToken).ConfigureAwait(false)
            : new RunLocks();
        if (runLocks.HeldAll)
        {
            RemoveAbandonedSqliteCopies(target.FilePath!, progress);
        }

        progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", $"Checking {backup.Id}", 5));
        var trusted = !request.Reverify && BackupVerifier.PassedAsIs(backup);

        // The verified copy is the one swapped in: restore once into a new database or file, verify it there.
        // SQLite expands the backup beside the database (below), so needs no temp folder.
        using var work = target.Engine == DatabaseEngine.Sqlite ? null : TempWorkFolder.Create("dbm-restore-");

        // The sessions check and the checksums run beside the restore into a new database, which touches neither the
        // target nor its sessions. A failed check stops that restore at once, and is the error reported. Both start on
        // the thread pool: a first connection's set-up runs synchronously for tens of milliseconds on a cold start.
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var checksums = Task.Run(() => CheckChecksumsAsync(backup, cancellationToken), cancellationToken).StopOnFailure(abandon);
        var sessions = Task.Run(() => EnsureNoOtherSessionsAsync(provider, target, request.Force, progress, cancellationToken), cancellationToken).StopOnFailure(abandon);
        RestoredDatabase? copy = null;
        DatabaseTarget? restored = null;
        string? sqliteCopy = null;
        var swapped = false;

        // A trusted restore checks row counts: where the engine builds indexes after the rows, they are counted meanwhile,
        // or taken from the loading itself where that counted every table of the manifest (each COPY the server accepted).
        Task<IReadOnlyList<TableSnapshot>>? counting = null;
        var countedWhileLoading = false;
        RowsLoaded? rowsLoaded = trusted
            ? (copy, loadedRows, token) =>
            {
                countedWhileLoading = loadedRows is not null && loadedRows.Count == backup.Tables.Count && backup.Tables.All(t => loadedRows.ContainsKey(t.Table));
                counting = countedWhileLoading
                    ? Task.FromResult<IReadOnlyList<TableSnapshot>>(backup.Tables.Select(t => new TableSnapshot(t.Table, loadedRows![t.Table], string.Empty)).ToList())
                    : BackupVerifier.CountRowsAsync(provider, copy, token);
                return counting;
            }
            : null;
        try
        {
            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Restoring into a new database", 20));
            var name = target.Engine == DatabaseEngine.Sqlite
                ? SqliteBackupStrategy.CopyPrefix(target.FilePath!) + backup.Id + "-" + Guid.NewGuid().ToString("N")[..8]
                : PostgreSqlBackupStrategy.ShortName(LeftoverCopies.RestorePrefix, target.Database!, LeftoverCopies.RunId(backup));
            // SQLite: the backup expands straight into the copy beside the database. That disk must hold the copy
            // anyway; going through the temp folder wrote it twice and needed room for it there too, in a /tmp that
            // is often a tmpfs of half the memory.
            sqliteCopy = target.Engine == DatabaseEngine.Sqlite ? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(target.FilePath!))!, name) : null;
            var (folder, file) = sqliteCopy is null ? (work!.Path, "snapshot.raw") : (Path.GetDirectoryName(sqliteCopy)!, name);
            try
            {
                var raw = await BackupVerifier.ExtractPrimaryAsync(backup, BackupVerifier.Key(backup, request.Passphrase), folder, abandon.Token, file, besideDatabase: sqliteCopy is not null).ConfigureAwait(false);
                copy = await strategy.RestoreToNewAsync(raw, backup.Format, target, name, rowsLoaded, progress, abandon.Token).ConfigureAwait(false);
                restored = copy.Target;
            }
            catch (Exception) when (!checksums.IsCompletedSuccessfully || !sessions.IsCompletedSuccessfully)
            {
                // A damaged file can fail the extraction or the restore too: its checksum mismatch is the clearer report.
                await Task.WhenAll(checksums, sessions).ConfigureAwait(false);
                throw;
            }

            await Task.WhenAll(checksums, sessions).ConfigureAwait(false);
            work?.Dispose();
            var exists = await sessions.ConfigureAwait(false);
            if (!exists)
            {
                progress.Warning($"{target} does not exist: it is created from backup {backup.Id}. There is nothing to take a safety backup of.");
            }

            var problems = new List<string>();
            IReadOnlyList<TableSnapshot> tables;
            string verification;
            if (trusted)
            {
                progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Counting the restored rows", 60));
                tables = await (counting ?? BackupVerifier.CountRowsAsync(provider, restored, cancellationToken)).ConfigureAwait(false);
                problems.AddRange(BackupVerifier.CompareTables(backup.Tables, tables, rowsOnly: true).Where(c => !c.Passed).Select(c => c.Message));
                verification = $"Checksums match the files verified in full on {backup.Verification.VerifiedUtc:u}; {(countedWhileLoading ? "the rows loaded into each table" : "the restored row counts")} match the manifest.";
            }
            else
            {
                progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Verifying the restored copy", 60));
                var (integrity, hashed) = await BackupVerifier.CheckRestoredCopyAsync(provider, strategy, restored, backup.ContentHashVersion, cancellationToken).ConfigureAwait(false);
                tables = hashed;
                if (integrity.Outcome == IntegrityOutcome.Failed)
                {
                    problems.Add($"{integrity.Method}: {integrity.Message}");
                }

                problems.AddRange(BackupVerifier.CompareTables(backup.Tables, tables).Where(c => !c.Passed).Select(c => c.Message));
                verification = $"Restored copy verified: {integrity.Method}, row counts and content hashes of {tables.Count} table(s) match the manifest.";
            }

            if (problems.Count > 0)
            {
                // A trusted restore proves nothing about the files, so only a full check records a failed verdict.
                if (!trusted)
                {
                    BackupVerifier.Record(backup, VerificationStatus.Failed, string.Join("; ", problems));
                }

                throw new DbMigrationException(ErrorIds.BackupVerificationFailed, ErrorKind.InvalidData,
                    $"Backup {backup.Id} failed verification, so the original was left in place: {string.Join("; ", problems)}{(trusted ? " (-Reverify runs the full check)" : string.Empty)}") { Target = backup.Path };
            }

            if (!trusted)
            {
                BackupVerifier.Record(backup, VerificationStatus.Passed, $"Restored and verified {tables.Count} table(s) during a restore onto {target}.");
            }

            string? safetyId = null;
            if (!request.SkipSafetyBackup && exists)
            {
                progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Safety backup of the current database", 75));
                var safety = await new BackupService().CreateAsync(new BackupRequest
                {
                    Source = target,
                    Path = request.SafetyBackupPath ?? RepositoryRoot(backup),
                    Category = BackupCategory.Manual,
                    Tags = ["safety", "before-restore-" + backup.Id],
                }, progress, cancellationToken).ConfigureAwait(false);
                safetyId = safety.Id;
            }

            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Swapping the restored database in", 90));
            if (await EnsureNoOtherSessionsAsync(provider, target, request.Force, progress, cancellationToken).ConfigureAwait(false) && !exists)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.ResourceExists,
                    $"{target} was created while the restore ran, so it was not replaced. Run the restore again to replace it (with a safety backup first).")
                { Target = target.ToString() };
            }

            provider.ReleasePooledConnections(restored);
            await strategy.SwapAsync(target, copy, backup, progress, cancellationToken).ConfigureAwait(false);
            swapped = true;
            progress?.Report(new ProgressUpdate(5, "Restore-MigrationBackup", "Done", 100, Completed: true));
            return new RestoreResult
            {
                BackupId = backup.Id,
                Target = target.ToString(),
                SafetyBackupId = safetyId,
                Tables = tables,
                RowCountsMatch = true,
                Reverified = !trusted,
                Verification = verification,
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
            // A SQLite copy is there from the moment the backup starts expanding into it.
            if ((restored ?? (sqliteCopy is null ? null : DatabaseTarget.FromFile(sqliteCopy))) is { } leftover && !swapped)
            {
                try
                {
                    await strategy.DropAsync(leftover, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is DbMigrationException or IOException or UnauthorizedAccessException)
                {
                    progress.Warning($"The restored copy {leftover} could not be removed ({ex.Message}); drop it by hand. The target was left as it was.");
                }
            }

            work?.Dispose();
        }
    }

    private static async Task CheckChecksumsAsync(BackupInfo backup, CancellationToken cancellationToken)
    {
        var checksums = await BackupVerifier.CheckFilesAsync(backup, cancellationToken).ConfigureAwait(false);
        if (checksums.Any(c => !c.Passed))
        {
            var why = string.Join("; ", checksums.Where(c => !c.Passed).Select(c => c.Message));
            BackupVerifier.Record(backup, VerificationStatus.Failed, why);
            throw new DbMigrationException(ErrorIds.BackupVerificationFailed, ErrorKind.InvalidData,
                $"Backup {backup.Id} failed verification, so nothing was restored: {why}") { Target = backup.Path };
        }
    }

    /// <summary>The locks of DbMigration's own runs, with the error that names each when it is held.</summary>
    private static (string Name, string ErrorId, string What)[] RunLockNames(DatabaseEngine engine) =>
    [
        (Migrations.MigrationLock.LockName, ErrorIds.MigrationLockHeld, engine == DatabaseEngine.Sqlite ? "A migration (or another restore)" : "A migration"),
        (Timezone.TimezoneMigrationService.LockName, ErrorIds.TimezoneRunInProgress, engine == DatabaseEngine.Sqlite ? "A timezone migration or undo (or another restore)" : "A timezone migration or undo"),
    ];

    /// <summary>Refuses the restore because a run holds its lock; -Force ends other sessions, never DbMigration's own runs.</summary>
    private static async Task<DbMigrationException> RunInProgressAsync(IDatabaseProvider provider, DatabaseTarget target, (string Name, string ErrorId, string What) run, Exception inner, CancellationToken cancellationToken)
    {
        var holder = run.Name == Migrations.MigrationLock.LockName
            ? await Migrations.MigrationLock.FindLiveHolderAsync(provider, target, cancellationToken).ConfigureAwait(false)
            : null;
        return new DbMigrationException(run.ErrorId, ErrorKind.ResourceBusy,
            $"{run.What} is running on {target}{(holder?.Owner is null ? string.Empty : $" ({holder.Owner}@{holder.Host}, pid {holder.ProcessId})")}, so nothing was restored: " +
            "restored under it, its work would be lost while it reported success. Wait for it to finish, or stop it (its lock goes with its process), then restore.", inner)
        { Target = target.ToString() };
    }

    /// <summary>
    /// A restore killed before its swap leaves its restored copy beside the database, as large as the database. With
    /// every run lock held no other restore is writing one, so any there now is abandoned.
    /// </summary>
    private static void RemoveAbandonedSqliteCopies(string path, IProgress<OperationUpdate>? progress)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        foreach (var copy in Directory.EnumerateFiles(directory, SqliteBackupStrategy.CopyPrefix(path) + "*").ToList())
        {
            try
            {
                File.Delete(copy);
                progress.Verbose($"Removed {copy}, left by a restore that was stopped before it finished.");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                progress.Warning($"{copy}, left by a restore that was stopped before it finished, could not be removed ({ex.Message}); delete it by hand.");
            }
        }
    }

    /// <summary>Takes SQLite's migration and timezone lock files for the whole restore, or refuses when a run holds one.</summary>
    private static async Task<RunLocks> HoldSqliteRunLocksAsync(IDatabaseProvider provider, DatabaseTarget target, CancellationToken cancellationToken)
    {
        var held = new RunLocks();
        try
        {
            foreach (var run in RunLockNames(provider.Engine))
            {
                try
                {
                    held.Add(await provider.AcquireLockAsync(target, run.Name, TimeSpan.Zero, cancellationToken).ConfigureAwait(false));
                }
                catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.TargetFileNotFound)
                {
                    // A lost file: no run can be working on it.
                    return held;
                }
                catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
                {
                    throw await RunInProgressAsync(provider, target, run, ex, cancellationToken).ConfigureAwait(false);
                }
            }

            held.HeldAll = true;
            return held;
        }
        catch
        {
            await held.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Refuses when a run holds its lock on a server, checked in the session of a connection to the target.</summary>
    private static async Task EnsureNoServerRunAsync(IDatabaseProvider provider, DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        foreach (var run in RunLockNames(provider.Engine))
        {
            try
            {
                await (await provider.AcquireLockAsync(connection, target, run.Name, TimeSpan.Zero, cancellationToken).ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
            {
                throw await RunInProgressAsync(provider, target, run, ex, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The run locks a restore holds until it is done.</summary>
    private sealed class RunLocks : IAsyncDisposable
    {
        private readonly List<IDatabaseLock> _locks = [];

        /// <summary>Every run lock is held: no other restore, migration or timezone run is working on the target.</summary>
        public bool HeldAll { get; set; }

        public void Add(IDatabaseLock taken) => _locks.Add(taken);

        public async ValueTask DisposeAsync()
        {
            foreach (var taken in _locks)
            {
                await taken.DisposeAsync().ConfigureAwait(false);
            }

            _locks.Clear();
        }
    }

    /// <summary>Refuses (or with -Force ends) other sessions; false when the target does not exist, so none can be connected.</summary>
    private static async Task<bool> EnsureNoOtherSessionsAsync(IDatabaseProvider provider, DatabaseTarget target, bool force, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        provider.ReleasePooledConnections(target);
        DbConnection connection;
        try
        {
            connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.ErrorId is ErrorIds.TargetDatabaseNotFound or ErrorIds.TargetFileNotFound)
        {
            return false;
        }

        await using var _ = connection;
        if (provider.Engine != DatabaseEngine.Sqlite)
        {
            await EnsureNoServerRunAsync(provider, target, connection, cancellationToken).ConfigureAwait(false);
        }

        // Known from the catalog now, rather than from the swap after the whole load.
        if (await provider.RestoreBlockerAsync(connection, cancellationToken).ConfigureAwait(false) is { } blocker)
        {
            throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied, $"Cannot restore onto {target}: {blocker}. Nothing was changed.")
            { Target = target.ToString() };
        }

        // Two seconds in all for closed sessions to go: a SQLite probe itself waits. -Force ends them anyway.
        IReadOnlyList<SessionInfo> sessions;
        try
        {
            sessions = await OtherSessions.ListSettledAsync(provider, target, connection, force ? TimeSpan.Zero : TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.Kind == ErrorKind.PermissionDenied)
        {
            if (!force)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied, $"{ex.Message} Nothing was changed.", ex)
                { Target = target.ToString(), ServerErrorNumber = ex.ServerErrorNumber };
            }

            progress.Warning($"-Force: restoring without knowing who else is connected to {target}: {ex.Message}");
            return true;
        }

        if (sessions.Count > 0 && !force)
        {
            throw new DbMigrationException(ErrorIds.RestoreSessionsConnected, ErrorKind.ResourceBusy,
                $"{sessions.Count} other session(s) are connected to {target}: {string.Join("; ", sessions)}. Stop them, or pass -Force.")
            { Target = target.ToString() };
        }

        if (sessions.Count > 0)
        {
            var ended = await provider.EndOtherSessionsAsync(target, connection, cancellationToken).ConfigureAwait(false);
            progress.Warning(ended > 0
                ? $"-Force: ended {ended} session(s) on {target}: {string.Join("; ", sessions)}."
                : $"-Force: restoring while {sessions.Count} session(s) hold {target}: {string.Join("; ", sessions)}. What they write to the replaced copy is lost.");
        }

        return true;
    }

    /// <summary>&lt;root&gt;/&lt;database&gt;/&lt;id&gt; → &lt;root&gt;.</summary>
    internal static string RepositoryRoot(BackupInfo backup) => Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(backup.Path))!)!;
}
