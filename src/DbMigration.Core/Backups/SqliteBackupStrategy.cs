using System.Globalization;
using System.Text;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;
using Microsoft.Data.Sqlite;

namespace DbMigration.Backups;

/// <summary>
/// SQLite through the online backup API: one step that copies every page under a read lock, so the copy is
/// consistent while the application writes, WAL mode included.
/// </summary>
internal sealed class SqliteBackupStrategy(IDatabaseProvider provider) : IBackupStrategy
{
    public const string Format = "sqlite-backup-api";

    /// <summary>SQLite's file is its own dump: <paramref name="dumpMethod"/> changes nothing.</summary>
    public async Task<SnapshotResult> SnapshotAsync(DatabaseTarget source, string rawPath, string? sqlDumpPath, bool hashInParallel, BackupDumpMethod dumpMethod, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        string version;
        var wait = source.ConnectTimeoutOr(DefaultLockWait);
        try
        {
            await using var connection = (SqliteConnection)await provider.OpenConnectionAsync(source, wait, cancellationToken).ConfigureAwait(false);
            version = (await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false)).VersionText;
            progress.Verbose($"Copying {source} with the SQLite online backup API.");
            await using var destination = OpenFile(rawPath, SqliteOpenMode.ReadWriteCreate);
            await destination.OpenAsync(cancellationToken).ConfigureAwait(false);

            // The copy is a new file in the backup's partial folder, discarded if anything fails: it needs no
            // journal, and one fsync at the end (below, while the hashing runs) instead of SQLite's own.
            await destination.ExecuteAsync("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;", cancellationToken).ConfigureAwait(false);

            // The backup step waits for a writer through SQLite's own busy handler, not the driver's retries.
            await connection.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {(long)wait.TotalMilliseconds}"), cancellationToken).ConfigureAwait(false);
            connection.BackupDatabase(destination);
        }
        catch (Exception ex) when (IsLocked(ex))
        {
            throw new DbMigrationException(ErrorIds.BackupSourceBusy, ErrorKind.ResourceBusy,
                string.Create(CultureInfo.InvariantCulture, $"'{source}' stayed locked by another connection's write for {wait.TotalSeconds:0.#} s, so no backup was taken and nothing was written. Run it again when that write has finished, or wait longer with -ConnectTimeout (up to 600 s)."), ex)
            { Target = source.ToString() };
        }

        SecureFiles.RestrictFile(rawPath);
        if (sqlDumpPath is not null)
        {
            await using var copy = OpenFile(rawPath, SqliteOpenMode.ReadOnly);
            await copy.OpenAsync(cancellationToken).ConfigureAwait(false);
            await WriteSqlDumpAsync(copy, sqlDumpPath, cancellationToken).ConfigureAwait(false);
        }

