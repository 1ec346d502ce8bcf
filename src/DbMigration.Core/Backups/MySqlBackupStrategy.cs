using System.Data.Common;
using System.Globalization;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.MySql;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// MySQL/MariaDB through mariadb-dump (or mysqldump) --single-transaction, or DbMigration's built-in logical dump
/// when neither is installed. Restores load the SQL into a new database (with the mariadb client, or DbMigration's
/// own loader for a built-in dump), and the swap moves every table across in one atomic RENAME TABLE.
/// </summary>
internal sealed class MySqlBackupStrategy(IDatabaseProvider provider) : IBackupStrategy
{
    public const string Format = "mariadb-dump-sql";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    public async Task<SnapshotResult> SnapshotAsync(DatabaseTarget source, string rawPath, string? sqlDumpPath, bool hashInParallel, BackupDumpMethod dumpMethod, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var dumpTool = dumpMethod == BackupDumpMethod.BuiltIn ? null : ExternalTool.Find("mariadb-dump", "mysqldump");
        if (dumpTool is null && dumpMethod == BackupDumpMethod.EngineTool)
        {
            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
                "mariadb-dump (or mysqldump) was not found on PATH, and -DumpMethod EngineTool rules out the built-in dump. Install the MariaDB client (mariadb-client).");
        }

        if (dumpTool is null && dumpMethod == BackupDumpMethod.Auto)
        {
            progress.Warning("mariadb-dump (or mysqldump) was not found on PATH; using DbMigration's built-in logical dump instead.");
        }

        await using var connection = await provider.OpenConnectionAsync(source, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var server = await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false);
        if (dumpTool is not null && dumpMethod == BackupDumpMethod.Auto
            && await connection.ScalarAsync<long>("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE = 'float'", cancellationToken).ConfigureAwait(false) > 0)
        {
            // mariadb-dump writes a FLOAT as its six-digit text, so a restore would change the values; the
            // verification, which hashes them exactly, would then fail.
            progress.Verbose("The database has FLOAT columns, which mariadb-dump writes with six significant digits (23.456789 as 23.4568); using DbMigration's built-in logical dump, which writes them exactly.");
            dumpTool = null;
        }

