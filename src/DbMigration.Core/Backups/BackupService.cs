using System.Diagnostics;
using System.Reflection;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>What Backup-Database was asked to do.</summary>
public sealed record BackupRequest
{
    public required DatabaseTarget Source { get; init; }

    public required string Path { get; init; }

    public string? SecondaryPath { get; init; }

    public BackupCategory Category { get; init; } = BackupCategory.Manual;

    public BackupCompression Compression { get; init; } = BackupCompression.None;

    public bool IncludeSqlDump { get; init; }

    public BackupDumpMethod DumpMethod { get; init; } = BackupDumpMethod.Auto;

    /// <summary>Encrypts with AES-256-GCM when set. Held only for the duration of the call.</summary>
    public string? Passphrase { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Test for fault injection: wraps the stream each backup file is written to.</summary>
    internal Func<Stream, Stream>? WrapOutput { get; init; }
}

/// <summary>Takes backups: snapshot, compress, encrypt, checksum, then publish atomically (and copy to the secondary).</summary>
public sealed class BackupService
{
    public static string ToolVersion { get; } =
        typeof(BackupService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// The second copy is there for when the first location is lost: one inside the other (or the same folder, by
    /// another spelling or a link) would go with it, and would nest one repository's folders in the other's catalog.
    /// </summary>
    private static void RefuseOverlap(string primary, string secondary)
    {
        static string Real(string path)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
            return Directory.Exists(full) && new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target
                ? Path.TrimEndingDirectorySeparator(target.FullName)
                : full;
        }

        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var (a, b) = (Real(primary), Real(secondary));
        bool Inside(string inner, string outer) => inner.StartsWith(outer + Path.DirectorySeparatorChar, comparison);
        var relation = string.Equals(a, b, comparison) ? "is the same folder as" : Inside(b, a) ? "is inside" : Inside(a, b) ? "contains" : null;
        if (relation is not null)
        {
            throw new DbMigrationException(ErrorIds.BackupSecondaryNotIndependent, ErrorKind.InvalidArgument,
                $"-SecondaryPath '{secondary}' {relation} -Path '{primary}': the second copy must be in a location of its own (another disk or share), so that losing one does not lose both. Nothing was backed up.")
            { Target = secondary };
        }
    }

