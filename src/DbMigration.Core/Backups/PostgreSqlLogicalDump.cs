using System.Data.Common;
using System.Globalization;
using System.Text;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Providers.PostgreSql;
using Npgsql;

namespace DbMigration.Backups;

/// <summary>
/// DbMigration's own logical dump of a PostgreSQL database, for when no pg_dump as new as the server is installed.
/// It runs inside the caller's REPEATABLE READ transaction, so it sees the same snapshot as the content hashes,
/// and writes plain SQL (psql can run it too): schemas, enum and domain types, functions, sequences with their
/// values, tables with defaults, identity and generated columns, data as COPY blocks, constraints, indexes, views
/// and triggers. Objects it cannot reproduce faithfully are refused up front, by name.
/// </summary>
internal static class PostgreSqlLogicalDump
{
    public const string Format = "postgresql-logical-sql";

    private const string UserSchemas = PostgreSqlProvider.UserSchemas;

    /// <summary>A filter for objects not created by an extension (those are the extension's to create).</summary>
    private static string NotFromExtension(string oid) => $"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = {oid} AND e.deptype = 'e')";

    public static async Task WriteAsync(DbConnection connection, DbTransaction transaction, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var npgsql = (NpgsqlConnection)connection;

        // Every name the catalog functions print is then schema-qualified.
        await Execute(npgsql, transaction, "SET LOCAL search_path = pg_catalog", cancellationToken).ConfigureAwait(false);
        await RefuseUnsupportedAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false);

        using var script = new DumpScriptWriter(path, "-- DbMigration built-in PostgreSQL dump. Restore with Restore-MigrationBackup, or run it with psql -f into an empty database.");
        script.Statement("SELECT pg_catalog.set_config('search_path', '', false)");
        script.Statement("SET check_function_bodies = false");
        script.Statement("SET client_encoding = 'UTF8'");
        script.Statement("SET standard_conforming_strings = on");