        var names = dumpTool is null ? [] : (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Select(t => t.Name).ToList();
        var historyArguments = dumpTool is null ? [] : await HistoryArgumentsAsync(dumpTool, connection, progress, cancellationToken).ConfigureAwait(false);
        if (dumpTool is not null)
        {
            // The snapshot is started inside the transaction below, where only the session's isolation level applies.
            await connection.ExecuteAsync("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", cancellationToken).ConfigureAwait(false);
        }

        // The built-in dump and the hashes share one snapshot; mariadb-dump's snapshot is made to match the hashes'.
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<TableSnapshot> tables;
        if (dumpTool is null)
        {
            progress.Verbose("Writing DbMigration's built-in logical dump in one REPEATABLE READ snapshot.");
            await MySqlLogicalDump.WriteAsync(provider, connection, transaction, rawPath, progress, cancellationToken).ConfigureAwait(false);
            tables = await ContentHasher.SnapshotAsync(provider, connection, transaction, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            tables = await DumpBesideHashesAsync(dumpTool, source, rawPath, names, historyArguments, connection, transaction, progress, cancellationToken).ConfigureAwait(false);
            if (await connection.ScalarAsync<long>("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE'", cancellationToken, transaction).ConfigureAwait(false) > 0)
            {
                await UnqualifySequenceCallsAsync(rawPath, source.Database!, cancellationToken).ConfigureAwait(false);
            }

            // A dump of one database carries no CREATE DATABASE: its defaults go last, applying to the database loaded into.
            if (await MySqlLogicalDump.DefaultsStatementAsync(connection, transaction, cancellationToken).ConfigureAwait(false) is { } defaults)
            {
                await File.AppendAllTextAsync(rawPath, $"\n{MySqlLogicalDump.DefaultsComment}\n{defaults};\n", cancellationToken).ConfigureAwait(false);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        SecureFiles.RestrictFile(rawPath);

        if (sqlDumpPath is not null)
        {
            File.Copy(rawPath, sqlDumpPath);
            SecureFiles.RestrictFile(sqlDumpPath);
        }

        return new SnapshotResult(server.VersionText, Task.FromResult(tables), dumpTool is null ? MySqlLogicalDump.Format : Format, "database.sql");
    }

    /// <summary>
    /// mariadb-dump --single-transaction reads a snapshot of its own. So that the manifest's counts and hashes describe
    /// the dump exactly, both snapshots open while no row can change: another connection holds every table with
    /// LOCK TABLES … WRITE, this one starts its snapshot, and mariadb-dump starts its own before its first read, which
    /// then waits on that lock. Once it waits there the lock is released (a fraction of a second, in which the
    /// application's statements on those tables wait too), and the hashes run beside the dump. Without the LOCK TABLES
    /// privilege, or when the tables are not free within <see cref="HoldWait"/>, the two snapshots start a moment
    /// apart, with a warning: rows changed in that moment fail verification, safely.
    /// </summary>
    private async Task<IReadOnlyList<TableSnapshot>> DumpBesideHashesAsync(string dumpTool, DatabaseTarget source, string rawPath, IReadOnlyList<TableName> names,
        IReadOnlyList<string> extraArguments, DbConnection connection, DbTransaction transaction, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        await using var holder = await provider.OpenConnectionAsync(source, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var held = await HoldTablesAsync(holder, names, progress, cancellationToken).ConfigureAwait(false);

        // A plain START TRANSACTION takes its snapshot at the first read, which would come after the release.
        await connection.ExecuteAsync("START TRANSACTION WITH CONSISTENT SNAPSHOT", cancellationToken, transaction).ConfigureAwait(false);
        progress.Verbose($"Running {dumpTool} --single-transaction.");
        // Without LOCK TABLES around each table's rows: a table whose default draws on a sequence cannot load under
        // them ("was not locked with LOCK TABLES"), and InnoDB gains nothing from them. The client's own packet
        // limit (16 MiB by default) would lose the connection on a larger row; the server's still applies.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var dump = ExternalTool.RunAsync(dumpTool,
            [.. ConnectionArguments(dumpTool, source), "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--max-allowed-packet=1G", "--skip-add-locks", "--default-character-set=utf8mb4", "--no-tablespaces", .. extraArguments, "--result-file=" + rawPath, source.Database!],
            Environment(source), null, null, stop.Token).StopOnFailure(stop);
        try
        {
            try
            {
                if (held && !await AwaitDumpSnapshotAsync(holder, dump, cancellationToken).ConfigureAwait(false))
                {
                    progress.Warning($"{dumpTool} did not reach its first read within {HoldWait.TotalSeconds:0} s; the tables were released, and rows changed from here on fail verification, safely.");
                }
            }
            finally
            {
                if (held)
                {
                    await holder.ExecuteAsync("UNLOCK TABLES", CancellationToken.None).ConfigureAwait(false);
                }
            }

            var tables = await ContentHasher.SnapshotAsync(provider, connection, transaction, stop.Token).ConfigureAwait(false);
            await dump.ConfigureAwait(false);
            return tables;
        }
        catch (Exception) when (!dump.IsCompletedSuccessfully)
        {
            // A failed dump stopped the hashes: its own error (with its stderr) is the one to report.
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAny(dump).ConfigureAwait(false);
            if (dump.Exception?.InnerException is DbMigrationException failure && !cancellationToken.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }

            throw;
        }
    }

    /// <summary>How long a backup waits for the application's open transactions to leave the tables, and for mariadb-dump's first read.</summary>
    private static readonly TimeSpan HoldWait = TimeSpan.FromSeconds(5);

    private async Task<bool> HoldTablesAsync(DbConnection holder, IReadOnlyList<TableName> names, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        if (names.Count == 0)
        {
            return false;
        }

        try
        {
            await holder.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"SET SESSION lock_wait_timeout = {(int)HoldWait.TotalSeconds}"), cancellationToken).ConfigureAwait(false);
            await holder.ExecuteAsync("LOCK TABLES " + string.Join(", ", names.Select(n => provider.QuoteTable(n) + " WRITE")), cancellationToken).ConfigureAwait(false);
            return true;
        }
        // A replica set read_only refuses write locks to users without READ_ONLY ADMIN (ReadOnlyServer).
        catch (MySqlException ex) when (ex.Number is LockWaitTimeout or AccessDenied or TableAccessDenied or ReadOnlyServer)
        {
            progress.Warning($"The tables could not be held still while the snapshots start ({ex.Message}). The row counts and content hashes are read in a snapshot started a moment apart from mariadb-dump's: rows changed in that moment fail verification, safely.");
            return false;
        }
    }

    private const int AccessDenied = 1044;
    private const int TableAccessDenied = 1142;
    private const int LockWaitTimeout = 1205;
    private const int ReadOnlyServer = 1290;

    /// <summary>True once mariadb-dump waits on the held tables: its first read, which comes after it took its snapshot.</summary>
    private static async Task<bool> AwaitDumpSnapshotAsync(DbConnection holder, Task dump, CancellationToken cancellationToken)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!dump.IsCompleted && waited.Elapsed < HoldWait)
        {
            // Connections opened after this one, as this user on this database, waiting on a table lock in a dump's data read.
            var waiting = await holder.ScalarAsync<long>("""
                SELECT COUNT(*) FROM information_schema.PROCESSLIST
                WHERE ID > CONNECTION_ID() AND USER = SUBSTRING_INDEX(USER(), '@', 1) AND DB = DATABASE()
                  AND STATE = 'Waiting for table metadata lock' AND INFO LIKE 'SELECT %' AND INSTR(INFO, 'SQL_NO_CACHE') > 0
                """, cancellationToken).ConfigureAwait(false);
            if (waiting > 0)
            {
                return true;
            }

            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }

        return dump.IsCompleted;
    }

    public async Task<RestoredDatabase> RestoreToNewAsync(string rawPath, string format, DatabaseTarget like, string name, RowsLoaded? rowsLoaded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var client = format == MySqlLogicalDump.Format ? null : ExternalTool.Find("mariadb", "mysql") ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
            "The mariadb (or mysql) client was not found on PATH; it is needed to load a mariadb-dump backup. Install mariadb-client.");
        // Not from the target: a restore's sessions check, running meanwhile, would count that connection.
        long packetLimit;
        await using (var connection = await provider.OpenConnectionAsync(like.WithDatabase("information_schema"), ConnectTimeout, cancellationToken).ConfigureAwait(false))
        {
            packetLimit = await connection.ScalarAsync<long>("SELECT @@max_allowed_packet", cancellationToken).ConfigureAwait(false);
            try
            {
                await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(name)} CHARACTER SET utf8mb4", cancellationToken).ConfigureAwait(false);
            }
            catch (MySqlException ex) when (ex.Number is 1044 or 1227)
            {
                // ER_DBACCESS_DENIED_ERROR: an application user often holds rights on its own database only.
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied,
                    $"A restore, and the one that verifies a backup, loads into a new database ({name}) first, and user '{like.UserName ?? "(the connecting user)"}' may not create it: {ex.Message}. Grant it CREATE and DROP on *.* (or on `dbm\\_%`.*, the names these databases get), or, for Test-DatabaseBackup, name a server connection whose user may with -Server. Nothing was changed.", ex)
                { Target = like.ToString(), ServerErrorNumber = ex.Number };
            }
            catch (MySqlException ex) when (ex.Number == ReadOnlyServer)
            {
                // ER_OPTION_PREVENTS_STATEMENT: a replica set read_only, the usual place to take backups from.
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied,
                    $"A restore, and the one that verifies a backup, loads into a new database ({name}) first, and the server accepts no writes from user '{like.UserName ?? "(the connecting user)"}': {ex.Message}. For Test-DatabaseBackup, name a writable server with -Server (the primary, or a scratch server); a restore goes to the primary. Nothing was changed.", ex)
                { Target = like.ToString(), ServerErrorNumber = ex.Number };
            }
        }

        var scratch = like.WithDatabase(name);
        try
        {
            if (client is null)
            {
                progress.Verbose($"Loading DbMigration's built-in dump into {name}.");
                await using var connection = await provider.OpenConnectionAsync(scratch, ConnectTimeout, cancellationToken).ConfigureAwait(false);
                await MySqlLogicalDump.RestoreAsync(connection, rawPath, progress, cancellationToken).ConfigureAwait(false);
                return Restored(scratch, rawPath, like);
            }

            progress.Verbose($"Loading the dump into {name} with {client}.");
            try
            {
                await ExternalTool.RunAsync(client, [.. ConnectionArguments(client, scratch), "--default-character-set=utf8mb4", "--binary-mode", "--max-allowed-packet=1G", name], Environment(scratch), rawPath, null, cancellationToken).ConfigureAwait(false);
            }
            catch (DbMigrationException ex) when (ex.Message.Contains("Server has gone away", StringComparison.Ordinal) || ex.Message.Contains("max_allowed_packet", StringComparison.Ordinal))
            {
                // The server drops the connection on a statement larger than max_allowed_packet: a large row.
                throw new DbMigrationException(ex.ErrorId, ex.Kind, string.Create(CultureInfo.InvariantCulture,
                    $"{ex.Message}{System.Environment.NewLine}A statement in the dump (a large row) may be larger than the server's max_allowed_packet of {packetLimit / 1048576.0:0.#} MiB: raise it for the restore (SET GLOBAL max_allowed_packet, as a user with SUPER, or in the server's configuration) and run it again."), ex)
                { Target = ex.Target };
            }

            return Restored(scratch, rawPath, like);
        }
        catch
        {
            await DropAsync(scratch, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The copy, and the backed-up database's defaults for the target (the copy has them from the dump).</summary>
    private RestoredDatabase Restored(DatabaseTarget scratch, string rawPath, DatabaseTarget like) =>
        MySqlLogicalDump.ReadDefaults(rawPath) is var (charset, collation)
            ? new RestoredDatabase(scratch, [MySqlLogicalDump.DefaultsStatement(charset, collation, provider.QuoteIdentifier(like.Database!))])
            : RestoredDatabase.WithoutSettings(scratch);

    public Task<IReadOnlyList<TableSnapshot>> HashTablesAsync(DatabaseTarget database, int hashVersion, CancellationToken cancellationToken) =>
        ContentHasher.HashDatabaseAsync(provider, database, hashVersion, cancellationToken);

    public async Task DropAsync(DatabaseTarget scratch, CancellationToken cancellationToken)
    {
        // information_schema, which every user may open: a user granted only its own and the scratch databases may
        // not open mysql, and the copy stayed behind.
        await using var connection = await provider.OpenConnectionAsync(scratch.WithDatabase("information_schema"), ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {provider.QuoteIdentifier(scratch.Database!)}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// MariaDB prints a column default that draws on a sequence with the database's name (nextval(`app`.`seq`)), so
    /// the dump could only load where that database and sequence already exist, and a copy restored under another
    /// name would draw on the original's sequence. The column definitions of the dump get the name taken out; the
    /// swap then points them at the target (<see cref="RepointSequenceDefaultsAsync"/>).
    /// </summary>
    private async Task UnqualifySequenceCallsAsync(string rawPath, string database, CancellationToken cancellationToken)
    {
        // Latin-1 maps every byte to one char and back: the rest of the file passes through untouched.
        var latin1 = System.Text.Encoding.Latin1;
        var qualifier = latin1.GetString(System.Text.Encoding.UTF8.GetBytes(provider.QuoteIdentifier(database) + "."));
        var calls = new[] { "nextval(", "lastval(", "setval(" };
        var rewritten = rawPath + ".unqualified";
        using (var reader = new StreamReader(rawPath, latin1))
        await using (var writer = new StreamWriter(rewritten, false, latin1) { NewLine = "\n" })
        {
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.StartsWith("  `", StringComparison.Ordinal))
                {
                    foreach (var call in calls)
                    {
                        line = line.Replace(call + qualifier, call, StringComparison.Ordinal);
                    }
                }

                await writer.WriteLineAsync(line).ConfigureAwait(false);
            }
        }

        File.Move(rewritten, rawPath, overwrite: true);
    }

    /// <summary>Column defaults loaded into the restored copy name its sequences there; after the swap they name the target's.</summary>
    private async Task RepointSequenceDefaultsAsync(DbConnection connection, string target, string restored, CancellationToken cancellationToken)
    {
        var from = provider.QuoteIdentifier(restored) + ".";
        var to = provider.QuoteIdentifier(target) + ".";
        var columns = new List<(string Table, string Column, string Default)>();
        await using (var command = connection.CreateCommand("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = @target AND INSTR(COLUMN_DEFAULT, @from) > 0")
            .AddParameter("@target", target).AddParameter("@from", from))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                columns.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
        }

        foreach (var (table, column, expression) in columns)
        {
            await connection.ExecuteAsync($"ALTER TABLE {provider.QuoteIdentifier(target)}.{provider.QuoteIdentifier(table)} ALTER COLUMN {provider.QuoteIdentifier(column)} SET DEFAULT {expression.Replace(from, to, StringComparison.Ordinal)}", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// System-versioned tables keep their history only with --dump-history (MariaDB 10.11's tools), which covers
    /// timestamp-based history and fails the whole dump on a transaction-precise table. Where it cannot be used, the
    /// backup holds current rows only, and a warning names the tables.
    /// </summary>
    private async Task<IReadOnlyList<string>> HistoryArgumentsAsync(string dumpTool, DbConnection connection, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var versioned = (await connection.ReadRowsAsync("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SYSTEM VERSIONED' ORDER BY TABLE_NAME", null, cancellationToken).ConfigureAwait(false))
            .Select(r => (string)r[0]!).ToList();
        if (versioned.Count == 0)
        {
            return [];
        }

        var transactionPrecise = new List<string>();
        foreach (var table in versioned)
        {
            var create = Convert.ToString((await connection.ReadRowsAsync("SHOW CREATE TABLE " + provider.QuoteIdentifier(table), null, cancellationToken).ConfigureAwait(false)).Single()[1], CultureInfo.InvariantCulture) ?? string.Empty;
            if (System.Text.RegularExpressions.Regex.IsMatch(create, @"bigint(\(\d+\))? unsigned\b[^,]*\bAS ROW START", System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)))
            {
                transactionPrecise.Add(table);
            }
        }

        string? reason = transactionPrecise.Count > 0
            ? $"{string.Join(", ", transactionPrecise)} keep{(transactionPrecise.Count == 1 ? "s" : string.Empty)} transaction-precise history, which {Path.GetFileName(dumpTool)} cannot write"
            : !await SupportsDumpHistoryAsync(dumpTool, cancellationToken).ConfigureAwait(false)
                ? $"{Path.GetFileName(dumpTool)} has no --dump-history (MariaDB 10.11 or later has)"
                : null;
        if (reason is null)
        {
            return ["--dump-history"];
        }

        progress.Warning($"The system-versioned table(s) {string.Join(", ", versioned)} are backed up with their current rows only, without their history: {reason}.");
        return [];
    }

    private static async Task<bool> SupportsDumpHistoryAsync(string dumpTool, CancellationToken cancellationToken)
    {
        try
        {
            return await ExternalTool.RunReadingAsync(dumpTool, ["--no-defaults", "--help"], new Dictionary<string, string?>(), async output =>
            {
                using var reader = new StreamReader(output, leaveOpen: true);
                return (await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false)).Contains("--dump-history", StringComparison.Ordinal);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException)
        {
            return false;
        }
    }

    /// <summary>
    /// What the swap moves: base tables, and MariaDB's sequences, which are tables to RENAME TABLE (a sequence left
    /// behind would be dropped with the restored copy, and a table's NEXTVAL default would then fail).
    /// </summary>
    private static async Task<List<string>> TablesAndSequencesAsync(DbConnection connection, CancellationToken cancellationToken) =>
        (await connection.ReadRowsAsync("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') ORDER BY TABLE_NAME", null, cancellationToken).ConfigureAwait(false))
            .Select(r => (string)r[0]!).ToList();

    /// <summary>A dropped database is created again, with the restored copy's character set, for its objects to move into.</summary>
    private async Task CreateIfMissingAsync(DatabaseTarget target, DatabaseTarget restored, CancellationToken cancellationToken)
    {
        await using var connection = await provider.OpenConnectionAsync(target.WithDatabase("information_schema"), ConnectTimeout, cancellationToken).ConfigureAwait(false);
        string? charset = null, collation = null;
        var exists = false;
        await using (var command = connection.CreateCommand("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM SCHEMATA WHERE SCHEMA_NAME IN (@target, @restored)")
            .AddParameter("@target", target.Database!).AddParameter("@restored", restored.Database!))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.GetString(0) == target.Database)
                {
                    exists = true;
                }
                else
                {
                    (charset, collation) = (reader.GetString(1), reader.GetString(2));
                }
            }
        }

        if (!exists && charset is not null)
        {
            await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(target.Database!)} CHARACTER SET {charset} COLLATE {collation}", cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<LeftoverCopy>> FindLeftoverCopiesAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        // The schemata, tables and threads this user may see: its own copies and sessions at least.
        var copies = new List<LeftoverCopy>();
        await using var command = connection.CreateCommand("""
            SELECT s.schema_name,
                   (SELECT CAST(SUM(t.data_length + t.index_length) AS SIGNED) FROM information_schema.tables t WHERE t.table_schema = s.schema_name),
                   EXISTS (SELECT 1 FROM information_schema.processlist p WHERE p.db = s.schema_name AND p.id <> CONNECTION_ID())
            FROM information_schema.schemata s WHERE s.schema_name LIKE 'dbm%' ORDER BY s.schema_name
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (LeftoverCopies.KindOf(reader.GetString(0), target.Database!) is { } kind)
            {
                copies.Add(new LeftoverCopy(reader.GetString(0), kind, reader.IsDBNull(1) ? null : Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture) != 0));
            }
        }

        return copies;
    }

    public async Task SwapAsync(DatabaseTarget target, RestoredDatabase copy, BackupInfo backup, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var restored = copy.Target;
        var old = PostgreSqlBackupStrategy.ShortName(LeftoverCopies.ReplacedPrefix, target.Database!, LeftoverCopies.RunId(backup));
        await CreateIfMissingAsync(target, restored, cancellationToken).ConfigureAwait(false);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var current = await TablesAndSequencesAsync(connection, cancellationToken).ConfigureAwait(false);
        var currentObjects = await MySqlLogicalDump.ReadObjectsAsync(provider, connection, null, cancellationToken).ConfigureAwait(false);
        await connection.ChangeDatabaseAsync(restored.Database!, cancellationToken).ConfigureAwait(false);
        var incoming = await TablesAndSequencesAsync(connection, cancellationToken).ConfigureAwait(false);
        var incomingObjects = await MySqlLogicalDump.ReadObjectsAsync(provider, connection, null, cancellationToken).ConfigureAwait(false);

        // RENAME TABLE cannot move a table with triggers to another database: drop them first (the restored ones
        // are recreated below, the current ones go with the old tables).
        string Q(string db, string table) => provider.QuoteIdentifier(db) + "." + provider.QuoteIdentifier(table);
        foreach (var trigger in incomingObjects.Where(o => o.Kind == "TRIGGER"))
        {
            await connection.ExecuteAsync($"DROP TRIGGER {Q(restored.Database!, trigger.Name)}", cancellationToken).ConfigureAwait(false);
        }

        await connection.ChangeDatabaseAsync(target.Database!, cancellationToken).ConfigureAwait(false);
        foreach (var trigger in currentObjects.Where(o => o.Kind == "TRIGGER"))
        {
            await connection.ExecuteAsync($"DROP TRIGGER {Q(target.Database!, trigger.Name)}", cancellationToken).ConfigureAwait(false);
        }

        // One RENAME TABLE moves every table and sequence at once: MySQL applies it atomically, so a failure changes
        // no table.
        await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(old)}", cancellationToken).ConfigureAwait(false);
        var moves = current.Select(t => $"{Q(target.Database!, t)} TO {Q(old, t)}")
            .Concat(incoming.Select(t => $"{Q(restored.Database!, t)} TO {Q(target.Database!, t)}")).ToList();
        try
        {
            // An empty backup over an empty database (the first migration's safety backup, restored again) moves nothing.
            if (moves.Count > 0)
            {
                await connection.ExecuteAsync("SET FOREIGN_KEY_CHECKS = 0; RENAME TABLE " + string.Join(", ", moves) + "; SET FOREIGN_KEY_CHECKS = 1", cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await MySqlLogicalDump.CreateObjectsAsync(connection, currentObjects.Where(o => o.Kind == "TRIGGER"), CancellationToken.None).ConfigureAwait(false);
            await connection.ExecuteAsync($"DROP DATABASE {provider.QuoteIdentifier(old)}", CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        await RepointSequenceDefaultsAsync(connection, target.Database!, restored.Database!, cancellationToken).ConfigureAwait(false);

        // Views, routines, triggers and events now follow the backup's: the current ones are replaced (events belong to
        // the database, not to a table, so RENAME TABLE leaves them behind).
        foreach (var item in currentObjects.Where(o => o.Kind != "TRIGGER").Reverse())
        {
            await connection.ExecuteAsync($"DROP {item.Kind} IF EXISTS {Q(target.Database!, item.Name)}", cancellationToken).ConfigureAwait(false);
        }

        await MySqlLogicalDump.CreateObjectsAsync(connection, incomingObjects, cancellationToken).ConfigureAwait(false);
        foreach (var setting in copy.DatabaseSettings)
        {
            try
            {
                await connection.ExecuteAsync(setting, cancellationToken).ConfigureAwait(false);
            }
            catch (MySqlException ex)
            {
                progress.Warning($"The backed-up database's setting was not restored: {setting} ({ex.Message}).");
            }
        }

        await connection.ExecuteAsync($"DROP DATABASE {provider.QuoteIdentifier(old)}; DROP DATABASE {provider.QuoteIdentifier(restored.Database!)}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How the dump and load tools reach the server the way DbMigration's own client does: through the target's
    /// socket, or over TCP to its host and port, with its TLS settings in the tool's own dialect (MariaDB's and
    /// Oracle's clients name them differently).
    /// </summary>
    internal static List<string> ConnectionArguments(string tool, DatabaseTarget target)
    {
        string? Option(string name) => target.Options.FirstOrDefault(o => string.Equals(o.Key, name, StringComparison.OrdinalIgnoreCase)).Value;
        var arguments = new List<string> { "--no-defaults" };
        if (Option("socket") is { } socket)
        {
            arguments.AddRange(["--protocol=SOCKET", "--socket=" + socket]);
        }
        else
        {
            // TCP even for "localhost", which the tools would otherwise take to mean their default socket.
            arguments.AddRange(["--protocol=TCP", "--host=" + (target.Host ?? "localhost"), "--port=" + (target.Port ?? 3306).ToString(CultureInfo.InvariantCulture)]);
        }

        var mode = Option("sslmode")?.Replace("-", string.Empty, StringComparison.Ordinal).Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant();
        var ca = Option("sslca");
        if (IsMariaDbTool(tool))
        {
            arguments.AddRange(mode switch
            {
                "none" or "disabled" => ["--skip-ssl"],
                "required" => ["--ssl"],
                "verifyca" => ["--ssl", .. ca is null ? Array.Empty<string>() : ["--ssl-ca=" + ca]],
                "verifyfull" => ["--ssl", "--ssl-verify-server-cert", .. ca is null ? Array.Empty<string>() : ["--ssl-ca=" + ca]],
                _ => [],
            });
        }
        else
        {
            arguments.AddRange(mode switch
            {
                "none" or "disabled" => ["--ssl-mode=DISABLED"],
                "required" => ["--ssl-mode=REQUIRED"],
                "verifyca" => ["--ssl-mode=VERIFY_CA", .. ca is null ? Array.Empty<string>() : ["--ssl-ca=" + ca]],
                "verifyfull" => ["--ssl-mode=VERIFY_IDENTITY", .. ca is null ? Array.Empty<string>() : ["--ssl-ca=" + ca]],
                _ => [],
            });
        }

        arguments.Add("--user=" + (target.UserName ?? System.Environment.UserName));
        return arguments;
    }

    /// <summary>mariadb-dump and mariadb, or a mysqldump or mysql that links to them (as Debian's MariaDB packages install).</summary>
    private static bool IsMariaDbTool(string tool)
    {
        var name = Path.GetFileName(tool);
        try
        {
            if (File.ResolveLinkTarget(tool, returnFinalTarget: true) is { } link)
            {
                name = link.Name;
            }
        }
        catch (IOException)
        {
            // Unreadable link: judge by the name on the PATH.
        }

        return name.StartsWith("mariadb", StringComparison.OrdinalIgnoreCase);
    }

    private static Dictionary<string, string?> Environment(DatabaseTarget target) => new() { ["MYSQL_PWD"] = target.ResolvePassword() };
}
