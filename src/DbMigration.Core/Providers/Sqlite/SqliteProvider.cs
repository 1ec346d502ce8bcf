using System.Data.Common;
using System.Globalization;
using DbMigration.Errors;
using DbMigration.Targets;
using Microsoft.Data.Sqlite;

namespace DbMigration.Providers.Sqlite;

/// <summary>SQLite through Microsoft.Data.Sqlite and the bundled e_sqlite3 library.</summary>
internal sealed class SqliteProvider : IDatabaseProvider
{
    // SQLite result codes we translate (https://www.sqlite.org/rescode.html).
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteReadOnly = 8;
    private const int SqliteInterrupt = 9;
    private const int SqliteFull = 13;
    private const int SqliteCantOpen = 14;
    private const int SqliteCorrupt = 11;
    private const int SqliteNotADatabase = 26;

    private static readonly ProviderCapabilities Capabilities = new(
        TransactionalDdl: true,
        NativeUuid: false,
        NativeTimestampTz: false,
        ServerLocks: false,
        MultipleDatabases: false);

    static SqliteProvider() => SQLitePCL.Batteries_V2.Init();

    private Backups.IBackupStrategy? _backupStrategy;

    Backups.IBackupStrategy IDatabaseProvider.BackupStrategy => _backupStrategy ??= new Backups.SqliteBackupStrategy(this);

    public DatabaseEngine Engine => DatabaseEngine.Sqlite;

    // Connections are opened with Pooling=False: there is nothing to release.
    public void ReleasePooledConnections(DatabaseTarget target)
    {
    }

    public Task LimitLockWaitAsync(DbConnection connection, TimeSpan wait, CancellationToken cancellationToken) => Task.CompletedTask;

    public bool IsLockWaitTimeout(Exception error) => false;

    public string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public string QuoteTable(TableName table) => table.Schema is null ? QuoteIdentifier(table.Name) : QuoteIdentifier(table.Schema) + "." + QuoteIdentifier(table.Name);

    public ProviderCapabilities GetCapabilities(ServerInfo server) => Capabilities;