    public async Task<BackupInfo> CreateAsync(BackupRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var provider = DatabaseProviders.For(request.Source);
        var strategy = provider.BackupStrategy;
        var repository = new BackupRepository(request.Path);
        var created = DateTimeOffset.UtcNow;
        var id = BackupRepository.NewId(created);
        var database = request.Source.Name;
        BackupRepository.RemoveStalePartials(repository.DatabaseFolder(database), TimeSpan.FromHours(12));
        // A secondary that cannot be written is bad input, refused before the primary is taken.
        var secondaryRepository = request.SecondaryPath is null ? null : new BackupRepository(request.SecondaryPath);
        if (secondaryRepository is not null)
        {
            RefuseOverlap(repository.Root, secondaryRepository.Root);
        }

        secondaryRepository?.EnsureWritable(database);
        if (secondaryRepository is not null)
        {
            // A backup killed while copying to the secondary leaves its partial copy there.
            BackupRepository.RemoveStalePartials(secondaryRepository.DatabaseFolder(database), TimeSpan.FromHours(12));
        }

        var partial = repository.BeginPartial(database, id);
        // -Verbose tells the same story as backup.log.
        var log = new BackupLog(Path.Combine(partial, "backup.log"), progress.Verbose);
        BackupInfo info;
        string final;
        try
        {
            log.Write($"Backup {id} of {request.Source} ({request.Category}) by DbMigration {ToolVersion}.");
            progress?.Report(new ProgressUpdate(3, "Backup-Database", $"Snapshot of {database}", 0));
            var raw = Path.Combine(partial, ".snapshot.raw");
            var dump = request.IncludeSqlDump ? Path.Combine(partial, "dump.sql") : null;
            var transforms = request.Compression != BackupCompression.None || request.Passphrase is not null;
            var snapshot = await strategy.SnapshotAsync(request.Source, raw, dump, hashInParallel: !transforms, request.DumpMethod, progress, cancellationToken).ConfigureAwait(false);
            log.Write($"Snapshot taken ({snapshot.Format}).");

            byte[]? key = null;
            BackupEncryption? encryption = null;
            if (request.Passphrase is not null)
            {
                (key, encryption) = BackupStreams.DeriveNewKey(request.Passphrase);
            }

            var files = new List<BackupFile>();
            var rawSize = new FileInfo(raw).Length;
            var method = BackupStreams.MethodFor(request.Compression);
            var primaryName = snapshot.PrimaryFileName + BackupStreams.Extension(method, key is not null);
            var started = Stopwatch.StartNew();
            var bytes = new SyncProgress<long>(done => progress?.Report(new ProgressUpdate(3, "Backup-Database", $"Writing {primaryName}",
                100.0 * done / Math.Max(1, rawSize),
                done > 0 ? TimeSpan.FromSeconds(started.Elapsed.TotalSeconds * (rawSize - done) / done) : null,
                $"{IO.ByteSize.Format(done)} of {IO.ByteSize.Format(rawSize)}")));
            if (request.Compression == BackupCompression.None && key is null && request.WrapOutput is null)
            {
                // Nothing to transform: the snapshot file is the primary copy. Checksum it in place while the disk
                // syncs it (and the tables are hashed from it), then rename it. Dump tools do not all fsync.
                var syncing = DedicatedThread.Run(() => SecureFiles.FlushFile(raw), cancellationToken);
                var sha = await BackupStreams.Sha256Async(raw, cancellationToken).ConfigureAwait(false);
                await syncing.ConfigureAwait(false);
                await snapshot.Tables.ConfigureAwait(false);
                File.Move(raw, Path.Combine(partial, primaryName));
                files.Add(new BackupFile(primaryName, rawSize, sha, "primary"));
            }
            else
            {
                await using (var input = new FileStream(raw, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan))
                {
                    files.Add(await Write(input, Path.Combine(partial, primaryName), "primary", request, key, bytes, cancellationToken).ConfigureAwait(false));
                }
            }

            if (dump is not null)
            {
                // The dump is as sensitive as the data: it gets the same compression and encryption.
                var dumpName = "dump.sql" + BackupStreams.Extension(method, key is not null);
                if (dumpName != "dump.sql")
                {
                    await using (var input = new FileStream(dump, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan))
                    {
                        files.Add(await Write(input, Path.Combine(partial, dumpName), "sql-dump", request, key, null, cancellationToken).ConfigureAwait(false));
                    }

                    File.Delete(dump);
                }
                else
                {
                    files.Add(new BackupFile("dump.sql", new FileInfo(dump).Length, await BackupStreams.Sha256Async(dump, cancellationToken).ConfigureAwait(false), "sql-dump"));
                }
            }

            var tables = await snapshot.Tables.ConfigureAwait(false);
            if (File.Exists(raw))
            {
                File.Delete(raw);
            }

            log.Write($"{tables.Count} table(s), {tables.Sum(t => t.Rows)} row(s) hashed.");
            log.Write($"Wrote {string.Join(", ", files.Select(f => $"{f.Name} ({f.Size} bytes, sha256 {f.Sha256})"))}; {BackupStreams.Describe(method, key is not null)}.");
            info = new BackupInfo
            {
                Id = id,
                Database = database,
                Engine = request.Source.Engine,
                ServerVersion = snapshot.ServerVersion,
                Source = request.Source.ToString(),
                CreatedUtc = created,
                Category = request.Category,
                Tags = request.Tags,
                ToolVersion = ToolVersion,
                Format = snapshot.Format,
                Files = files,
                Tables = tables,
                Compression = request.Compression,
                CompressionMethod = method,
                Encryption = encryption,
                DurationMs = stopwatch.ElapsedMilliseconds,
                SecondaryPath = request.SecondaryPath is null ? null : new BackupRepository(request.SecondaryPath).BackupFolder(database, id),
                SourceFileMode = snapshot.SourceFileMode,
                ContentHashVersion = ContentHasher.CurrentVersion,
            };
            BackupManifest.Write(partial, info);
            log.Write($"Completed in {stopwatch.ElapsedMilliseconds} ms.");
            log.Close();
            final = repository.Publish(partial, database, id);
        }
        catch (Exception ex)
        {
            log.Write("FAILED: " + ex.Message);
            log.Close();
            TryDelete(partial);
            TryRemoveIfEmpty(repository.DatabaseFolder(database));
            throw Translate(ex, request, provider);
        }

        string? secondary = null;
        if (secondaryRepository is not null)
        {
            try
            {
                secondary = CopyToSecondary(final, secondaryRepository, database, id);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The primary is complete and published: say so, and stop its manifest pointing at a copy that is not there.
                BackupManifest.Write(final, info with { SecondaryPath = null });
                throw new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.WriteError,
                    $"Backup {id} is complete and in the catalog at '{final}', but its secondary copy to '{request.SecondaryPath}' failed: {ex.Message}", ex)
                { Target = request.SecondaryPath };
            }
        }

        progress?.Report(new ProgressUpdate(3, "Backup-Database", "Done", 100, Completed: true));
        return info with { Path = final, SecondaryPath = secondary, ConnectedSource = request.Source };
    }

    private static Task<BackupFile> Write(Stream input, string destination, string kind, BackupRequest request, byte[]? key, IProgress<long>? progress, CancellationToken cancellationToken) =>
        BackupStreams.WriteAsync(input, destination, kind, BackupStreams.MethodFor(request.Compression), key, request.WrapOutput, progress, cancellationToken);