        foreach (var schema in await Strings(npgsql, transaction, $"""
            SELECT quote_ident(n.nspname) FROM pg_namespace n
            WHERE {UserSchemas} AND n.nspname <> 'public' AND {NotFromExtension("n.oid")} ORDER BY n.nspname
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement($"CREATE SCHEMA IF NOT EXISTS {schema}");
        }

        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT 'CREATE TYPE ' || format('%I.%I', n.nspname, t.typname) || ' AS ENUM (' ||
                   COALESCE((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'e' AND {UserSchemas} AND {NotFromExtension("t.oid")} ORDER BY t.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT 'CREATE DOMAIN ' || format('%I.%I', n.nspname, t.typname) || ' AS ' || format_type(t.typbasetype, t.typtypmod) ||
                   CASE WHEN t.typcollation <> 0 AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
                        THEN ' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) ELSE '' END ||
                   COALESCE(' DEFAULT ' || t.typdefault, '') || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END ||
                   COALESCE((SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                             FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '')
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'd' AND {UserSchemas} AND {NotFromExtension("t.oid")} ORDER BY t.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.prokind IN ('f', 'p') AND {UserSchemas} AND {NotFromExtension("p.oid")} ORDER BY p.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        // Sequences that identity columns own are created with their column; the rest come first, since defaults use them.
        var sequences = await Rows(npgsql, transaction, $"""
            SELECT format('%I.%I', n.nspname, c.relname), format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, s.seqcycle,
                   o.owner_table, o.owner_column, o.deptype = 'i'
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
            LEFT JOIN LATERAL (
                SELECT format('%I.%I', tn.nspname, t.relname) AS owner_table, a.attname AS owner_column, d.deptype FROM pg_depend d
                JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) o ON true
            WHERE c.relkind = 'S' AND {UserSchemas} AND {NotFromExtension("c.oid")} ORDER BY c.oid
            """, cancellationToken).ConfigureAwait(false);
        foreach (var s in sequences.Where(s => s[10] is not true))
        {
            script.Statement(string.Create(CultureInfo.InvariantCulture,
                $"CREATE SEQUENCE {s[0]} AS {s[1]} INCREMENT BY {s[2]} MINVALUE {s[3]} MAXVALUE {s[4]} START WITH {s[5]} CACHE {s[6]}{((bool)s[7]! ? " CYCLE" : string.Empty)}"));
        }

        var tables = await TablesAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false);
        foreach (var table in tables)
        {
            script.Statement(table.CreateSql);
        }

        var done = 0;
        foreach (var table in tables)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new ProgressUpdate(5, "Built-in dump", $"Copying {table.Name}", 100.0 * done++ / Math.Max(1, tables.Count)));
            if (table.CopyColumns.Length == 0)
            {
                continue;
            }

            var copy = $"COPY {table.Name} ({table.CopyColumns}) ";
            var output = script.BeginCopy(copy + "FROM stdin");
            using (var reader = await npgsql.BeginTextExportAsync(copy + "TO STDOUT", cancellationToken).ConfigureAwait(false))
            {
                var buffer = new char[1 << 16];
                int read;
                while ((read = await reader.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }

            script.EndCopy();
        }

        foreach (var s in sequences)
        {
            var ownedByIdentity = s[10] is true;
            if (s[8] is string ownerTable && !ownedByIdentity)
            {
                script.Statement($"ALTER SEQUENCE {s[0]} OWNED BY {ownerTable}.{QuoteIdentifier((string)s[9]!)}");
            }

            // Sequences are not transactional: this is their value now, at least as far as the snapshot's rows need.
            var state = (await Rows(npgsql, transaction, $"SELECT last_value, is_called FROM {s[0]}", cancellationToken).ConfigureAwait(false)).Single();
            var name = ownedByIdentity
                ? $"pg_catalog.pg_get_serial_sequence({Literal((string)s[8]!)}, {Literal((string)s[9]!)})"
                : Literal((string)s[0]!);
            script.Statement(string.Create(CultureInfo.InvariantCulture, $"SELECT pg_catalog.setval({name}, {state[0]}, {((bool)state[1]! ? "true" : "false")})"));
        }

        // Keys and checks before foreign keys, which need the keys they reference.
        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I ', n.nspname, c.relname, k.conname) || pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype IN ('p', 'u', 'x', 'c', 'f') AND c.relkind = 'r' AND {UserSchemas} AND NOT k.coninhcount > 0
            ORDER BY k.contype = 'f', k.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND {UserSchemas} AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
            ORDER BY i.indexrelid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await ViewsInDependencyOrderAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND {UserSchemas} ORDER BY t.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        await script.FlushAsync(cancellationToken).ConfigureAwait(false);
        await Execute(npgsql, transaction, "SET LOCAL search_path TO DEFAULT", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs a built-in dump into an empty database, in one transaction: it either loads whole or not at all.</summary>
    public static async Task RestoreAsync(DbConnection connection, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var npgsql = (NpgsqlConnection)connection;
        var total = Math.Max(1, new FileInfo(path).Length);
        using var script = new DumpScriptReader(path);
        await using (var transaction = await npgsql.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            long copied = 0;
            string? sql;
            while ((sql = script.NextStatement(out var isCopy)) is not null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    if (!isCopy)
                    {
                        await Execute(npgsql, transaction, sql, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    progress?.Report(new ProgressUpdate(5, "Built-in restore", sql.Length > 80 ? sql[..80] : sql, Math.Min(99, 100.0 * copied / total)));
                    copied += await CopyInAsync(npgsql, sql[..^"FROM stdin;".Length] + "FROM STDIN", script, cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException ex)
                {
                    throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.InvalidData, $"Loading the built-in dump failed: {ex.MessageText}", ex) { Sql = sql, SqlState = ex.SqlState };
                }
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        // The types this load created are new to the connection pool's type cache.
        await npgsql.ReloadTypesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Streams one COPY block; a block cut short cancels the COPY, so no partial row reaches the table.</summary>
    private static async Task<long> CopyInAsync(NpgsqlConnection connection, string copyFromStdin, DumpScriptReader script, CancellationToken cancellationToken)
    {
        var writer = (NpgsqlCopyTextWriter)await connection.BeginTextImportAsync(copyFromStdin, cancellationToken).ConfigureAwait(false);
        long characters = 0;
        try
        {
            foreach (var line in script.CopyLines())
            {
                await writer.WriteAsync(line.AsMemory(), cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync('\n').ConfigureAwait(false);
                characters += line.Length + 1;
            }
        }
        catch
        {
            // Cancelling ends the COPY (the server discards its rows) and releases the writer.
            await writer.CancelAsync().ConfigureAwait(false);
            throw;
        }

        await writer.DisposeAsync().ConfigureAwait(false);
        return characters;
    }

    private sealed record DumpTable(string Name, string CreateSql, string CopyColumns);

    private static async Task<List<DumpTable>> TablesAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var rows = await Rows(connection, transaction, $"""
            SELECT c.oid::bigint, format('%I.%I', n.nspname, c.relname), c.relpersistence = 'u', quote_ident(a.attname),
                   format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
                   CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                        THEN (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")}
            ORDER BY c.oid, a.attnum
            """, cancellationToken).ConfigureAwait(false);
        var tables = new List<DumpTable>();
        foreach (var group in rows.GroupBy(r => (long)r[0]!))
        {
            var first = group.First();
            var name = (string)first[1]!;
            var definitions = new List<string>();
            var copyColumns = new List<string>();
            foreach (var r in group.Where(r => r[3] is not null))
            {
                var column = new StringBuilder().Append((string)r[3]!).Append(' ').Append((string)r[4]!);
                if (r[9] is string collation)
                {
                    column.Append(" COLLATE ").Append(collation);
                }

                var identity = r[6] is char i ? i : '\0';
                var generated = r[7] is char g ? g : '\0';
                if (identity is 'a' or 'd')
                {
                    column.Append(identity == 'a' ? " GENERATED ALWAYS AS IDENTITY" : " GENERATED BY DEFAULT AS IDENTITY");
                }
                else if (generated == 's')
                {
                    column.Append(" GENERATED ALWAYS AS (").Append((string)r[8]!).Append(") STORED");
                }
                else if (r[8] is string defaultExpression)
                {
                    column.Append(" DEFAULT ").Append(defaultExpression);
                }

                if ((bool)r[5]!)
                {
                    column.Append(" NOT NULL");
                }

                definitions.Add(column.ToString());
                if (generated != 's')
                {
                    copyColumns.Add((string)r[3]!);
                }
            }

            var unlogged = (bool)first[2]! ? "UNLOGGED " : string.Empty;
            tables.Add(new DumpTable(name, $"CREATE {unlogged}TABLE {name} (\n    {string.Join(",\n    ", definitions)}\n)", string.Join(", ", copyColumns)));
        }

        return tables;
    }

    /// <summary>Views after every view they select from (pg_rewrite dependencies), oldest first otherwise.</summary>
    private static async Task<List<string>> ViewsInDependencyOrderAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var views = (await Rows(connection, transaction, $"""
            SELECT c.oid::bigint, format('CREATE VIEW %I.%I AS ', n.nspname, c.relname) || pg_get_viewdef(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'v' AND {UserSchemas} AND {NotFromExtension("c.oid")} ORDER BY c.oid
            """, cancellationToken).ConfigureAwait(false)).ToDictionary(r => (long)r[0]!, r => (string)r[1]!);
        var edges = await Rows(connection, transaction, """
            SELECT DISTINCT r.ev_class::bigint, d.refobjid::bigint FROM pg_rewrite r
            JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
            WHERE d.refobjid <> r.ev_class
            """, cancellationToken).ConfigureAwait(false);
        var needs = edges.Where(e => views.ContainsKey((long)e[0]!) && views.ContainsKey((long)e[1]!))
            .GroupBy(e => (long)e[0]!).ToDictionary(g => g.Key, g => g.Select(e => (long)e[1]!).ToHashSet());
        var ordered = new List<string>();
        var placed = new HashSet<long>();
        void Place(long view, int depth)
        {
            if (placed.Contains(view) || depth > views.Count)
            {
                return;
            }

            foreach (var dependency in needs.GetValueOrDefault(view) ?? [])
            {
                Place(dependency, depth + 1);
            }

            if (placed.Add(view))
            {
                ordered.Add(views[view]);
            }
        }

        foreach (var view in views.Keys)
        {
            Place(view, 0);
        }

        return ordered;
    }

    private static async Task RefuseUnsupportedAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var found = await Strings(connection, transaction, $"""
            SELECT 'extension ' || e.extname FROM pg_extension e WHERE e.extname <> 'plpgsql'
            UNION ALL
            SELECT CASE c.relkind WHEN 'm' THEN 'materialized view ' WHEN 'p' THEN 'partitioned table ' WHEN 'f' THEN 'foreign table ' ELSE 'relation ' END || format('%I.%I', n.nspname, c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('m', 'p', 'f') AND {UserSchemas}
            UNION ALL
            SELECT 'inherited table ' || format('%I.%I', n.nspname, c.relname)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            UNION ALL
            SELECT 'composite or range type ' || format('%I.%I', n.nspname, t.typname)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('r', 'm') AND {UserSchemas}
               OR (t.typtype = 'c' AND {UserSchemas} AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
            UNION ALL
            SELECT 'aggregate or window function ' || format('%I.%I', n.nspname, p.proname)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('a', 'w') AND {UserSchemas}
            UNION ALL
            SELECT 'rule ' || r.rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE r.rulename <> '_RETURN' AND {UserSchemas}
            UNION ALL
            SELECT 'row-level security policy ' || p.polname FROM pg_policy p
            """, cancellationToken).ConfigureAwait(false);
        if (found.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
                $"No pg_dump as new as the server was found, and the built-in dump does not cover {string.Join(", ", found.Take(10))}{(found.Count > 10 ? $" and {found.Count - 10} more" : string.Empty)}. Install the PostgreSQL client tools that match the server.");
        }
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static async Task Execute(NpgsqlConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, (NpgsqlTransaction)transaction) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<string>> Strings(NpgsqlConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken) =>
        (await Rows(connection, transaction, sql, cancellationToken).ConfigureAwait(false)).Select(r => (string)r[0]!).ToList();

    private static Task<List<object?[]>> Rows(NpgsqlConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken) =>
        connection.ReadRowsAsync(sql, transaction, cancellationToken);
}
