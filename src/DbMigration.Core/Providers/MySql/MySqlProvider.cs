using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Errors;
using DbMigration.MySql;
using DbMigration.Targets;

namespace DbMigration.Providers.MySql;

/// <summary>MySQL and MariaDB through DbMigration's own protocol client (DbMigration.MySql).</summary>
internal sealed class MySqlProvider : IDatabaseProvider
{
    private static readonly HashSet<string> KnownOptions = new(StringComparer.OrdinalIgnoreCase)
    {
        "sslmode", "sslca", "passwordEnv", "socket", "application_name",
    };

    internal const string UtcSessionSql = "SET time_zone = '+00:00'";

    private Backups.IBackupStrategy? _backupStrategy;

    Backups.IBackupStrategy IDatabaseProvider.BackupStrategy => _backupStrategy ??= new Backups.MySqlBackupStrategy(this);

    public DatabaseEngine Engine => DatabaseEngine.MySql;

    // Pools are keyed by every setting (timeouts included), so all of DbMigration's idle ones go.
    public void ReleasePooledConnections(DatabaseTarget target) => MySqlConnection.ClearAllPools();


    // lock_wait_timeout bounds metadata locks (what DDL waits for behind an open transaction), the InnoDB one row locks.
    public Task LimitLockWaitAsync(DbConnection connection, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (wait <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }

        var seconds = (long)Math.Max(1, Math.Ceiling(wait.TotalSeconds));
        return connection.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"SET SESSION lock_wait_timeout = {seconds}, SESSION innodb_lock_wait_timeout = {seconds}"), cancellationToken);
    }

    // 1205 ER_LOCK_WAIT_TIMEOUT, for metadata and row locks alike.
    public bool IsLockWaitTimeout(Exception error)
    {
        for (var cause = error; cause is not null; cause = cause.InnerException)
        {
            if (cause is MySqlException { Number: 1205 })
            {
                return true;
            }
        }

        return false;
    }

    public string QuoteIdentifier(string identifier) => "`" + identifier.Replace("`", "``", StringComparison.Ordinal) + "`";

    public string QuoteTable(TableName table) => table.Schema is null ? QuoteIdentifier(table.Name) : QuoteIdentifier(table.Schema) + "." + QuoteIdentifier(table.Name);

    /// <summary>DDL commits implicitly on MySQL and MariaDB; MariaDB has a native UUID type from 10.7.</summary>
    public ProviderCapabilities GetCapabilities(ServerInfo server) => new(
        TransactionalDdl: false,
        NativeUuid: server.Product == "MariaDB" && server.Version >= new Version(10, 7),
        NativeTimestampTz: false,
        ServerLocks: true,
        MultipleDatabases: true);

    internal static string BuildConnectionString(DatabaseTarget target, TimeSpan connectTimeout)
    {
        connectTimeout = target.ConnectTimeoutOr(connectTimeout);
        var builder = target.RawConnectionString is null ? new MySqlConnectionStringBuilder() : new MySqlConnectionStringBuilder(target.RawConnectionString);
        if (target.RawConnectionString is null)
        {
            builder.Server = target.Host ?? "localhost";
            builder.Port = (uint)(target.Port ?? 3306);
            builder.Database = target.Database ?? string.Empty;
            builder.UserID = target.UserName ?? Environment.UserName;
            foreach (var (key, value) in target.Options)
            {
                if (!KnownOptions.Contains(key))
                {
                    throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument,
                        $"The MySQL option '{key}' is not supported. Supported: {string.Join(", ", KnownOptions.Order())}.")
                    { Target = target.ToString() };
                }

                switch (key.ToLowerInvariant())
                {
                    case "sslmode":
                        builder.SslMode = Enum.TryParse<MySqlSslMode>(value.Replace("-", string.Empty, StringComparison.Ordinal).Replace("_", string.Empty, StringComparison.Ordinal), ignoreCase: true, out var mode)
                            ? mode
                            : throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument,
                                $"sslmode '{value}' is not valid. Use none, preferred, required, verifyca or verifyfull.")
                            { Target = target.ToString() };
                        break;
                    case "sslca":
                        builder.SslCa = value;
                        break;
                    case "socket":
                        builder.Server = value;
                        break;
                    case "application_name":
                        builder.ApplicationName = value;
                        break;
                }
            }
        }

        if (target.ResolvePassword() is { } password)
        {
            builder.Password = password;
        }

        // Legacy databases hold zero dates ('0000-00-00', '2024-00-01'); a backup, a hash or a query must read them
        // as they are, never fail on them or turn them into NULL.
        builder.ZeroDateTimeBehavior = MySqlZeroDateTimeBehavior.Text;
        builder.ConnectionTimeout = (uint)Math.Clamp((int)Math.Ceiling(connectTimeout.TotalSeconds), 1, 600);
        return builder.ConnectionString;
    }

    public async Task<DbConnection> OpenConnectionAsync(DatabaseTarget target, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        var connection = new MySqlConnection(BuildConnectionString(target, connectTimeout));
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // DbMigration works in UTC: TIMESTAMP values and NOW() in its sessions are UTC, whatever the server's zone.
            await connection.ExecuteAsync(UtcSessionSql, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw TranslateException(ex, target, null) ?? new DbMigrationException(ErrorIds.ConnectionFailed, ErrorKind.ConnectionError, $"Could not connect to {target}: {ex.Message}", ex) { Target = target.ToString() };
        }
    }

    private static string RefusedMessage(DatabaseTarget target) =>
        target.SocketPath is { } socket && !File.Exists(socket)
            ? $"No MySQL/MariaDB socket at {socket}: the server is not running, or listens on another socket (see its 'socket' setting)."
            : $"Connection refused by {target.Endpoint}: no MySQL/MariaDB server is listening there.";

    public DbMigrationException? TranslateException(Exception exception, DatabaseTarget target, string? sql)
    {
        if (exception is DbMigrationException known)
        {
            return known;
        }

        if (exception is not MySqlException my)
        {
            return null;
        }

        var where = target.ToString();
        var (id, kind, text) = my.Number switch
        {
            1045 or 1698 => (ErrorIds.ConnectionAuthenticationFailed, ErrorKind.AuthenticationError,
                $"Authentication failed for user '{target.UserName}' on {where}: check the password or credential."),
            1049 => (ErrorIds.TargetDatabaseNotFound, ErrorKind.ObjectNotFound, $"The database '{target.Database}' does not exist on {where}."),
            MySqlClientError.ConnectionRefused => (ErrorIds.ConnectionRefused, ErrorKind.ConnectionError, RefusedMessage(target)),
            MySqlClientError.UnknownHost => (ErrorIds.ConnectionHostNotFound, ErrorKind.ConnectionError, $"The host '{target.Host}' could not be resolved."),
            MySqlClientError.ConnectTimeout => (ErrorIds.ConnectionTimeout, ErrorKind.OperationTimeout, my.Message),
            MySqlClientError.SslConnectionError or MySqlClientError.InsecureAuthRefused or MySqlClientError.AuthPluginNotSupported => (ErrorIds.ConnectionFailed, ErrorKind.SecurityError, my.Message),
            MySqlClientError.ServerLost or MySqlClientError.ServerGone => (sql is null ? ErrorIds.ConnectionFailed : ErrorIds.QueryStatementFailed, ErrorKind.ConnectionError, my.Message),
            MySqlClientError.CommandTimeout => (ErrorIds.QueryTimeout, ErrorKind.OperationTimeout, "The statement timed out and was killed."),
            1044 or 1142 or 1143 or 1227 => (ErrorIds.QueryStatementFailed, ErrorKind.PermissionDenied, $"Permission denied: {my.Message}"),
            1205 or 1213 => (ErrorIds.QueryStatementFailed, ErrorKind.ResourceBusy, $"Lock conflict: {my.Message}"),
            1114 or 1021 => (ErrorIds.QueryStatementFailed, ErrorKind.WriteError, $"The server is out of space: {my.Message}"),
            _ => (ErrorIds.QueryStatementFailed, ErrorKind.InvalidOperation, sql is null ? my.Message : $"The statement failed ({my.Number}): {my.Message}"),
        };
        return new DbMigrationException(id, kind, text, exception)
        {
            Target = where,
            Sql = sql ?? my.CommandText,
            SqlState = my.SqlStateCode,
            ServerErrorNumber = my.Number,
        };
    }

    // The driver sends a command's text as it is.
    public void SendAsWritten(DbCommand command)
    {
    }

    // TINYINT(1), BOOLEAN's type, holds any number from -128 to 255: 0 and 1 read as booleans, any other value as
    // the number it is, not as $true.
    public Func<DbDataReader, int, object>? ColumnReader(DbDataReader reader, int ordinal) =>
        reader is MySqlDataReader && reader.GetFieldType(ordinal) == typeof(bool) ? ReadTinyInt : null;

    private static object ReadTinyInt(DbDataReader reader, int ordinal)
    {
        var number = int.Parse(((MySqlDataReader)reader).GetRawValue(ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return number switch
        {
            0 => false,
            1 => true,
            _ => number,
        };
    }

    // The client kills the running statement itself when a command's token fires.
    public IDisposable InterruptOn(DbConnection connection, CancellationToken cancellationToken) => NoOpDisposable.Instance;

    public async Task<string?> ReadSessionStateAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand("SELECT DATABASE(), @@autocommit, @@foreign_key_checks, @@unique_checks");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return System.Text.Json.JsonSerializer.Serialize(new[]
        {
            reader.IsDBNull(0) ? null : reader.GetString(0),
            Convert.ToString(reader.GetValue(1), CultureInfo.InvariantCulture),
            Convert.ToString(reader.GetValue(2), CultureInfo.InvariantCulture),
            Convert.ToString(reader.GetValue(3), CultureInfo.InvariantCulture),
        });
    }

    public async Task RestoreSessionStateAsync(DbConnection connection, DbTransaction? transaction, string? state, CancellationToken cancellationToken)
    {
        if (state is null || System.Text.Json.JsonSerializer.Deserialize<string?[]>(state) is not [var database, var autocommit, var foreignKeyChecks, var uniqueChecks])
        {
            return;
        }

        if (database is not null)
        {
            // COM_INIT_DB, which the client also tracks, rather than a USE statement it would not see.
            await connection.ChangeDatabaseAsync(database, cancellationToken).ConfigureAwait(false);
        }

        // A script's SET autocommit = 0 would leave DbMigration's own writes uncommitted, and its
        // foreign_key_checks = 0 (as mysqldump writes) would carry over into the next steps.
        static int Flag(string? value) => value == "0" ? 0 : 1;
        await connection.ExecuteAsync($"SET autocommit = {Flag(autocommit)}, foreign_key_checks = {Flag(foreignKeyChecks)}, unique_checks = {Flag(uniqueChecks)}", cancellationToken, transaction).ConfigureAwait(false);
    }

    // Without an open transaction both are no-ops.
    public Task EndOpenTransactionAsync(DbConnection connection, bool commit, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(commit ? "COMMIT" : "ROLLBACK", cancellationToken);

    // Foreign keys here are not switched off by a PRAGMA, and a script's own setting works in a transaction too.
    public Task<IAsyncDisposable?> SuspendForeignKeysAsync(DbConnection connection, CancellationToken cancellationToken) => Task.FromResult<IAsyncDisposable?>(null);

    public Task<IReadOnlyList<string>> ForeignKeyViolationsAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    public async Task<ServerInfo> GetServerInfoAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var version = await connection.ScalarAsync<string>("SELECT VERSION()", cancellationToken).ConfigureAwait(false) ?? "0";
        var product = version.Contains("MariaDB", StringComparison.OrdinalIgnoreCase) ? "MariaDB" : "MySQL";
        return new ServerInfo(DatabaseEngine.MySql, product, version, ProviderHelpers.ParseVersion(version));
    }

    public Task<IReadOnlyList<ObjectDefinition>> GetDefinitionsAsync(DbConnection connection, CancellationToken cancellationToken) =>
        // The server qualifies a view's tables with the database's name: left out, so a copy restored under another
        // name shows no drift.
        connection.ReadDefinitionsAsync("""
            SELECT 'view', TABLE_NAME, TABLE_NAME, REPLACE(VIEW_DEFINITION, CONCAT('`', REPLACE(TABLE_SCHEMA, '`', '``'), '`.'), '')
            FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
            UNION ALL
            SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE, CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION, ' FOR EACH ', ACTION_ORIENTATION, ' ', ACTION_STATEMENT)
            FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
            UNION ALL
            SELECT 'routine', CONCAT(r.ROUTINE_TYPE, ' ', r.ROUTINE_NAME), r.ROUTINE_NAME,
                   CONCAT(r.ROUTINE_TYPE, ' ', r.ROUTINE_NAME, '(',
                          COALESCE((SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER) ORDER BY p.ORDINAL_POSITION SEPARATOR ', ')
                                    FROM information_schema.PARAMETERS p
                                    WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.ORDINAL_POSITION > 0), ''),
                          ')', COALESCE(CONCAT(' RETURNS ', r.DTD_IDENTIFIER), ''), ' ', COALESCE(r.ROUTINE_DEFINITION, ''))
            FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = DATABASE()
            ORDER BY 1, 3, 2
            """, cancellationToken);

    /// <summary>
    /// Base and system-versioned tables. A versioned table's period columns are the server's to write (a restore gives
    /// transaction-precise ones new values), so they are left out like its implicit ones are.
    /// </summary>
    public async Task<IReadOnlyList<TableSchema>> GetTablesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var columns = new Dictionary<string, List<ColumnSchema>>(StringComparer.Ordinal);
        var order = new List<string>();
        await using (var command = connection.CreateCommand("""
            SELECT c.TABLE_NAME, c.COLUMN_NAME, c.ORDINAL_POSITION, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.COLUMN_KEY,
                   COALESCE(c.GENERATION_EXPRESSION, '') <> ''
            FROM information_schema.COLUMNS c
            JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
            WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
              AND COALESCE(c.GENERATION_EXPRESSION, '') NOT IN ('ROW START', 'ROW END')
            ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var table = reader.GetString(0);
                if (!columns.TryGetValue(table, out var list))
                {
                    columns[table] = list = [];
                    order.Add(table);
                }

                list.Add(new ColumnSchema(reader.GetString(1), Convert.ToInt32(reader.GetValue(2), CultureInfo.InvariantCulture), reader.GetString(3),
                    reader.GetString(4) == "YES", reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6) == "PRI", Convert.ToInt64(reader.GetValue(7), CultureInfo.InvariantCulture) != 0));
            }
        }

        var indexes = new Dictionary<string, List<IndexSchema>>(StringComparer.Ordinal);
        await using (var command = connection.CreateCommand("""
            SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME
            FROM information_schema.STATISTICS
            WHERE TABLE_SCHEMA = DATABASE()
            ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            var rows = new List<(string Table, string Index, bool Unique, string Column)>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add((reader.GetString(0), reader.GetString(1), Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture) == 0, reader.IsDBNull(3) ? "(expression)" : reader.GetString(3)));
            }

            foreach (var group in rows.GroupBy(r => (r.Table, r.Index)))
            {
                if (!indexes.TryGetValue(group.Key.Table, out var list))
                {
                    indexes[group.Key.Table] = list = [];
                }

                list.Add(new IndexSchema(group.Key.Index, group.Select(r => r.Column).ToList(), group.First().Unique, group.Key.Index == "PRIMARY"));
            }
        }

        var foreignKeys = new Dictionary<string, List<ForeignKeySchema>>(StringComparer.Ordinal);
        await using (var command = connection.CreateCommand("""
            SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
            FROM information_schema.KEY_COLUMN_USAGE
            WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
            ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            var rows = new List<(string Table, string Name, string Column, string RefSchema, string RefTable, string RefColumn)>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5)));
            }

            foreach (var group in rows.GroupBy(r => (r.Table, r.Name)))
            {
                if (!foreignKeys.TryGetValue(group.Key.Table, out var list))
                {
                    foreignKeys[group.Key.Table] = list = [];
                }

                var first = group.First();
                list.Add(new ForeignKeySchema(group.Key.Name, group.Select(r => r.Column).ToList(), new TableName(null, first.RefTable), group.Select(r => r.RefColumn).ToList()));
            }
        }

        return order.Select(table =>
        {
            var tableIndexes = indexes.GetValueOrDefault(table) ?? [];
            var primaryKey = tableIndexes.FirstOrDefault(i => i.IsPrimaryKey)?.Columns ?? [];
            return new TableSchema(new TableName(null, table), columns[table], primaryKey, tableIndexes, foreignKeys.GetValueOrDefault(table) ?? []);
        }).ToList();
    }

    public async Task<long> CountRowsAsync(DbConnection connection, TableName table, CancellationToken cancellationToken) =>
        await connection.ScalarAsync<long>("SELECT COUNT(*) FROM " + QuoteTable(table), cancellationToken).ConfigureAwait(false);

    public async Task<long> GetDatabaseSizeAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken) =>
        await connection.ScalarAsync<long>("SELECT CAST(COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS SIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()", cancellationToken).ConfigureAwait(false);

    public async Task<IntegrityReport> CheckIntegrityAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        const string method = "CHECK TABLE";
        var tables = (await GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Select(t => t.Name).ToList();
        if (tables.Count == 0)
        {
            return new IntegrityReport(IntegrityOutcome.Passed, method, "No tables to check.", []);
        }

        var problems = new List<string>();
        await using (var command = connection.CreateCommand("CHECK TABLE " + string.Join(", ", tables.Select(QuoteTable)), timeoutSeconds: 0))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var type = reader.GetString(2);
                var text = reader.GetString(3);
                var healthy = type.Equals("status", StringComparison.OrdinalIgnoreCase) && text.Equals("OK", StringComparison.OrdinalIgnoreCase)
                    || type.Equals("note", StringComparison.OrdinalIgnoreCase) || type.Equals("info", StringComparison.OrdinalIgnoreCase);
                if (!healthy)
                {
                    problems.Add($"{reader.GetString(0)}: {type}: {text}");
                }
            }
        }

        return problems.Count == 0
            ? new IntegrityReport(IntegrityOutcome.Passed, method, $"CHECK TABLE reported OK for {tables.Count} table(s).", problems)
            : new IntegrityReport(IntegrityOutcome.Failed, method, $"CHECK TABLE found {problems.Count} problem(s).", problems);
    }

    public async Task<IReadOnlyList<SessionInfo>> GetOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        // InnoDB serves INNODB_TRX from a cache it refreshes only when 0.1 s have passed since the last read;
        // waiting that long first means an open transaction is never missed because of a recent read.
        await Task.Delay(TimeSpan.FromMilliseconds(150), cancellationToken).ConfigureAwait(false);
        var sessions = new List<SessionInfo>();
        await using var command = connection.CreateCommand("""
            SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.STATE, t.trx_started
            FROM information_schema.PROCESSLIST p
            LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
            WHERE p.DB = DATABASE() AND p.ID <> CONNECTION_ID() AND p.COMMAND <> 'Daemon'
            ORDER BY p.ID
            """);
        DbDataReader reader;
        try
        {
            reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex) when (ex.Number == 1227)
        {
            // Without PROCESS the server would show this user only its own sessions: an application's would go unseen.
            throw new DbMigrationException(ErrorIds.QueryStatementFailed, ErrorKind.PermissionDenied,
                $"Seeing who else is connected to {target} needs the PROCESS privilege, which user '{target.UserName ?? "(the connecting user)"}' lacks: {ex.Message}. Grant it (GRANT PROCESS ON *.* TO …), or pass -Force to go ahead without looking.", ex)
            { Target = target.ToString(), ServerErrorNumber = ex.Number };
        }

        await using var _ = reader;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            DateTimeOffset? started = reader.IsDBNull(5) ? null : new DateTimeOffset(DateTime.SpecifyKind(reader.GetDateTime(5), DateTimeKind.Unspecified), TimeSpan.Zero);
            var state = reader.GetString(3) + (reader.IsDBNull(4) || reader.GetString(4).Length == 0 ? string.Empty : " (" + reader.GetString(4) + ")");
            sessions.Add(new SessionInfo("id " + Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture), reader.GetString(1), null, reader.GetString(2), state, started is not null, started));
        }

        return sessions;
    }

    /// <summary>
    /// KILL CONNECTION for each other session on the database, then waits (up to 10 s) until they have left the
    /// processlist: a killed session rolls its transaction back before it lets go of its table locks.
    /// </summary>
    public async Task<int> EndOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        const string Others = "FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND NOT IN ('Daemon', 'Killed')";
        var ended = 0;
        foreach (var row in await connection.ReadRowsAsync("SELECT ID " + Others, null, cancellationToken).ConfigureAwait(false))
        {
            var id = Convert.ToInt64(row[0], CultureInfo.InvariantCulture);
            try
            {
                await connection.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"KILL CONNECTION {id}"), cancellationToken).ConfigureAwait(false);
                ended++;
            }
            catch (MySqlException ex) when (ex.Number == UnknownThread)
            {
                // It left on its own meanwhile.
            }
            catch (MySqlException ex) when (ex.Number == NotThreadOwner)
            {
                throw new DbMigrationException(ErrorIds.RestoreSessionsConnected, ErrorKind.PermissionDenied,
                    $"-Force cannot end session id {id} on {target}: {ex.Message} Ending another user's session needs the CONNECTION ADMIN (or SUPER) privilege.", ex)
                { Target = target.ToString(), ServerErrorNumber = ex.Number };
            }
        }

        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (ended > 0 && waited.Elapsed < TimeSpan.FromSeconds(10)
            && await connection.ScalarAsync<long>("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND = 'Killed'", cancellationToken).ConfigureAwait(false) > 0)
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        return ended;
    }

    private const int UnknownThread = 1094;
    private const int NotThreadOwner = 1095;

    public IReadOnlyList<ProviderFinding> InspectBeforeConnect(DatabaseTarget target) => [];

    /// <summary>
    /// Not read beforehand: rights to create the restore's new database may come from a role or a wildcard grant,
    /// which the catalog does not resolve for the session. The restore names a refusal when it meets one.
    /// </summary>
    /// <summary>
    /// A restore creates (and later drops) two databases beside this one, named dbm_restore_… and dbm_old_…, and an
    /// application user often holds privileges on its own database only. The grants cannot be read reliably (those a
    /// role brings are not in information_schema), so an empty database of that name is created and dropped, as the
    /// restore would.
    /// </summary>
    public async Task<string?> RestoreBlockerAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        string? database, user;
        await using (var who = connection.CreateCommand("SELECT DATABASE(), CURRENT_USER()"))
        await using (var reader = await who.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            (database, user) = (reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetString(1));
        }

        if (database is null)
        {
            return null;
        }

        var copy = Backups.PostgreSqlBackupStrategy.ShortName(Backups.LeftoverCopies.RestorePrefix, database, "probe" + Guid.NewGuid().ToString("N"));
        string Blocked(string why) =>
            $"user {user} {why}: Restore-MigrationBackup, the rollback from a PreMigration backup included, loads into a new database and moves its tables into place, so it cannot restore here as this user";
        try
        {
            await connection.ExecuteAsync($"CREATE DATABASE {QuoteIdentifier(copy)}", cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex) when (ex.Number is 1044 or 1227)
        {
            return Blocked($"may not create databases such as {copy} ({ex.Message}; GRANT ALL ON `dbm\\_%`.* TO the user grants it)");
        }
        catch (MySqlException ex) when (ex.Number == 1290)
        {
            return Blocked($"cannot create databases on a server that accepts no writes ({ex.Message})");
        }

        try
        {
            await connection.ExecuteAsync($"DROP DATABASE {QuoteIdentifier(copy)}", cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (MySqlException ex) when (ex.Number is 1044 or 1227)
        {
            return Blocked($"may create but not drop databases such as {copy}, left empty by this check ({ex.Message}; GRANT ALL ON `dbm\\_%`.* TO the user grants it)");
        }
    }

    public async Task ProbeSchemaPrivilegesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        // MySQL DDL commits implicitly, so the probe is created and dropped rather than rolled back.
        var probe = QuoteIdentifier("dbmigration_preflight_probe_" + ProviderHelpers.RandomSuffix());
        var sql = $"CREATE TABLE {probe} (id INT PRIMARY KEY); ALTER TABLE {probe} ADD COLUMN note TEXT";
        try
        {
            await connection.ExecuteAsync(sql, cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex)
        {
            throw new DbMigrationException(ErrorIds.QueryStatementFailed, ex.Number is 1044 or 1142 ? ErrorKind.PermissionDenied : ErrorKind.InvalidOperation,
                $"Cannot create and alter tables: {ex.Message}", ex)
            { Sql = sql, ServerErrorNumber = ex.Number, SqlState = ex.SqlStateCode };
        }
        finally
        {
            try
            {
                await connection.ExecuteAsync($"DROP TABLE IF EXISTS {probe}", CancellationToken.None).ConfigureAwait(false);
            }
            catch (MySqlException)
            {
                // Nothing was created when CREATE failed; a failed DROP after a successful CREATE surfaces below.
            }
        }
    }

    public async Task<IDatabaseLock> AcquireLockAsync(DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var connection = await OpenConnectionAsync(target, TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
        try
        {
            return await TakeNamedLockAsync(connection, ownsConnection: true, target, name, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public Task<IDatabaseLock> AcquireLockAsync(DbConnection connection, DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        TakeNamedLockAsync(connection, ownsConnection: false, target, name, timeout, cancellationToken);

    private static async Task<IDatabaseLock> TakeNamedLockAsync(DbConnection connection, bool ownsConnection, DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // GET_LOCK names are server-wide and at most 64 characters: scope by database and hash the rest.
        var key = "dbm:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(target.Database + "\0" + name)))[..40];
        await using var command = connection.CreateCommand("SELECT GET_LOCK(@name, @timeout)", timeoutSeconds: (int)Math.Ceiling(timeout.TotalSeconds) + 30)
            .AddParameter("@name", key)
            .AddParameter("@timeout", Math.Max(0, timeout.TotalSeconds));
        var result = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        if (result is null or DBNull || Convert.ToInt64(result, CultureInfo.InvariantCulture) != 1)
        {
            throw new DbMigrationException(ErrorIds.LockTimeout, ErrorKind.ResourceBusy,
                $"The lock '{name}' (GET_LOCK '{key}') is held by another session on {target}; gave up after {timeout.TotalSeconds:0.#} s.")
            { Target = target.ToString() };
        }

        // The pool resets a returned session (COM_RESET_CONNECTION), which releases its named locks, or closes it.
        return new SessionLock(name, "GET_LOCK('" + key + "')", connection, ownsConnection, "SELECT RELEASE_LOCK(@key)", key, c => MySqlConnection.ClearPool((MySqlConnection)c));
    }
}