        // Hash the copy (it is the snapshot) on a thread of its own while the caller writes or checksums it. The
        // caller syncs the file when it becomes the primary copy as it is; otherwise it is a temp file.
        var hashing = DedicatedThread.Run(() => SqliteContentHasher.Hash(rawPath, hashInParallel, cancellationToken), cancellationToken);
        return new SnapshotResult(version, hashing, Format, "database.sqlite", ModeOf(source.FilePath!));
    }

    /// <summary>How long a backup waits for another connection's write when the caller set no -ConnectTimeout.</summary>
    private static readonly TimeSpan DefaultLockWait = TimeSpan.FromSeconds(30);

    private static bool IsLocked(Exception error) => error switch
    {
        DbMigrationException { Kind: ErrorKind.ResourceBusy, InnerException: SqliteException inner } => IsLocked(inner),
        SqliteException sqlite => sqlite.SqliteErrorCode is 5 or 6, // SQLITE_BUSY, SQLITE_LOCKED
        _ => false,
    };

    private static SqliteConnection OpenFile(string path, SqliteOpenMode mode) =>
        new(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ConnectionString);

    public async Task<RestoredDatabase> RestoreToNewAsync(string rawPath, string format, DatabaseTarget like, string name, RowsLoaded? rowsLoaded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(like.FilePath!))!;
        var path = Path.Combine(directory, name);
        if (string.Equals(Path.GetFullPath(rawPath), path, StringComparison.Ordinal))
        {
            // Expanded there already.
            return RestoredDatabase.WithoutSettings(DatabaseTarget.FromFile(path));
        }

        await using (var input = new FileStream(rawPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan))
        await using (var output = SecureFiles.Create(path, 1 << 20))
        {
            await input.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }

        return RestoredDatabase.WithoutSettings(DatabaseTarget.FromFile(path));
    }

    public Task<IReadOnlyList<TableSnapshot>> HashTablesAsync(DatabaseTarget database, int hashVersion, CancellationToken cancellationToken) =>
        DedicatedThread.Run(() => SqliteContentHasher.Hash(database.FilePath!, parallel: true, cancellationToken), cancellationToken);

    /// <summary>The start of the name of a restore's copy beside the database: hidden, named for the file.</summary>
    internal static string CopyPrefix(string path) => "." + Path.GetFileName(path) + ".dbm-restore-";

    public Task<IReadOnlyList<LeftoverCopy>> FindLeftoverCopiesAsync(DatabaseTarget target, System.Data.Common.DbConnection connection, CancellationToken cancellationToken)
    {
        // A copy's journal or WAL counts with it. Whether a restore is writing one now, a file cannot tell.
        if (target.FilePath is null or ":memory:")
        {
            return Task.FromResult<IReadOnlyList<LeftoverCopy>>([]);
        }

        var path = Path.GetFullPath(target.FilePath!);
        var files = Directory.EnumerateFiles(Path.GetDirectoryName(path)!, CopyPrefix(path) + "*").Select(f => new FileInfo(f)).ToList();
        IReadOnlyList<LeftoverCopy> copies = files
            .GroupBy(f => Sidecars.Aggregate(f.FullName, (name, suffix) => name.EndsWith(suffix, StringComparison.Ordinal) ? name[..^suffix.Length] : name), StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new LeftoverCopy(g.Key, LeftoverCopyKind.Restore, g.Sum(f => f.Length), InUse: false))
            .ToList();
        return Task.FromResult(copies);
    }

    /// <summary>The files SQLite keeps beside a database while it is open or was left mid-write.</summary>
    private static readonly string[] Sidecars = ["-journal", "-wal", "-shm"];

    public Task DropAsync(DatabaseTarget scratch, CancellationToken cancellationToken)
    {
        foreach (var suffix in Sidecars.Prepend(string.Empty))
        {
            File.Delete(scratch.FilePath + suffix);
        }

        return Task.CompletedTask;
    }

    public async Task SwapAsync(DatabaseTarget target, RestoredDatabase copy, BackupInfo backup, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var restored = copy.Target;
        var path = target.FilePath!;
        if (!File.Exists(path))
        {
            // Nothing to replace (the file was lost): the restored copy takes its place, with the access it had.
            await GiveLostFileAccessAsync(path, restored.FilePath!, backup, progress, cancellationToken).ConfigureAwait(false);
            File.Move(restored.FilePath!, path, overwrite: false);
            SecureFiles.FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            return;
        }

        // Fold the target's WAL into its file first: a stale -wal left beside the swapped-in file would be replayed into it.
        await using (var connection = (SqliteConnection)await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            await connection.ExecuteAsync("PRAGMA wal_checkpoint(TRUNCATE);", cancellationToken).ConfigureAwait(false);
        }

        if (File.Exists(path + "-wal") && new FileInfo(path + "-wal").Length > 0)
        {
            throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.ResourceBusy,
                $"'{path}-wal' still holds changes after a checkpoint: another process is writing. Nothing was replaced.")
            { Target = path };
        }

        File.Delete(path + "-wal");
        File.Delete(path + "-shm");
        // The verification's read-only connections leave an empty -wal and an -shm beside the copy, which would stay
        // behind under the copy's name.
        foreach (var suffix in new[] { "-wal", "-shm" })
        {
            var sibling = restored.FilePath + suffix;
            if (File.Exists(sibling) && (suffix == "-shm" || new FileInfo(sibling).Length == 0))
            {
                File.Delete(sibling);
            }
        }

        await KeepAccessAsync(path, restored.FilePath!, progress, cancellationToken).ConfigureAwait(false);

        // rename(2) replaces the file atomically: readers see the old database or the new one, never a mix.
        File.Move(restored.FilePath!, path, overwrite: true);
        SecureFiles.FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>The file's permission bits in octal (0640); null on Windows or when they cannot be read.</summary>
    internal static string? ModeOf(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        try
        {
            return Convert.ToString((int)File.GetUnixFileMode(path), 8).PadLeft(4, '0');
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// A restore onto a file that is gone: the copy was written owner-only, so an application running as another
    /// user could not open its own database. It gets the permissions recorded at backup time (SQLite's own default
    /// for a new file, 0644, for backups that do not record them) and, when running as root on Linux, the owner and
    /// group of its folder, which the application must own or share to create its journal there. A warning says
    /// what was chosen.
    /// </summary>
    private static async Task GiveLostFileAccessAsync(string path, string copy, BackupInfo backup, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = default(UnixFileMode);
        var recorded = backup.SourceFileMode is { } text && TryParseMode(text, out mode);
        mode = recorded ? mode : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(copy, mode);
        var modeText = Convert.ToString((int)mode, 8).PadLeft(4, '0');
        var how = recorded ? $"mode {modeText}, as when backup {backup.Id} was taken" : $"mode {modeText} (backup {backup.Id} does not record the file's mode)";
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            progress.Warning($"'{path}' did not exist; the restored file has {how}, and belongs to the user running the restore.");
            return;
        }

        progress.Warning(await OwnLikeAsync(folder, copy, cancellationToken).ConfigureAwait(false) is { } why
            ? $"'{path}' did not exist; the restored file has {how}, but could not be given the owner of '{folder}' ({why}); it belongs to root. Run: chown <owner>:<group> '{path}'."
            : $"'{path}' did not exist; the restored file has {how}, and the owner and group of '{folder}'. If the application runs as another user, give it the file: chown <owner>:<group> '{path}'.");
    }

    /// <summary>Gives <paramref name="copy"/> the owner and group of <paramref name="reference"/>; null, or why it could not.</summary>
    private static async Task<string?> OwnLikeAsync(string reference, string copy, CancellationToken cancellationToken)
    {
        try
        {
            await ExternalTool.RunAsync("chown", ["--reference=" + reference, copy], new Dictionary<string, string?>(), null, null, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is DbMigrationException or System.ComponentModel.Win32Exception)
        {
            return ex.Message;
        }
    }

    private static bool TryParseMode(string text, out UnixFileMode mode)
    {
        mode = 0;
        try
        {
            var bits = Convert.ToInt32(text, 8);
            if (bits is < 0 or > 0xFFF)
            {
                return false;
            }

            mode = (UnixFileMode)bits;
            return true;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException)
        {
            return false;
        }
    }

    /// <summary>
    /// Gives the restored copy the database file's permissions, and, when running as root on Linux, its owner: the
    /// copy was written owner-only, and an application running as another user must go on reading and writing it.
    /// </summary>
    private static async Task KeepAccessAsync(string original, string copy, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        File.SetUnixFileMode(copy, File.GetUnixFileMode(original));
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            return;
        }

        if (await OwnLikeAsync(original, copy, cancellationToken).ConfigureAwait(false) is { } why)
        {
            progress.Warning($"The restored '{original}' keeps its permissions but could not be given its owner and group back ({why}); it belongs to root now. Run: chown <owner>:<group> '{original}'.");
        }
    }

    /// <summary>A plain SQL script that recreates the database (schema, then rows, then indexes, triggers, views).</summary>
    private static async Task WriteSqlDumpAsync(SqliteConnection connection, string path, CancellationToken cancellationToken)
    {
        await using var file = SecureFiles.Create(path, 1 << 20);
        await using var writer = new StreamWriter(file, new UTF8Encoding(false));
        await writer.WriteLineAsync("-- DbMigration SQL dump (SQLite)").ConfigureAwait(false);
        await writer.WriteLineAsync("PRAGMA foreign_keys = OFF;").ConfigureAwait(false);
        await writer.WriteLineAsync("BEGIN TRANSACTION;").ConfigureAwait(false);
        var objects = new List<(string Type, string Name, string Sql)>();
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'trigger' THEN 2 ELSE 3 END, rowid";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                objects.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
        }

        foreach (var (_, name, sql) in objects.Where(o => o.Type == "table"))
        {
            await writer.WriteLineAsync(sql + ";").ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT * FROM \"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var line = new StringBuilder(256);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                line.Clear().Append("INSERT INTO \"").Append(name.Replace("\"", "\"\"", StringComparison.Ordinal)).Append("\" VALUES(");
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    if (i > 0)
                    {
                        line.Append(',');
                    }

                    line.Append(reader.GetValue(i) switch
                    {
                        DBNull => "NULL",
                        long l => l.ToString(CultureInfo.InvariantCulture),
                        double d => d.ToString("R", CultureInfo.InvariantCulture),
                        byte[] b => "X'" + Convert.ToHexString(b) + "'",
                        var other => "'" + Convert.ToString(other, CultureInfo.InvariantCulture)!.Replace("'", "''", StringComparison.Ordinal) + "'",
                    });
                }

                await writer.WriteLineAsync(line.Append(");")).ConfigureAwait(false);
            }
        }

        foreach (var (_, _, sql) in objects.Where(o => o.Type != "table"))
        {
            await writer.WriteLineAsync(sql + ";").ConfigureAwait(false);
        }

        await writer.WriteLineAsync("COMMIT;").ConfigureAwait(false);
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        file.Flush(flushToDisk: true);
    }
}