    public async Task<DbConnection> OpenConnectionAsync(DatabaseTarget target, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        connectTimeout = target.ConnectTimeoutOr(connectTimeout);
        var path = RequireFile(target);
        var builder = target.RawConnectionString is null
            ? new SqliteConnectionStringBuilder()
            : new SqliteConnectionStringBuilder(target.RawConnectionString);
        builder.DataSource = path;

        // Never create a missing database as a side effect: ReadWriteCreate becomes ReadWrite.
        if (builder.Mode == SqliteOpenMode.ReadWriteCreate)
        {
            builder.Mode = SqliteOpenMode.ReadWrite;
        }

        // Pooled handles would keep the file open across backups, restores and file locks.
        builder.Pooling = false;
        builder.DefaultTimeout = Math.Max(1, (int)Math.Ceiling(connectTimeout.TotalSeconds));

        var connection = new SqliteConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // Opening is lazy: reading the header is what proves the file is a database.
            await using var probe = connection.CreateCommand("PRAGMA schema_version;");
            await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception ex) when (ex is not DbMigrationException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw TranslateException(ex, target, null) ?? throw new DbMigrationException(ErrorIds.ConnectionFailed, ErrorKind.ConnectionError, $"Could not open '{path}': {ex.Message}", ex) { Target = path };
        }
    }

    public DbMigrationException? TranslateException(Exception exception, DatabaseTarget target, string? sql)
    {
        if (exception is DbMigrationException known)
        {
            return known;
        }

        if (exception is InvalidOperationException && exception.Message.StartsWith("Must add values for the following parameters", StringComparison.Ordinal))
        {
            // Microsoft.Data.Sqlite's own check (for :name and $name markers; @name is checked before any statement runs).
            return new DbMigrationException(ErrorIds.QueryInvalidParameter, ErrorKind.InvalidArgument, $"{exception.Message.TrimEnd(' ', ':')}; pass them with -Parameters.", exception)
            { Target = target.ToString(), Sql = sql };
        }

        if (exception is not SqliteException sqlite)
        {
            return null;
        }

        var where = target.ToString();
        var message = sqlite.Message;
        var (id, kind, text) = sqlite.SqliteErrorCode switch
        {
            SqliteNotADatabase => (ErrorIds.TargetNotADatabase, ErrorKind.InvalidData, $"'{where}' is not a SQLite database (file is not a database)."),
            SqliteCorrupt => (ErrorIds.TargetNotADatabase, ErrorKind.InvalidData, $"'{where}' is corrupt: {message}"),
            SqliteCantOpen => (ErrorIds.TargetFileNotFound, ErrorKind.ObjectNotFound, $"Could not open '{where}': {message}"),
            SqliteReadOnly => (ErrorIds.TargetReadOnly, ErrorKind.PermissionDenied, $"'{where}' is read-only: {message}"),
            SqliteBusy or SqliteLocked => (ErrorIds.QueryStatementFailed, ErrorKind.ResourceBusy, $"'{where}' is locked by another connection: {message}"),
            SqliteInterrupt => (ErrorIds.OperationCancelled, ErrorKind.OperationStopped, "The statement was interrupted."),
            SqliteFull => (ErrorIds.QueryStatementFailed, ErrorKind.WriteError, $"The disk holding '{where}' is full: {message}"),
            _ => (ErrorIds.QueryStatementFailed, ErrorKind.InvalidOperation, sql is null ? message : $"The statement failed: {message}"),
        };
        return new DbMigrationException(id, kind, text, exception)
        {
            Target = where,
            Sql = sql,
            ServerErrorNumber = sqlite.SqliteErrorCode,
        };
    }

    // The driver sends a command's text as it is.
    public void SendAsWritten(DbCommand command)
    {
    }

    // Unqualified names always look in temp, then main, then attached files, and there are no roles: nothing moves.
    public Task<string?> ReadSessionStateAsync(DbConnection connection, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task RestoreSessionStateAsync(DbConnection connection, DbTransaction? transaction, string? state, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task EndOpenTransactionAsync(DbConnection connection, bool commit, CancellationToken cancellationToken)
    {
        // sqlite3_get_autocommit is 0 inside a transaction.
        if (SQLitePCL.raw.sqlite3_get_autocommit(((SqliteConnection)connection).Handle) == 0)
        {
            await connection.ExecuteAsync(commit ? "COMMIT" : "ROLLBACK", cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<IAsyncDisposable?> SuspendForeignKeysAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        if (await connection.ScalarAsync<long>("PRAGMA foreign_keys", cancellationToken).ConfigureAwait(false) == 0)
        {
            return null;
        }

        await connection.ExecuteAsync("PRAGMA foreign_keys = OFF", cancellationToken).ConfigureAwait(false);
        return new ForeignKeysBackOn(connection);
    }

    public async Task<IReadOnlyList<string>> ForeignKeyViolationsAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var violations = new List<string>();
        await using var command = connection.CreateCommand("PRAGMA foreign_key_check", transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            violations.Add($"{reader.GetString(0)} row {(reader.IsDBNull(1) ? "?" : reader.GetInt64(1).ToString(CultureInfo.InvariantCulture))} -> {reader.GetString(2)}");
        }

        return violations;
    }

    /// <summary>Foreign keys on again once the step's transaction has ended (the PRAGMA is ignored inside one).</summary>
    private sealed class ForeignKeysBackOn(DbConnection connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await connection.ExecuteAsync("PRAGMA foreign_keys = ON", CancellationToken.None).ConfigureAwait(false);
    }

    public Func<DbDataReader, int, object>? ColumnReader(DbDataReader reader, int ordinal) => null;

    public IDisposable InterruptOn(DbConnection connection, CancellationToken cancellationToken)
    {
        var sqlite = (SqliteConnection)connection;
        return cancellationToken.Register(() => SQLitePCL.raw.sqlite3_interrupt(sqlite.Handle));
    }

    public async Task<ServerInfo> GetServerInfoAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var version = await connection.ScalarAsync<string>("SELECT sqlite_version();", cancellationToken).ConfigureAwait(false) ?? "0.0";
        return new ServerInfo(DatabaseEngine.Sqlite, "SQLite", version, ProviderHelpers.ParseVersion(version));
    }

    public Task<IReadOnlyList<ObjectDefinition>> GetDefinitionsAsync(DbConnection connection, CancellationToken cancellationToken) =>
        connection.ReadDefinitionsAsync("""
            SELECT type, name, tbl_name, sql FROM sqlite_master
            WHERE type IN ('view', 'trigger') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'dbmigration\_%' ESCAPE '\'
            ORDER BY type, name
            """, cancellationToken);

    public async Task<IReadOnlyList<TableSchema>> GetTablesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await using (var command = connection.CreateCommand("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name;"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                names.Add(reader.GetString(0));
            }
        }

        var tables = new List<TableSchema>(names.Count);
        foreach (var name in names)
        {
            tables.Add(await ReadTableAsync(connection, name, cancellationToken).ConfigureAwait(false));
        }

        return tables;
    }

    private static async Task<TableSchema> ReadTableAsync(DbConnection connection, string table, CancellationToken cancellationToken)
    {
        var columns = new List<ColumnSchema>();
        var primaryKey = new SortedList<int, string>();
        await using (var command = connection.CreateCommand("SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(@t) ORDER BY cid;").AddParameter("@t", table))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var pk = reader.GetInt32(5);
                var name = reader.GetString(1);
                columns.Add(new ColumnSchema(name, reader.GetInt32(0) + 1, reader.GetString(2), reader.GetInt32(3) == 0, reader.IsDBNull(4) ? null : reader.GetString(4), pk > 0));
                if (pk > 0)
                {
                    primaryKey.Add(pk, name);
                }
            }
        }

        var indexes = new List<IndexSchema>();
        var indexList = new List<(string Name, bool Unique, bool Pk)>();
        await using (var command = connection.CreateCommand("SELECT name, \"unique\", origin FROM pragma_index_list(@t) ORDER BY name;").AddParameter("@t", table))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                indexList.Add((reader.GetString(0), reader.GetInt32(1) == 1, reader.GetString(2) == "pk"));
            }
        }

        foreach (var (name, unique, pk) in indexList)
        {
            var cols = new List<string>();
            await using var command = connection.CreateCommand("SELECT name FROM pragma_index_info(@i) ORDER BY seqno;").AddParameter("@i", name);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                cols.Add(reader.IsDBNull(0) ? "(expression)" : reader.GetString(0));
            }

            indexes.Add(new IndexSchema(name, cols, unique, pk));
        }

        var foreignKeys = new List<ForeignKeySchema>();
        var fkRows = new List<(int Id, string Table, string From, string? To)>();
        await using (var command = connection.CreateCommand("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(@t) ORDER BY id, seq;").AddParameter("@t", table))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                fkRows.Add((reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
            }
        }

        foreach (var group in fkRows.GroupBy(r => r.Id))
        {
            var referenced = group.First().Table;
            foreignKeys.Add(new ForeignKeySchema(
                $"fk_{table}_{group.Key}",
                group.Select(r => r.From).ToList(),
                new TableName(null, referenced),
                group.Select(r => r.To ?? string.Empty).ToList()));
        }

        return new TableSchema(new TableName(null, table), columns, primaryKey.Values.ToList(), indexes, foreignKeys);
    }

    public async Task<long> CountRowsAsync(DbConnection connection, TableName table, CancellationToken cancellationToken) =>
        await connection.ScalarAsync<long>("SELECT COUNT(*) FROM " + QuoteTable(table) + ";", cancellationToken).ConfigureAwait(false);

    public Task<long> GetDatabaseSizeAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        var path = RequireFile(target);
        long size = new FileInfo(path).Length;
        var wal = new FileInfo(path + "-wal");
        if (wal.Exists)
        {
            size += wal.Length;
        }

        return Task.FromResult(size);
    }

    public async Task<IntegrityReport> CheckIntegrityAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        await using (var command = connection.CreateCommand("PRAGMA integrity_check;", timeoutSeconds: 0))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var line = reader.GetString(0);
                if (!string.Equals(line, "ok", StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add(line);
                }
            }
        }

        await using (var command = connection.CreateCommand("PRAGMA foreign_key_check;", timeoutSeconds: 0))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                problems.Add($"foreign key violation: {reader.GetString(0)} rowid {reader.GetValue(1)} references missing {reader.GetString(2)}");
            }
        }

        return problems.Count == 0
            ? new IntegrityReport(IntegrityOutcome.Passed, "PRAGMA integrity_check, PRAGMA foreign_key_check", "integrity_check returned ok; no foreign key violations.", problems)
            : new IntegrityReport(IntegrityOutcome.Failed, "PRAGMA integrity_check, PRAGMA foreign_key_check", $"{problems.Count} problem(s) found.", problems);
    }

    public async Task<IReadOnlyList<SessionInfo>> GetOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        // SQLite keeps no session list. What hurts a migration is another writer: probe for the write lock.
        try
        {
            await using (var begin = connection.CreateCommand("BEGIN IMMEDIATE;", timeoutSeconds: 1))
            {
                await begin.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await connection.ExecuteAsync("ROLLBACK;", cancellationToken).ConfigureAwait(false);
            return [];
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is SqliteBusy or SqliteLocked)
        {
            return [new SessionInfo("another process", null, null, null, "holds the write lock (a transaction is open)", true, null)];
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteReadOnly)
        {
            // A read-only file cannot take the write lock; the privilege check reports that.
            return [];
        }
    }

    /// <summary>Another process's hold on the file cannot be ended from here; the swap replaces the file all the same.</summary>
    public Task<int> EndOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken) => Task.FromResult(0);

    public IReadOnlyList<ProviderFinding> InspectBeforeConnect(DatabaseTarget target)
    {
        var findings = new List<ProviderFinding>();
        if (target.FilePath is null || !File.Exists(target.FilePath))
        {
            return findings;
        }

        var journal = new FileInfo(target.FilePath + "-journal");
        if (journal.Exists && journal.Length > 0)
        {
            findings.Add(new ProviderFinding(true,
                $"A rollback journal exists ({journal.Name}, {journal.Length} bytes): another process is writing now, or a writer crashed and left a hot journal. Stop the application; SQLite rolls a hot journal back on the next open."));
        }

        var wal = new FileInfo(target.FilePath + "-wal");
        if (wal.Exists && wal.Length > 0)
        {
            findings.Add(new ProviderFinding(false,
                $"WAL mode with {wal.Length} bytes not yet checkpointed ({wal.Name}); backups read through the WAL, so this is safe."));
        }

        return findings;
    }

    public async Task ProbeSchemaPrivilegesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var path = ((SqliteConnection)connection).DataSource;
        CheckWritableByMode(path);

        var probe = "dbmigration_preflight_probe_" + ProviderHelpers.RandomSuffix();
        var sql = $"CREATE TABLE {QuoteIdentifier(probe)} (id INTEGER PRIMARY KEY); ALTER TABLE {QuoteIdentifier(probe)} ADD COLUMN note TEXT;";
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await connection.ExecuteAsync(sql, cancellationToken, transaction).ConfigureAwait(false);
        }
        catch (SqliteException ex)
        {
            throw TranslateException(ex, DatabaseTarget.FromFile(path), sql)!;
        }
        finally
        {
            await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>A restore writes a new file beside the database, which the privilege probe's write already needs.</summary>
    public Task<string?> RestoreBlockerAsync(DbConnection connection, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task<IDatabaseLock> AcquireLockAsync(DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var path = RequireFile(target);
        return FileLock.AcquireAsync(path + ".dbmigration-" + SanitizeLockName(name) + ".lock", name, timeout, cancellationToken);
    }

    public Task<IDatabaseLock> AcquireLockAsync(DbConnection connection, DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        AcquireLockAsync(target, name, timeout, cancellationToken);

    private static string SanitizeLockName(string name) =>
        new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());

    /// <summary>
    /// Mode bits say what the owner intends even when we run as root, who may write anyway. A migration run
    /// as root against a file someone made read-only is a mistake worth stopping.
    /// </summary>
    private static void CheckWritableByMode(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            if (File.GetAttributes(path).HasFlag(FileAttributes.ReadOnly))
            {
                throw ReadOnly($"'{path}' has the read-only attribute.", path);
            }

            return;
        }

        const UnixFileMode anyWrite = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
        if ((File.GetUnixFileMode(path) & anyWrite) == 0)
        {
            throw ReadOnly($"'{path}' is read-only (mode {FormatMode(File.GetUnixFileMode(path))}): nobody may write it, so a migration would fail or override the owner's intent.", path);
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if ((File.GetUnixFileMode(directory) & anyWrite) == 0)
        {
            throw ReadOnly($"The folder '{directory}' is read-only (mode {FormatMode(File.GetUnixFileMode(directory))}): SQLite must create its journal beside the database.", directory);
        }
    }

    internal static string FormatMode(UnixFileMode mode)
    {
        Span<char> text = stackalloc char[9];
        var bits = new[] { UnixFileMode.UserRead, UnixFileMode.UserWrite, UnixFileMode.UserExecute, UnixFileMode.GroupRead, UnixFileMode.GroupWrite, UnixFileMode.GroupExecute, UnixFileMode.OtherRead, UnixFileMode.OtherWrite, UnixFileMode.OtherExecute };
        for (var i = 0; i < 9; i++)
        {
            text[i] = (mode & bits[i]) != 0 ? "rwx"[i % 3] : '-';
        }

        return new string(text);
    }

    private static DbMigrationException ReadOnly(string message, string target) =>
        new(ErrorIds.TargetReadOnly, ErrorKind.PermissionDenied, message) { Target = target };

    private static string RequireFile(DatabaseTarget target)
    {
        var path = target.FilePath ?? throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument, "The SQLite target has no file path.");
        if (path == ":memory:")
        {
            return path;
        }

        if (Directory.Exists(path))
        {
            throw new DbMigrationException(ErrorIds.TargetNotADatabase, ErrorKind.InvalidArgument, $"'{path}' is a folder, not a SQLite database file.") { Target = path };
        }

        if (!File.Exists(path))
        {
            throw new DbMigrationException(ErrorIds.TargetFileNotFound, ErrorKind.ObjectNotFound, $"The SQLite database file '{path}' does not exist. DbMigration never creates a missing database; check the path.") { Target = path };
        }

        return path;
    }
}