    /// <summary>The secondary copy is written the same way (partial, then rename) and checked against the primary's checksums.</summary>
    private static string CopyToSecondary(string primary, BackupRepository secondary, string database, string id)
    {
        var partial = secondary.BeginPartial(database, id);
        try
        {
            foreach (var file in Directory.EnumerateFiles(primary))
            {
                var destination = Path.Combine(partial, Path.GetFileName(file));
                File.Copy(file, destination);
                SecureFiles.RestrictFile(destination);
                SecureFiles.FlushFile(destination);
            }

            var manifest = BackupManifest.Read(partial);
            BackupManifest.Write(partial, manifest with { SecondaryPath = null });
            foreach (var file in manifest.Files)
            {
                var hash = BackupStreams.Sha256Async(Path.Combine(partial, file.Name), CancellationToken.None).GetAwaiter().GetResult();
                if (hash != file.Sha256)
                {
                    throw new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.WriteError, $"The secondary copy of {file.Name} does not match its checksum.");
                }
            }

            return secondary.Publish(partial, database, id);
        }
        catch
        {
            TryDelete(partial);
            TryRemoveIfEmpty(secondary.DatabaseFolder(database));
            throw;
        }
    }

    private static Exception Translate(Exception ex, BackupRequest request, IDatabaseProvider provider) => TranslateFailure(ex, request, provider) switch
    {
        // An application role often may not read every table: say what a backup needs rather than which query failed.
        DbMigrationException { ErrorId: ErrorIds.QueryStatementFailed, Kind: ErrorKind.PermissionDenied } denied => new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.PermissionDenied,
            $"A backup reads everything in {request.Source}, and the connecting user may not: {denied.Message}. Back up as the database's owner or a user who may read all of it. Nothing was added to the catalog.", denied)
        { Target = request.Source.ToString(), Sql = denied.Sql, SqlState = denied.SqlState, ServerErrorNumber = denied.ServerErrorNumber },
        // The same refusal reported by mariadb-dump or pg_dump.
        DbMigrationException { ErrorId: ErrorIds.BackupToolFailed } tool when DeniedByServer(tool.Message) => new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.PermissionDenied,
            $"A backup reads everything in {request.Source}, and the connecting user may not: {tool.Message}. Back up as the database's owner or a user who may read all of it. Nothing was added to the catalog.", tool)
        { Target = request.Source.ToString() },
        var other => other,
    };

    /// <summary>A dump tool's report of the server refusing a read: MySQL 1142/1143 (command or column denied), 1044, PostgreSQL's permission denied.</summary>
    private static bool DeniedByServer(string message) =>
        message.Contains(" command denied to user ", StringComparison.Ordinal) || message.Contains("Access denied for user ", StringComparison.Ordinal) ||
        message.Contains("permission denied for ", StringComparison.Ordinal);

    private static Exception TranslateFailure(Exception ex, BackupRequest request, IDatabaseProvider provider) => ex switch
    {
        DbMigrationException known => known,
        OperationCanceledException => ex,
        IOException io when IsDiskFull(io) => new DbMigrationException(ErrorIds.BackupDiskFull, ErrorKind.WriteError,
            $"The disk holding '{request.Path}' filled up during the backup; the partial backup was removed and the catalog is unchanged.", ex)
        { Target = request.Path },
        UnauthorizedAccessException or IOException => new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.WriteError,
            $"Writing the backup to '{request.Path}' failed: {ex.Message}. The partial backup was removed.", ex)
        { Target = request.Path },
        _ => provider.TranslateException(ex, request.Source, null) ?? new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.NotSpecified, $"The backup failed: {ex.Message}", ex),
    };

    internal static bool IsDiskFull(IOException ex) =>
        ex.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027) || ex.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase);

    /// <summary>A failed first backup of a database leaves no empty folder behind; a folder with anything in it stays.</summary>
    internal static void TryRemoveIfEmpty(string folder)
    {
        try
        {
            if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder, recursive: false);
            }
        }
        catch (IOException)
        {
            // Another backup of the same database started in it meanwhile.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    internal static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>backup.log beside the backup: UTC timestamps, one line per step.</summary>
internal sealed class BackupLog(string path, Action<string>? echo = null)
{
    private StreamWriter? _writer;

    public void Write(string line)
    {
        echo?.Invoke(line);
        try
        {
            _writer ??= new StreamWriter(SecureFiles.Create(path, 4096));
            _writer.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {line}");
            _writer.Flush();
        }
        catch (IOException)
        {
            // The log never decides whether a backup succeeds.
        }
    }

    public void Close()
    {
        _writer?.Dispose();
        _writer = null;
    }
}

/// <summary>
/// Reports on the caller's thread. System.Progress posts to the thread pool, where a late report can outlive the
/// operation it belongs to.
/// </summary>
internal sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
