using System.Data.Common;
using System.Globalization;
using System.Text;
using DbMigration.Errors;
using DbMigration.MySql;
using DbMigration.Operations;
using DbMigration.Providers;

namespace DbMigration.Backups;

/// <summary>
/// DbMigration's own logical dump of a MySQL/MariaDB database, for when mariadb-dump is not installed. It runs in
/// the caller's REPEATABLE READ transaction, so the rows match the content hashes taken in it, and writes SQL the
/// mariadb client can also run: tables as SHOW CREATE TABLE prints them (keys, foreign keys, AUTO_INCREMENT),
/// rows as multi-row INSERTs in the server's own text form (binary values as hex), views after the views they
/// use, routines and triggers with the sql_mode they were created under. Objects it does not cover are refused.
/// </summary>
internal static class MySqlLogicalDump
{
    public const string Format = "mariadb-logical-sql";

    private const int InsertBytes = 1 << 20;

    private static readonly HashSet<string> BinaryTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit",
        "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection",
    };

    private static readonly HashSet<string> NumericTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double",
    };

    /// <summary>The sql_mode flags that change how SHOW CREATE prints (or how a CHAR reads), and the combinations that set them.</summary>
    private static readonly HashSet<string> PrintingModes = new(StringComparer.OrdinalIgnoreCase)
    {
        "ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL", "MYSQL323", "MYSQL40",
        "NO_FIELD_OPTIONS", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "PAD_CHAR_TO_FULL_LENGTH",
    };

    /// <summary>
    /// Runs <paramref name="action"/> with the session's sql_mode stripped of <see cref="PrintingModes"/>, as
    /// mariadb-dump clears its own, and puts the session's mode back after. Under a server's ANSI_QUOTES, SHOW CREATE
    /// printed "items" for `items`, which the dump's load session read as a string, and a view's database
    /// qualifier was not recognised to be taken off.
    /// </summary>
    private static async Task<T> WithPlainSqlModeAsync<T>(DbConnection connection, DbTransaction? transaction, Func<Task<T>> action, CancellationToken cancellationToken)
    {
        var mode = Convert.ToString((await Rows(connection, transaction, "SELECT @@SESSION.sql_mode", cancellationToken).ConfigureAwait(false)).Single()[0], CultureInfo.InvariantCulture) ?? string.Empty;
        var plain = string.Join(",", mode.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(m => !PrintingModes.Contains(m)));
        if (plain.Length == mode.Length)
        {
            return await action().ConfigureAwait(false);
        }

        await connection.ExecuteAsync($"SET SESSION sql_mode = {Quote(plain)}", cancellationToken, transaction).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            await connection.ExecuteAsync($"SET SESSION sql_mode = {Quote(mode)}", CancellationToken.None, transaction).ConfigureAwait(false);
        }
    }

    public static Task WriteAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction transaction, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken) =>
        WithPlainSqlModeAsync(connection, transaction, async () =>
        {
            await WriteCoreAsync(provider, connection, transaction, path, progress, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    private static async Task WriteCoreAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction transaction, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        await RefuseUnsupportedAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        using var script = new DumpScriptWriter(path, "-- DbMigration built-in MariaDB dump. Restore with Restore-MigrationBackup, or: mariadb --default-character-set=utf8mb4 --binary-mode <empty database> < this file.");
        script.Statement("SET NAMES utf8mb4");
        script.Statement("SET time_zone = '+00:00'");
        script.Statement("SET FOREIGN_KEY_CHECKS = 0");
        script.Statement("SET UNIQUE_CHECKS = 0");
        script.Statement("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");

        var tables = (await Rows(connection, transaction,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", cancellationToken).ConfigureAwait(false))
            .Select(o => (string)o[0]!).ToList();

        foreach (var table in tables)
        {
            var create = (await Rows(connection, transaction, "SHOW CREATE TABLE " + provider.QuoteIdentifier(table), cancellationToken).ConfigureAwait(false)).Single();
            script.Statement((string)create[1]!);
        }

        var columns = (await Rows(connection, transaction, """
            SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = DATABASE() AND EXTRA NOT LIKE '%GENERATED%' ORDER BY TABLE_NAME, ORDINAL_POSITION
            """, cancellationToken).ConfigureAwait(false))
            .GroupBy(r => (string)r[0]!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(r => (Name: (string)r[1]!, Type: (string)r[2]!)).ToList(), StringComparer.Ordinal);

        var done = 0;
        var line = new StringBuilder(InsertBytes + 4096);
        foreach (var table in tables)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new ProgressUpdate(5, "Built-in dump", $"Dumping {table}", 100.0 * done++ / Math.Max(1, tables.Count)));
            var list = columns.GetValueOrDefault(table) ?? [];
            if (list.Count == 0)
            {
                continue;
            }

            var names = string.Join(", ", list.Select(c => provider.QuoteIdentifier(c.Name)));
            var insert = $"INSERT INTO {provider.QuoteIdentifier(table)} ({names}) VALUES ";
            var kinds = list.Select(c => BinaryTypes.Contains(c.Type) ? 'b' : NumericTypes.Contains(c.Type) ? 'n' : 's').ToArray();
            // A FLOAT's own text has six significant digits (23.456789 is written 23.4568, and restores as another
            // float): its DOUBLE widening is exact, and reads back into the column as the same float.
            var values = string.Join(", ", list.Select(c => ContentHasher.IsMySqlFloat(c.Type)
                ? $"CAST({provider.QuoteIdentifier(c.Name)} AS DOUBLE)"
                : provider.QuoteIdentifier(c.Name)));
            await using var command = connection.CreateCommand($"SELECT {values} FROM {provider.QuoteIdentifier(table)}", transaction, timeoutSeconds: 0);
            await using var reader = (MySqlDataReader)await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            line.Clear();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                line.Append(line.Length == 0 ? insert : ",").Append('(');
                for (var i = 0; i < kinds.Length; i++)
                {
                    if (i > 0)
                    {
                        line.Append(',');
                    }

                    AppendLiteral(line, reader, i, kinds[i]);
                }

                line.Append(')');
                if (line.Length >= InsertBytes)
                {
                    script.Statement(line.ToString());
                    line.Clear();
                }
            }

            if (line.Length > 0)
            {
                script.Statement(line.ToString());
            }
        }

        foreach (var item in await ReadObjectsAsync(provider, connection, transaction, cancellationToken).ConfigureAwait(false))
        {
            if (item.SqlMode is not null)
            {
                script.Statement($"SET SESSION sql_mode = {Quote(item.SqlMode)}");
            }

            if (item.ClientSetting is { } client)
            {
                script.Statement(client);
            }

            script.Statement(item.Create);
            if (item.ClientSetting is not null)
            {
                script.Statement("SET NAMES utf8mb4");
            }

            if (item.SqlMode is not null)
            {
                script.Statement("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");
            }
        }

        if (await DefaultsStatementAsync(connection, transaction, cancellationToken).ConfigureAwait(false) is { } defaults)
        {
            script.Statement(defaults);
        }

        await script.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The database's default character set and collation, as a statement that gives them to whichever database it
    /// runs in: a dump of one database has no CREATE DATABASE, so without it a restored database would get the server's.
    /// </summary>
    internal static async Task<string?> DefaultsStatementAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var row = (await Rows(connection, transaction, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()", cancellationToken).ConfigureAwait(false)).SingleOrDefault();
        return row is [string charset, string collation] && IsName(charset) && IsName(collation) ? DefaultsStatement(charset, collation) : null;
    }

    /// <summary>ALTER DATABASE [quoted name] CHARACTER SET … COLLATE …; without a name it applies to the current database.</summary>
    internal static string DefaultsStatement(string charset, string collation, string? quotedDatabase = null) =>
        $"ALTER DATABASE {(quotedDatabase is null ? string.Empty : quotedDatabase + " ")}CHARACTER SET {charset} COLLATE {collation}";

    /// <summary>
    /// The defaults a dump carries (its last statement, from <see cref="DefaultsStatementAsync"/>), read from the
    /// file's end; null for a dump taken before DbMigration recorded them.
    /// </summary>
    internal static (string CharacterSet, string Collation)? ReadDefaults(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var tail = new byte[(int)Math.Min(file.Length, 4096)];
        file.Seek(-tail.Length, SeekOrigin.End);
        file.ReadExactly(tail);
        var lines = Encoding.UTF8.GetString(tail).TrimEnd().Split('\n');
        if (lines.Length < 2 || lines[^2] is not (DefaultsComment or DumpScriptWriter.Marker))
        {
            return null;
        }

        var words = lines[^1].TrimEnd(';').Split(' ');
        return words is ["ALTER", "DATABASE", "CHARACTER", "SET", var charset, "COLLATE", var collation] && IsName(charset) && IsName(collation) ? (charset, collation) : null;
    }

    /// <summary>The comment line before the defaults appended to a mariadb-dump file.</summary>
    internal const string DefaultsComment = "-- DbMigration: the backed-up database's default character set and collation";

    private static bool IsName(string name) => name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>Runs a built-in dump into an empty database. MySQL DDL commits as it goes; the caller drops the database on failure.</summary>
    public static async Task RestoreAsync(DbConnection connection, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var total = Math.Max(1, new FileInfo(path).Length);
        long done = 0;
        // The server drops the connection on a statement larger than this; one row of a large BLOB, written in hex,
        // can be. Said plainly instead of as a lost connection.
        var packetLimit = await connection.ScalarAsync<long>("SELECT @@max_allowed_packet", cancellationToken).ConfigureAwait(false);
        using var script = new DumpScriptReader(path);
        string? sql;
        var index = 0;
        while ((sql = script.NextStatement(out _)) is not null)
        {
            cancellationToken.ThrowIfCancellationRequested();
            index++;
            done += sql.Length;
            if (sql.Length > packetLimit / 4 && Encoding.UTF8.GetByteCount(sql) is var bytes && bytes > packetLimit)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.InvalidOperation,
                    string.Create(CultureInfo.InvariantCulture, $"Statement {index} of the built-in dump is {bytes / 1048576.0:0.#} MiB (a large row, its binary values written in hex), more than the server's max_allowed_packet of {packetLimit / 1048576.0:0.#} MiB, so the server would drop the connection. Raise it for the restore (SET GLOBAL max_allowed_packet = {NextPowerOfTwo(bytes + 1024)}, as a user with SUPER, or in the server's configuration) and run it again. Nothing was changed."))
                { Sql = sql[..Math.Min(sql.Length, 200)] + " …" };
            }

            if (sql.Length > 4096)
            {
                progress?.Report(new ProgressUpdate(5, "Built-in restore", "Loading rows", Math.Min(99, 100.0 * done / total)));
            }

            try
            {
                await using var command = connection.CreateCommand(sql[..^1], timeoutSeconds: 0);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (MySqlException ex)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.InvalidData, $"Loading the built-in dump failed: {ex.Message}", ex)
                {
                    Sql = sql.Length > 2000 ? sql[..2000] + " …" : sql,
                    ServerErrorNumber = ex.Number,
                };
            }
        }
    }

    private static long NextPowerOfTwo(long value) => Math.Min(1L << 30, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)value));

    private static void AppendLiteral(StringBuilder sql, MySqlDataReader reader, int ordinal, char kind)
    {
        if (reader.IsDBNull(ordinal))
        {
            sql.Append("NULL");
            return;
        }

        var raw = reader.GetRawValue(ordinal);
        switch (kind)
        {
            case 'b':
                sql.Append(raw.Length == 0 ? "''" : "0x").Append(Convert.ToHexString(raw));
                break;
            case 'n':
                sql.Append(Encoding.ASCII.GetString(raw));
                break;
            default:
                sql.Append('\'');
                var text = Encoding.UTF8.GetString(raw);
                var start = 0;
                for (var i = 0; i < text.Length; i++)
                {
                    var escape = text[i] switch
                    {
                        '\0' => "\\0",
                        '\'' => "\\'",
                        '\\' => "\\\\",
                        '\n' => "\\n",
                        '\r' => "\\r",
                        '\u001a' => "\\Z",
                        _ => null,
                    };
                    if (escape is not null)
                    {
                        sql.Append(text, start, i - start).Append(escape);
                        start = i + 1;
                    }
                }

                sql.Append(text, start, text.Length - start);
                sql.Append('\'');
                break;
        }
    }

    /// <summary>
    /// A view, routine, trigger or event with its definition, the sql_mode it was created under (all but views), the
    /// client character set and connection collation (the server keeps both with it; its string literals are read in
    /// them), and for an event the time zone its schedule was written in.
    /// </summary>
    internal sealed record SchemaObject(string Kind, string Name, string? SqlMode, string Create, string? CharacterSet = null, string? Collation = null, string? TimeZone = null)
    {
        /// <summary>The SET that recreates the object's character set and collation, or null to keep the session's.</summary>
        public string? ClientSetting => ClientSettingFor(CharacterSet, Collation, Create);
    }

    /// <summary>
    /// Our statements travel as UTF-8, so another client character set is only named where the text reads the same in
    /// it: any UTF-8 set for text without 4-byte characters (utf8mb4 for any), any set for ASCII text.
    /// </summary>
    internal static string? ClientSettingFor(string? characterSet, string? collation, string create)
    {
        static bool Plain(string? name) => name is { Length: > 0 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
        if (!Plain(characterSet) || !Plain(collation))
        {
            return null;
        }

        var ascii = create.All(char.IsAscii);
        var readsAsUtf8 = characterSet!.StartsWith("utf8", StringComparison.OrdinalIgnoreCase)
            && (characterSet.Equals("utf8mb4", StringComparison.OrdinalIgnoreCase) || !create.Any(char.IsSurrogate));
        return ascii || readsAsUtf8 ? $"SET SESSION character_set_client = {characterSet}, collation_connection = {collation}" : null;
    }

    /// <summary>Views (each after the views it uses), then routines, then triggers: the order they can be created in.</summary>
    internal static Task<List<SchemaObject>> ReadObjectsAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken) =>
        WithPlainSqlModeAsync(connection, transaction, () => ReadObjectsCoreAsync(provider, connection, transaction, cancellationToken), cancellationToken);

    private static async Task<List<SchemaObject>> ReadObjectsCoreAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var objects = new List<SchemaObject>();
        var definitions = new Dictionary<string, string>(StringComparer.Ordinal);
        var clients = new Dictionary<string, (string? CharacterSet, string? Collation)>(StringComparer.Ordinal);

        // A view must follow its database when restored elsewhere: names qualified with this database are unqualified.
        var database = (string)(await Rows(connection, transaction, "SELECT DATABASE()", cancellationToken).ConfigureAwait(false)).Single()[0]!;
        var qualifier = provider.QuoteIdentifier(database) + ".";
        foreach (var view in await Rows(connection, transaction,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW' ORDER BY TABLE_NAME", cancellationToken).ConfigureAwait(false))
        {
            var create = (await Rows(connection, transaction, "SHOW CREATE VIEW " + provider.QuoteIdentifier((string)view[0]!), cancellationToken).ConfigureAwait(false)).Single();
            definitions[(string)view[0]!] = ((string)create[1]!).Replace(qualifier, string.Empty, StringComparison.Ordinal);
            clients[(string)view[0]!] = (create[2] as string, create[3] as string);
        }

        objects.AddRange(ViewsInDependencyOrder(provider, definitions).Select(v => new SchemaObject("VIEW", v, null, definitions[v], clients[v].CharacterSet, clients[v].Collation)));

        foreach (var routine in await Rows(connection, transaction,
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY ROUTINE_TYPE, ROUTINE_NAME", cancellationToken).ConfigureAwait(false))
        {
            var create = (await Rows(connection, transaction, $"SHOW CREATE {routine[0]} {provider.QuoteIdentifier((string)routine[1]!)}", cancellationToken).ConfigureAwait(false)).Single();
            objects.Add(new SchemaObject((string)routine[0]!, (string)routine[1]!, (string)create[1]!, create[2] as string
                ?? throw new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.PermissionDenied, $"The definition of {routine[0]} {routine[1]} cannot be read; the user needs SELECT on mysql.proc or to own the routine."),
                create[3] as string, create[4] as string));
        }

        foreach (var trigger in await Rows(connection, transaction,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER", cancellationToken).ConfigureAwait(false))
        {
            var create = (await Rows(connection, transaction, "SHOW CREATE TRIGGER " + provider.QuoteIdentifier((string)trigger[0]!), cancellationToken).ConfigureAwait(false)).Single();
            objects.Add(new SchemaObject("TRIGGER", (string)trigger[0]!, (string)create[1]!, (string)create[2]!, create[3] as string, create[4] as string));
        }

        // Refused by the built-in dump; a restore's swap carries them over.
        foreach (var name in await Rows(connection, transaction, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME", cancellationToken).ConfigureAwait(false))
        {
            var create = (await Rows(connection, transaction, "SHOW CREATE EVENT " + provider.QuoteIdentifier((string)name[0]!), cancellationToken).ConfigureAwait(false)).Single();
            objects.Add(new SchemaObject("EVENT", (string)name[0]!, (string)create[1]!, (string)create[3]!, create[4] as string, create[5] as string, (string)create[2]!));
        }

        return objects;
    }

    /// <summary>
    /// Creates objects read by <see cref="ReadObjectsAsync"/> on <paramref name="connection"/>'s database, each under
    /// its own sql_mode, character set and collation, and an event under its time zone; the session's come back after.
    /// </summary>
    internal static async Task CreateObjectsAsync(DbConnection connection, IEnumerable<SchemaObject> objects, CancellationToken cancellationToken)
    {
        var session = (await Rows(connection, null, "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.collation_connection, @@SESSION.time_zone", cancellationToken).ConfigureAwait(false)).Single();
        string Setting(int i) => Convert.ToString(session[i], CultureInfo.InvariantCulture) ?? string.Empty;
        var sessionClient = $"SET SESSION character_set_client = {Setting(1)}, collation_connection = {Setting(2)}";
        foreach (var item in objects)
        {
            if (item.SqlMode is not null)
            {
                await connection.ExecuteAsync($"SET SESSION sql_mode = {Quote(item.SqlMode)}", cancellationToken).ConfigureAwait(false);
            }

            await connection.ExecuteAsync($"{item.ClientSetting ?? sessionClient}, time_zone = {Quote(item.TimeZone ?? Setting(3))}", cancellationToken).ConfigureAwait(false);
            await connection.ExecuteAsync(item.Create, cancellationToken).ConfigureAwait(false);
        }

        await connection.ExecuteAsync($"SET SESSION sql_mode = {Quote(Setting(0))}", cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"{sessionClient}, time_zone = {Quote(Setting(3))}", cancellationToken).ConfigureAwait(false);
    }

    private static string Quote(string text) => "'" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>A view goes after every other view whose quoted name its definition mentions (an over-approximation is harmless).</summary>
    private static List<string> ViewsInDependencyOrder(IDatabaseProvider provider, Dictionary<string, string> definitions)
    {
        var ordered = new List<string>();
        var placed = new HashSet<string>(StringComparer.Ordinal);
        void Place(string view, int depth)
        {
            if (placed.Contains(view) || depth > definitions.Count)
            {
                return;
            }

            var body = definitions[view];
            var asAt = body.IndexOf(" AS ", StringComparison.OrdinalIgnoreCase);
            foreach (var other in definitions.Keys.Where(o => o != view && body.IndexOf(provider.QuoteIdentifier(o), Math.Max(0, asAt), StringComparison.Ordinal) >= 0))
            {
                Place(other, depth + 1);
            }

            if (placed.Add(view))
            {
                ordered.Add(view);
            }
        }

        foreach (var view in definitions.Keys)
        {
            Place(view, 0);
        }

        return ordered;
    }

    private static async Task RefuseUnsupportedAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var found = (await Rows(connection, transaction, """
            SELECT CONCAT('sequence ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE'
            UNION ALL
            SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()
            UNION ALL
            SELECT CONCAT('system-versioned table ', TABLE_NAME, ' (its history)') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SYSTEM VERSIONED'
            """, cancellationToken).ConfigureAwait(false)).Select(r => (string)r[0]!).ToList();
        if (found.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
                $"mariadb-dump was not found, and the built-in dump does not cover {string.Join(", ", found.Take(10))}{(found.Count > 10 ? $" and {found.Count - 10} more" : string.Empty)}. Install the MariaDB client (mariadb-client).");
        }
    }

    private static Task<List<object?[]>> Rows(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken) =>
        connection.ReadRowsAsync(sql, transaction, cancellationToken);
}
