using System.Diagnostics;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// Proves a backup restores: checksums, then decrypt and decompress, restore into a scratch database, run the
/// engine's integrity check, and compare every table's row count and content hash with the manifest. The outcome is
/// written back into backup.json.
/// </summary>
public sealed class BackupVerifier
{
    /// <summary>Wraps the file the backup expands into, so tests can fail it like a full disk.</summary>
    internal Func<Stream, Stream>? WrapExpandedOutput { get; init; }

    /// <param name="scratchServer">Where to create the scratch database for server engines (defaults to the backup's source).</param>
    public async Task<BackupVerification> VerifyAsync(BackupInfo backup, string? passphrase, DatabaseTarget? scratchServer, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(backup);
        var stopwatch = Stopwatch.StartNew();
        var checks = new List<BackupCheck>();
        string? errorId = null;
        string message;
        try
        {
            message = await RunAsync(backup, passphrase, scratchServer, checks, WrapExpandedOutput, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.Kind is ErrorKind.ConnectionError or ErrorKind.AuthenticationError or ErrorKind.PermissionDenied or ErrorKind.OperationTimeout or ErrorKind.NotInstalled or ErrorKind.ResourceUnavailable)
        {
            // The server could not be reached, or would not let the scratch restore run, or there was no room for the
            // scratch copy: that says nothing about the backup, so its recorded verdict stays as it was.
            progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", "Done", 100, Completed: true));
            return new BackupVerification
            {
                BackupId = backup.Id,
                Database = backup.Database,
                Path = backup.Path,
                Status = VerificationStatus.NotVerified,
                Message = $"{ex.Message} The backup itself was not judged; its recorded verification ({backup.Verification}) is unchanged.",
                Checks = [new BackupCheck("Restore", false, ex.Message)],
                Duration = stopwatch.Elapsed,
                ErrorId = ex.ErrorId,
                FailureKind = ex.Kind,
            };
        }
        catch (DbMigrationException ex)
        {
            errorId = ex.ErrorId;
            message = ex.Message;
            checks.Add(new BackupCheck("Restore", false, ex.Message));
        }

        var passed = errorId is null && checks.All(c => c.Passed);
        if (!passed && errorId is null)
        {
            errorId = ErrorIds.BackupVerificationFailed;
            message = "Verification failed: " + string.Join("; ", checks.Where(c => !c.Passed).Select(c => c.Message));
        }

        var status = passed ? VerificationStatus.Passed : VerificationStatus.Failed;
        foreach (var check in checks)
        {
            progress.Verbose($"{check.Name}: {(check.Passed ? "passed" : "FAILED")}. {check.Message}");
        }

        Record(backup, status, message);
        progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", "Done", 100, Completed: true));
        return new BackupVerification
        {
            BackupId = backup.Id,
            Database = backup.Database,
            Path = backup.Path,
            Status = status,
            Message = message,
            Checks = checks,
            Duration = stopwatch.Elapsed,
            ErrorId = errorId,
        };
    }

    /// <summary>
    /// The engine's integrity check and the content hashes of a restored copy, run at once on their own
    /// connections: both only read, and together they are most of a verification's time.
    /// </summary>
    internal static async Task<(IntegrityReport Integrity, IReadOnlyList<TableSnapshot> Tables)> CheckRestoredCopyAsync(
        IDatabaseProvider provider, IBackupStrategy strategy, DatabaseTarget copy, int hashVersion, CancellationToken cancellationToken)
    {
        var hashing = Task.Run(() => strategy.HashTablesAsync(copy, hashVersion, cancellationToken), cancellationToken);
        IntegrityReport integrity;
        try
        {
            await using var connection = await provider.OpenConnectionAsync(copy, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            integrity = await provider.CheckIntegrityAsync(connection, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Never leave the hashing running against a copy the caller is about to drop.
            await Task.WhenAny(hashing).ConfigureAwait(false);
            throw;
        }

        return (integrity, await hashing.ConfigureAwait(false));
    }

    private static async Task<string> RunAsync(BackupInfo backup, string? passphrase, DatabaseTarget? scratchServer, List<BackupCheck> checks, Func<Stream, Stream>? wrapExpanded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", $"Checksums of {backup.Id}", 5));
        // The checksums run beside the scratch restore: the restore only reads the files, and a mismatch still
        // decides the verdict, whatever the restore of a damaged file did meanwhile.
        var checksums = CheckFilesAsync(backup, cancellationToken);
        const string mismatch = "Checksums do not match: the backup's files are damaged or were changed since it was taken.";
        var provider = DatabaseProviders.For(backup.Engine);
        var strategy = provider.BackupStrategy;
        using var work = TempWorkFolder.Create("dbm-verify-");
        DatabaseTarget? scratch = null;
        try
        {
            byte[]? key;
            string raw;
            try
            {
                key = Key(backup, passphrase);
                progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", "Decrypting and decompressing", 20));
                // SQLite expands straight into its scratch file: one copy of the database in the temp folder, not two.
                raw = await ExtractPrimaryAsync(backup, key, work.Path, cancellationToken, backup.Engine == DatabaseEngine.Sqlite ? ScratchName(backup) : "snapshot.raw", wrapOutput: wrapExpanded).ConfigureAwait(false);

                progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", "Restoring into a scratch database", 40));
                var like = backup.Engine == DatabaseEngine.Sqlite
                    ? DatabaseTarget.FromFile(Path.Combine(work.Path, "scratch.db"))
                    : scratchServer ?? DatabaseTarget.Parse(backup.Source);
                scratch = (await strategy.RestoreToNewAsync(raw, backup.Format, like, ScratchName(backup), null, progress, cancellationToken).ConfigureAwait(false)).Target;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A damaged file can fail the decoding or the restore too: its checksum mismatch is the clearer report,
                // whether the checksums finished before the failure or after it.
                var files = await checksums.ConfigureAwait(false);
                if (files.Any(c => !c.Passed))
                {
                    checks.AddRange(files);
                    return mismatch;
                }

                throw;
            }

            checks.AddRange(await checksums.ConfigureAwait(false));
            if (checks.Any(c => !c.Passed))
            {
                return mismatch;
            }

            checks.Add(new BackupCheck("Decode", true, BackupStreams.Describe(BackupStreams.MethodOf(backup), key is not null) + " decoded."));
            checks.Add(new BackupCheck("Restore", true, $"Restored into scratch {scratch}."));

            progress?.Report(new ProgressUpdate(4, "Test-DatabaseBackup", "Integrity and content", 70));
            var (integrity, restored) = await CheckRestoredCopyAsync(provider, strategy, scratch, backup.ContentHashVersion, cancellationToken).ConfigureAwait(false);
            checks.Add(new BackupCheck("Integrity", integrity.Outcome != IntegrityOutcome.Failed, $"{integrity.Method}: {integrity.Message}"));
            checks.AddRange(CompareTables(backup.Tables, restored));

            return checks.All(c => c.Passed)
                ? $"Restored and verified {backup.Tables.Count} table(s), {backup.Tables.Sum(t => t.Rows)} row(s)."
                : "Verification failed.";
        }
        finally
        {
            if (scratch is not null)
            {
                try
                {
                    await strategy.DropAsync(scratch, CancellationToken.None).ConfigureAwait(false);
                }
                catch (DbMigrationException ex)
                {
                    // Never fail the verdict on it; the next pre-flight names it too.
                    progress.Warning($"The scratch copy {scratch} could not be removed ({ex.Message}); drop it by hand.");
                }
            }

            work.Dispose();
        }
    }

    /// <summary>Every file present, with the recorded size and SHA-256.</summary>
    internal static async Task<IReadOnlyList<BackupCheck>> CheckFilesAsync(BackupInfo backup, CancellationToken cancellationToken)
    {
        var checks = new List<BackupCheck>();
        foreach (var file in backup.Files)
        {
            var path = Path.Combine(backup.Path, file.Name);
            if (!File.Exists(path))
            {
                checks.Add(new BackupCheck("Checksum " + file.Name, false, $"{file.Name} is missing."));
                continue;
            }

            var size = new FileInfo(path).Length;
            var hash = await BackupStreams.Sha256Async(path, cancellationToken).ConfigureAwait(false);
            var ok = size == file.Size && hash == file.Sha256;
            checks.Add(new BackupCheck("Checksum " + file.Name, ok, ok
                ? $"{file.Name}: {size} bytes, SHA-256 matches."
                : $"{file.Name}: expected {file.Size} bytes with SHA-256 {file.Sha256[..12]}…, found {size} bytes with {hash[..12]}… (the file is corrupt or truncated)."));
        }

        return checks;
    }

    internal static string ScratchName(BackupInfo backup) => backup.Engine == DatabaseEngine.Sqlite
        ? "scratch-" + backup.Id + ".db"
        : PostgreSqlBackupStrategy.ShortName(LeftoverCopies.VerifyPrefix, backup.Database, LeftoverCopies.RunId(backup));

    /// <summary>A digest of the files backup.json lists, with their sizes and SHA-256 values.</summary>
    internal static string FilesDigest(BackupInfo backup) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            string.Join("\n", backup.Files.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => $"{f.Name} {f.Size} {f.Sha256}"))))).ToLowerInvariant();

    /// <summary>
    /// True when a full verification passed on exactly the files backup.json lists now. Call it only after the
    /// checksums matched: together they show the bytes are the ones that restored correctly before.
    /// </summary>
    internal static bool PassedAsIs(BackupInfo backup) =>
        backup.Verification.Status == VerificationStatus.Passed && backup.Verification.FilesDigest == FilesDigest(backup);

    /// <summary>Exact row counts of a restored copy, under the names the content hashes use (no hashes).</summary>
    internal static async Task<IReadOnlyList<TableSnapshot>> CountRowsAsync(IDatabaseProvider provider, DatabaseTarget copy, CancellationToken cancellationToken)
    {
        await using var connection = await provider.OpenConnectionAsync(copy, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        var result = new List<TableSnapshot>();
        foreach (var table in await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false))
        {
            await using var command = connection.CreateCommand($"SELECT COUNT(*) FROM {provider.QuoteTable(table.Name)}", null, 0);
            var rows = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            result.Add(new TableSnapshot(table.Name.ToString(), rows, string.Empty));
        }

        return result;
    }

    /// <summary>Compares restored tables with the manifest: row counts, and content hashes unless <paramref name="rowsOnly"/>.</summary>
    internal static IEnumerable<BackupCheck> CompareTables(IReadOnlyList<TableSnapshot> expected, IReadOnlyList<TableSnapshot> actual, bool rowsOnly = false)
    {
        var byName = actual.ToDictionary(t => t.Table, StringComparer.Ordinal);
        foreach (var table in expected)
        {
            if (!byName.Remove(table.Table, out var found))
            {
                yield return new BackupCheck("Table " + table.Table, false, $"{table.Table} is missing after restore.");
                continue;
            }

            if (rowsOnly)
            {
                var rowsMatch = found.Rows == table.Rows;
                yield return new BackupCheck("Table " + table.Table, rowsMatch, rowsMatch
                    ? $"{table.Table}: {table.Rows} row(s)."
                    : $"{table.Table}: expected {table.Rows} row(s), restored {found.Rows}.");
                continue;
            }

            var ok = found.Rows == table.Rows && found.ContentHash == table.ContentHash;
            yield return new BackupCheck("Table " + table.Table, ok, ok
                ? $"{table.Table}: {table.Rows} row(s), content hash matches."
                : $"{table.Table}: expected {table.Rows} row(s) (hash {table.ContentHash[..12]}…), restored {found.Rows} (hash {found.ContentHash[..12]}…).");
        }

        foreach (var extra in byName.Values)
        {
            yield return new BackupCheck("Table " + extra.Table, false, $"{extra.Table} appeared after restore but is not in the manifest.");
        }
    }

    internal static byte[]? Key(BackupInfo backup, string? passphrase)
    {
        if (backup.Encryption is null)
        {
            return null;
        }

        if (string.IsNullOrEmpty(passphrase))
        {
            throw new DbMigrationException(ErrorIds.BackupPassphraseRequired, ErrorKind.InvalidArgument,
                $"Backup {backup.Id} is encrypted ({backup.Encryption.Algorithm}); pass -Passphrase.") { Target = backup.Path };
        }

        return BackupStreams.DeriveKey(passphrase, backup.Encryption);
    }

    /// <summary>
    /// Decrypts and decompresses the primary copy to a raw file in <paramref name="folder"/>, or returns a server
    /// engine's primary copy's own path when it is neither compressed nor encrypted. Callers only read the file.
    /// </summary>
    /// <param name="besideDatabase">The folder is the restored database's, not a temp folder: a full disk there needs other advice.</param>
    /// <param name="wrapOutput">Wraps the file written, so tests can fail it like a full disk.</param>
    internal static async Task<string> ExtractPrimaryAsync(BackupInfo backup, byte[]? key, string folder, CancellationToken cancellationToken, string fileName = "snapshot.raw", bool besideDatabase = false, Func<Stream, Stream>? wrapOutput = null)
    {
        var primary = backup.Files.Single(f => f.Kind == "primary");
        if (backup.Compression == BackupCompression.None && key is null && backup.Engine != DatabaseEngine.Sqlite)
        {
            // Nothing to decode: the dump tool reads the checksummed file in place instead of a copy of it. SQLite
            // keeps the copy: reading its primary in place made a WAL-mode verification test fail twice in CI.
            return Path.Combine(backup.Path, primary.Name);
        }

        var raw = Path.Combine(folder, fileName);
        try
        {
            await using var input = BackupStreams.OpenRead(Path.Combine(backup.Path, primary.Name), BackupStreams.MethodOf(backup), key);
            await using var file = SecureFiles.Create(raw, 1 << 20);
            var output = wrapOutput?.Invoke(file) ?? file;
            await input.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }
        catch (IOException ex) when (BackupService.IsDiskFull(ex))
        {
            throw new DbMigrationException(ErrorIds.BackupDiskFull, ErrorKind.ResourceUnavailable, ExpandedRoomMessage(backup, folder, besideDatabase), ex) { Target = folder };
        }
        catch (Exception ex) when (ex is InvalidDataException or ZstdSharp.ZstdException)
        {
            throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"{primary.Name} does not decompress: {ex.Message}", ex) { Target = backup.Path };
        }

        return raw;
    }

    private static string ExpandedRoomMessage(BackupInfo backup, string folder, bool besideDatabase) =>
        $"The disk holding '{folder}' filled up while backup {backup.Id} was expanded into it ({ByteSize.Format(DiskSpace.AvailableBytes(folder))} free now); what was written is removed. " + (besideDatabase
            ? "A restore writes its copy beside the database before the copy replaces it: that disk needs room for a second copy of the database."
            : "It is a temp folder: point TMPDIR (TEMP on Windows) at a folder with room for the whole database, and run again.");

    internal static void Record(BackupInfo backup, VerificationStatus status, string message)
    {
        var updated = backup with { Verification = new BackupVerificationState(status, DateTimeOffset.UtcNow, message, status == VerificationStatus.Passed ? FilesDigest(backup) : null) };
        foreach (var (folder, manifest) in new[] { (backup.Path, updated), (backup.SecondaryPath, updated with { SecondaryPath = null }) })
        {
            if (folder is not null && File.Exists(Path.Combine(folder, BackupManifest.FileName)))
            {
                try
                {
                    BackupManifest.Write(folder, manifest);
                }
                catch (IOException)
                {
                    // A read-only repository can still be verified; the verdict is returned either way.
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }
}
