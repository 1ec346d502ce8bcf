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
/// values, tables with defaults, identity and generated columns, data as COPY blocks, constraints, indexes, views,
/// triggers, owners and privileges. Objects it cannot reproduce faithfully are refused up front, by name.
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
        // COPY writes values as the session shows them: a database set to DateStyle 'SQL, DMY' gave 31/12/2024 (which
        // a restore in another order misreads or refuses), and extra_float_digits = 0 rounded floats.
        await Execute(npgsql, transaction, ContentHasher.PostgresExactText(local: true), cancellationToken).ConfigureAwait(false);
        await RefuseUnsupportedAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false);

        using var script = new DumpScriptWriter(path, "-- DbMigration built-in PostgreSQL dump. Restore with Restore-MigrationBackup, or run it with psql -f into an empty database.");
        await WriteDatabaseLevelAsync(npgsql, transaction, script, cancellationToken).ConfigureAwait(false);
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
                             FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c' AND c.convalidated), '')
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'd' AND {UserSchemas} AND {NotFromExtension("t.oid")} ORDER BY t.oid
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        // A SQL-standard body (BEGIN ATOMIC, PostgreSQL 14+) is resolved when it is created, unlike a quoted one: a
        // function whose body reads tables comes after them, and one whose body reads a view after the views.
        string Reads(string relkinds) => npgsql.PostgreSqlVersion.Major >= 14
            ? $"p.prosqlbody IS NOT NULL AND EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class r ON r.oid = d.refobjid WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_class'::regclass AND r.relkind IN ({relkinds}))"
            : "false";
        string Functions(string which) => $"""
            SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.prokind IN ('f', 'p') AND {UserSchemas} AND {NotFromExtension("p.oid")} AND {which} ORDER BY p.oid
            """;
        var readsViews = Reads("'v', 'm'");
        var readsTablesOnly = $"({Reads("'r', 'p', 'f'")}) AND NOT ({readsViews})";
        foreach (var statement in await Strings(npgsql, transaction, Functions($"NOT ({Reads("'r', 'p', 'f', 'v', 'm'")})"), cancellationToken).ConfigureAwait(false))
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

        foreach (var statement in await Strings(npgsql, transaction, Functions(readsTablesOnly), cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
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

        // A domain check added NOT VALID may fail rows already stored: CREATE DOMAIN cannot say NOT VALID, and the
        // check, which COPY would apply, comes after the rows.
        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT format('ALTER DOMAIN %I.%I ADD CONSTRAINT %I ', n.nspname, t.typname, c.conname) || pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE c.contype = 'c' AND NOT c.convalidated AND {UserSchemas} AND {NotFromExtension("t.oid")} ORDER BY c.oid
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

        foreach (var statement in await Strings(npgsql, transaction, TableSettings(npgsql.PostgreSqlVersion.Major), cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await ViewsInDependencyOrderAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        // A view's column default applies to rows inserted through it.
        foreach (var statement in await Strings(npgsql, transaction, $"""
            SELECT format('ALTER VIEW %I.%I ALTER COLUMN %I SET DEFAULT ', n.nspname, c.relname, a.attname) || pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
            WHERE c.relkind = 'v' AND {UserSchemas} AND {NotFromExtension("c.oid")} ORDER BY c.oid, a.attnum
            """, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, Functions(readsViews), cancellationToken).ConfigureAwait(false))
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

        foreach (var statement in await Strings(npgsql, transaction, TriggerStates, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await Strings(npgsql, transaction, Comments, cancellationToken).ConfigureAwait(false))
        {
            script.Statement(statement);
        }

        foreach (var statement in await OwnersAndPrivilegesAsync(npgsql, transaction, cancellationToken).ConfigureAwait(false))
        {
            script.Privilege(statement);
        }

        await script.FlushAsync(cancellationToken).ConfigureAwait(false);
        await Execute(npgsql, transaction, "SET LOCAL search_path TO DEFAULT", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// COMMENT ON every object the dump creates that carries one: schemas, tables, views, sequences, indexes,
    /// columns, functions, types, constraints and triggers (the public schema's built-in comment excepted).
    /// </summary>
    private static readonly string Comments = $"""
        SELECT format('COMMENT ON %s IS %L', o.target, d.description)
        FROM (
            SELECT format('SCHEMA %I', n.nspname) AS target, n.oid AS objoid, 'pg_namespace'::regclass AS classoid, 0 AS objsubid
            FROM pg_namespace n WHERE {UserSchemas} AND {NotFromExtension("n.oid")}
            UNION ALL
            SELECT format('%s %I.%I', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' ELSE 'TABLE' END, n.nspname, c.relname), c.oid, 'pg_class'::regclass, 0
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'S', 'i') AND {UserSchemas} AND {NotFromExtension("c.oid")}
            UNION ALL
            SELECT format('COLUMN %I.%I.%I', n.nspname, c.relname, a.attname), c.oid, 'pg_class'::regclass, a.attnum
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v') AND {UserSchemas} AND {NotFromExtension("c.oid")}
            UNION ALL
            SELECT format('%s %s', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure), p.oid, 'pg_proc'::regclass, 0
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND {UserSchemas} AND {NotFromExtension("p.oid")}
            UNION ALL
            SELECT format('%s %I.%I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname), t.oid, 'pg_type'::regclass, 0
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') AND {UserSchemas} AND {NotFromExtension("t.oid")}
            UNION ALL
            SELECT format('CONSTRAINT %I ON %I.%I', k.conname, n.nspname, c.relname), k.oid, 'pg_constraint'::regclass, 0
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {UserSchemas} AND {NotFromExtension("c.oid")}
            UNION ALL
            SELECT format('TRIGGER %I ON %I.%I', t.tgname, n.nspname, c.relname), t.oid, 'pg_trigger'::regclass, 0
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {UserSchemas}
        ) o
        JOIN pg_description d ON d.objoid = o.objoid AND d.classoid = o.classoid AND d.objsubid = o.objsubid
        WHERE NOT (o.target = 'SCHEMA public' AND d.description = 'standard public schema')
        ORDER BY o.classoid, o.objoid, o.objsubid
        """;

    /// <summary>
    /// Who owns each object, and who may use it: ALTER … OWNER TO, then for every object whose privileges differ
    /// from the defaults, REVOKE ALL from PUBLIC and the owner and GRANT back exactly what the catalog holds (as
    /// pg_dump does), column privileges, and ALTER DEFAULT PRIVILEGES for the objects roles create later. Grants
    /// are restored as made by each object's owner.
    /// </summary>
    private static async Task<List<string>> OwnersAndPrivilegesAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var statements = await Strings(connection, transaction, $"""
            SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, pg_get_userbyid(n.nspowner))
            FROM pg_namespace n WHERE {UserSchemas} AND {NotFromExtension("n.oid")}
            UNION ALL
            SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname), pg_get_userbyid(t.typowner))
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') AND {UserSchemas} AND {NotFromExtension("t.oid")}
            UNION ALL
            SELECT format('ALTER %s %s OWNER TO %I', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure, pg_get_userbyid(p.proowner))
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND {UserSchemas} AND {NotFromExtension("p.oid")}
            UNION ALL
            -- A sequence that belongs to a column follows its table's owner (and may not be given another).
            SELECT format('ALTER %s %I.%I OWNER TO %I', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname, pg_get_userbyid(c.relowner))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'v', 'S') AND {UserSchemas} AND {NotFromExtension("c.oid")}
              AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
            """, cancellationToken).ConfigureAwait(false);

        // Objects whose ACL is not the default (NULL): kind, name, owner, then one row per grantee and grant option
        // (none when every privilege was revoked).
        var acls = await Rows(connection, transaction, $"""
            WITH objects(kind, name, owner, acl) AS (
                SELECT 'SCHEMA', quote_ident(n.nspname), n.nspowner, n.nspacl
                FROM pg_namespace n WHERE n.nspacl IS NOT NULL AND {UserSchemas} AND {NotFromExtension("n.oid")}
                UNION ALL
                SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname), t.typowner, t.typacl
                FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typacl IS NOT NULL AND t.typtype IN ('e', 'd') AND {UserSchemas} AND {NotFromExtension("t.oid")}
                UNION ALL
                SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure::text, p.proowner, p.proacl
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proacl IS NOT NULL AND p.prokind IN ('f', 'p') AND {UserSchemas} AND {NotFromExtension("p.oid")}
                UNION ALL
                SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, format('%I.%I', n.nspname, c.relname), c.relowner, c.relacl
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'v', 'S') AND {UserSchemas} AND {NotFromExtension("c.oid")})
            SELECT o.kind, o.name, quote_ident(pg_get_userbyid(o.owner)), {Grantee},
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), a.is_grantable
            FROM objects o LEFT JOIN LATERAL aclexplode(o.acl) a ON true
            GROUP BY o.kind, o.name, o.owner, a.grantee, a.is_grantable
            ORDER BY o.kind, o.name, a.grantee, a.is_grantable
            """, cancellationToken).ConfigureAwait(false);
        foreach (var group in acls.GroupBy(r => ((string)r[0]!, (string)r[1]!, (string)r[2]!)))
        {
            var (kind, name, owner) = group.Key;
            statements.Add($"REVOKE ALL ON {kind} {name} FROM PUBLIC");
            statements.Add($"REVOKE ALL ON {kind} {name} FROM {owner}");
            statements.AddRange(group.Where(r => r[3] is not null).Select(r => Grant(string.Empty, r[4], $"{kind} {name}", r[3], r[5])));
        }

        statements.AddRange((await Rows(connection, transaction, $"""
            -- Each privilege carries its own column list: "SELECT (a), UPDATE (a)".
            SELECT format('TABLE %I.%I', n.nspname, c.relname), {Grantee}, string_agg(a.privilege_type || format(' (%I)', col.attname), ', ' ORDER BY col.attnum, a.privilege_type), a.is_grantable
            FROM pg_attribute col JOIN pg_class c ON c.oid = col.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL aclexplode(col.attacl) a
            WHERE col.attacl IS NOT NULL AND col.attnum > 0 AND NOT col.attisdropped AND c.relkind IN ('r', 'v') AND {UserSchemas} AND {NotFromExtension("c.oid")}
            GROUP BY n.nspname, c.relname, a.grantee, a.is_grantable
            ORDER BY n.nspname, c.relname, a.grantee, a.is_grantable
            """, cancellationToken).ConfigureAwait(false)).Select(r => Grant(string.Empty, r[2], (string)r[0]!, r[1], r[3])));

        // A role's defaults for everywhere replace the built-in ones (so those are revoked first); a schema's only add.
        var defaults = await Rows(connection, transaction, $"""
            SELECT quote_ident(pg_get_userbyid(d.defaclrole)), CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE quote_ident(n.nspname) END,
                   CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
                   {Grantee},
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), a.is_grantable
            FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
            LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true
            GROUP BY d.oid, d.defaclrole, d.defaclnamespace, n.nspname, d.defaclobjtype, a.grantee, a.is_grantable
            ORDER BY d.oid, a.grantee
            """, cancellationToken).ConfigureAwait(false);
        foreach (var group in defaults.GroupBy(r => ((string)r[0]!, r[1] as string, (string)r[2]!)))
        {
            var (role, schema, objects) = group.Key;
            var scope = $"ALTER DEFAULT PRIVILEGES FOR ROLE {role}{(schema is null ? string.Empty : " IN SCHEMA " + schema)}";
            if (schema is null)
            {
                statements.Add($"{scope} REVOKE ALL ON {objects} FROM PUBLIC");
                statements.Add($"{scope} REVOKE ALL ON {objects} FROM {role}");
            }

            statements.AddRange(group.Where(r => r[3] is not null).Select(r => Grant(scope + " ", r[4], objects, r[3], r[5])));
        }

        return statements;
    }

    /// <summary>An aclexplode row's grantee (alias a) as GRANT names it.</summary>
    private const string Grantee = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END";

    /// <summary>"[prefix]GRANT privileges ON target TO grantee [WITH GRANT OPTION]".</summary>
    private static string Grant(string prefix, object? privileges, string on, object? grantee, object? grantable) =>
        $"{prefix}GRANT {privileges} ON {on} TO {grantee}{(grantable is true ? " WITH GRANT OPTION" : string.Empty)}";

    /// <summary>
    /// The database's own properties, as pg_dump keeps them: owner, connection limit, settings (its own and per
    /// role), comment and grants. They name the backed-up database; a restore renames them to its target and
    /// applies them when it swaps the copy in.
    /// </summary>
    private static async Task WriteDatabaseLevelAsync(NpgsqlConnection connection, DbTransaction transaction, DumpScriptWriter script, CancellationToken cancellationToken)
    {
        var database = (await Rows(connection, transaction, """
            SELECT quote_ident(d.datname), quote_ident(pg_get_userbyid(d.datdba)), d.datconnlimit,
                   (SELECT s.description FROM pg_shdescription s WHERE s.objoid = d.oid AND s.classoid = 'pg_database'::regclass), d.datacl IS NOT NULL
            FROM pg_database d WHERE d.datname = current_database()
            """, cancellationToken).ConfigureAwait(false)).Single();
        var name = (string)database[0]!;
        var owner = (string)database[1]!;
        script.Database("name", name);
        script.Database("owner", $"ALTER DATABASE {name} OWNER TO {owner}");
        if (database[2] is int limit && limit != -1)
        {
            script.Database("setting", string.Create(CultureInfo.InvariantCulture, $"ALTER DATABASE {name} CONNECTION LIMIT {limit}"));
        }

        foreach (var row in await Rows(connection, transaction, """
            SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE quote_ident(pg_get_userbyid(s.setrole)) END, s.setconfig
            FROM pg_db_role_setting s WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY s.setrole
            """, cancellationToken).ConfigureAwait(false))
        {
            var scope = row[0] is string role ? $"ALTER ROLE {role} IN DATABASE {name}" : $"ALTER DATABASE {name}";
            foreach (var assignment in (string[])row[1]!)
            {
                script.Database("setting", SetStatement(scope, assignment));
            }
        }

        if (database[3] is string comment)
        {
            script.Database("setting", $"COMMENT ON DATABASE {name} IS {Literal(comment)}");
        }

        if (database[4] is true)
        {
            script.Database("setting", $"REVOKE ALL ON DATABASE {name} FROM PUBLIC");
            script.Database("setting", $"REVOKE ALL ON DATABASE {name} FROM {owner}");
            foreach (var grant in await Rows(connection, transaction, $"""
                SELECT {Grantee}, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), a.is_grantable
                FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a WHERE d.datname = current_database()
                GROUP BY a.grantee, a.is_grantable ORDER BY a.grantee, a.is_grantable
                """, cancellationToken).ConfigureAwait(false))
            {
                script.Database("setting", Grant(string.Empty, grant[1], $"DATABASE {name}", grant[0], grant[2]));
            }
        }
    }

    /// <summary>"ALTER DATABASE d SET name TO …" from a stored "name=value"; list settings such as search_path keep their elements apart.</summary>
    internal static string SetStatement(string scope, string assignment)
    {
        var equals = assignment.IndexOf('=', StringComparison.Ordinal);
        var name = assignment[..equals];
        var value = assignment[(equals + 1)..];
        var isList = name.ToLowerInvariant() is "search_path" or "temp_tablespaces" or "session_preload_libraries" or "local_preload_libraries" or "shared_preload_libraries";
        var rendered = isList ? string.Join(", ", SplitList(value).Select(Literal)) : Literal(value);
        var quotedName = name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') ? name : QuoteIdentifier(name);
        return $"{scope} SET {quotedName} TO {rendered}";
    }

    /// <summary>A stored list setting's elements: split at commas outside double quotes, each unquoted.</summary>
    private static IEnumerable<string> SplitList(string value)
    {
        var element = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '"')
            {
                if (quoted && i + 1 < value.Length && value[i + 1] == '"')
                {
                    element.Append('"');
                    i++;
                }
                else
                {
                    quoted = !quoted;
                }
            }
            else if (c == ',' && !quoted)
            {
                yield return element.ToString().Trim();
                element.Clear();
            }
            else if (quoted || !char.IsWhiteSpace(c) || element.Length > 0)
            {
                element.Append(c);
            }
        }

        yield return quoted ? element.ToString() : element.ToString().Trim();
    }

    /// <summary>
    /// Runs a built-in dump into an empty database, in one transaction: it either loads whole or not at all. An
    /// owner or privilege this server cannot give (the role is missing, or this role may not act as it) is skipped
    /// and named in a warning; the restoring role then keeps the object, as pg_restore --no-owner would.
    /// </summary>
    /// <returns>The backed-up database's own statements, for the swap to apply under the target's name.</returns>
    public static async Task<PostgreSqlDatabaseSettings.Script> RestoreAsync(DbConnection connection, string path, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var npgsql = (NpgsqlConnection)connection;
        var total = Math.Max(1, new FileInfo(path).Length);
        var skipped = new List<string>();
        using var script = new DumpScriptReader(path);
        await using (var transaction = await npgsql.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            long copied = 0;
            string? sql;
            while ((sql = script.NextStatement(out var isCopy, out var isPrivilege)) is not null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    if (isPrivilege)
                    {
                        await Execute(npgsql, transaction, "SAVEPOINT dbm_privilege", cancellationToken).ConfigureAwait(false);
                        try
                        {
                            await Execute(npgsql, transaction, sql, cancellationToken).ConfigureAwait(false);
                        }
                        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedObject or PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.InvalidGrantOperation)
                        {
                            await Execute(npgsql, transaction, "ROLLBACK TO SAVEPOINT dbm_privilege", cancellationToken).ConfigureAwait(false);
                            skipped.Add($"{sql} ({ex.MessageText})");
                        }

                        await Execute(npgsql, transaction, "RELEASE SAVEPOINT dbm_privilege", cancellationToken).ConfigureAwait(false);
                        continue;
                    }

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

        if (skipped.Count > 0)
        {
            progress.Warning($"{skipped.Count} owner or privilege statement(s) of the backup were not restored, so the restoring role keeps those objects or rights: {string.Join("; ", skipped.Take(5))}{(skipped.Count > 5 ? $"; and {skipped.Count - 5} more" : string.Empty)}.");
        }

        // The types this load created are new to the connection pool's type cache.
        await npgsql.ReloadTypesAsync(cancellationToken).ConfigureAwait(false);
        return new PostgreSqlDatabaseSettings.Script(script.DatabaseName, script.DatabaseOwner, script.DatabaseSettings, string.Empty);
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

    /// <summary>
    /// What a table's definition leaves out and a restore must keep: per-column options, compression, statistics
    /// targets and storage, index column statistics targets, the replica identity (logical replication needs it), the
    /// index CLUSTER uses, extended statistics, and row-level security switched on (with no policy it denies other
    /// roles every row; policies themselves are refused).
    /// </summary>
    private static string TableSettings(int serverMajor) => $"""
        SELECT format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET (%s)', n.nspname, c.relname, a.attname, array_to_string(a.attoptions, ', '))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND a.attnum > 0 AND NOT a.attisdropped AND a.attoptions IS NOT NULL
        UNION ALL
        {(serverMajor >= 14 ? $"""
        SELECT format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET COMPRESSION %s', n.nspname, c.relname, a.attname, CASE a.attcompression WHEN 'l' THEN 'lz4' ELSE 'pglz' END)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND a.attnum > 0 AND NOT a.attisdropped AND a.attcompression IN ('p', 'l')
        UNION ALL
        """ : string.Empty)}
        SELECT format('ALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s', n.nspname, x.relname, a.attnum, a.attstattarget)
        FROM pg_attribute a JOIN pg_class x ON x.oid = a.attrelid JOIN pg_index i ON i.indexrelid = x.oid JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = x.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND a.attnum > 0 AND a.attstattarget >= 0
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STATISTICS %s', n.nspname, c.relname, a.attname, a.attstattarget)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STORAGE %s', n.nspname, c.relname, a.attname,
                      CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END)
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND a.attnum > 0 AND NOT a.attisdropped AND a.attstorage <> t.typstorage
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I REPLICA IDENTITY %s', n.nspname, c.relname, CASE c.relreplident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND c.relreplident IN ('f', 'n')
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I REPLICA IDENTITY USING INDEX %I', n.nspname, c.relname, x.relname)
        FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND i.indisreplident AND c.relreplident = 'i'
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I CLUSTER ON %I', n.nspname, c.relname, x.relname)
        FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND i.indisclustered
        UNION ALL
        SELECT pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
        WHERE {UserSchemas} AND {NotFromExtension("s.oid")}
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I ENABLE ROW LEVEL SECURITY', n.nspname, c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND c.relrowsecurity
        UNION ALL
        SELECT format('ALTER TABLE ONLY %I.%I FORCE ROW LEVEL SECURITY', n.nspname, c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {UserSchemas} AND {NotFromExtension("c.oid")} AND c.relforcerowsecurity
        """;

    /// <summary>Triggers switched off, or set to fire only for (or also for) replication, as ALTER TABLE left them.</summary>
    private static readonly string TriggerStates = $"""
        SELECT format('ALTER TABLE ONLY %I.%I %s TRIGGER %I', n.nspname, c.relname,
                      CASE t.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, t.tgname)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {UserSchemas} AND t.tgenabled IN ('D', 'R', 'A') ORDER BY t.oid
        """;

    private sealed record DumpTable(string Name, string CreateSql, string CopyColumns);

    /// <summary>A relation's storage options (fillfactor, autovacuum, a view's security_barrier and check_option) as a WITH clause, or ''.</summary>
    private const string WithOptions = "COALESCE(' WITH (' || (SELECT string_agg(quote_ident(split_part(o, '=', 1)) || ' = ' || quote_literal(substr(o, strpos(o, '=') + 1)), ', ') FROM unnest(c.reloptions) o) || ')', '')";

    private static async Task<List<DumpTable>> TablesAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var rows = await Rows(connection, transaction, $"""
            SELECT c.oid::bigint, format('%I.%I', n.nspname, c.relname), c.relpersistence = 'u', quote_ident(a.attname),
                   format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
                   CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                        THEN (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END,
                   CASE WHEN a.attidentity IN ('a', 'd') THEN (
                        SELECT format(' (SEQUENCE NAME %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s)', q.name, s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END)
                        FROM (SELECT pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS name) q
                        JOIN pg_sequence s ON s.seqrelid = q.name::regclass) END,
                   {WithOptions}
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
                    // The sequence keeps its name and options, so grants on it and its next values carry over.
                    column.Append(identity == 'a' ? " GENERATED ALWAYS AS IDENTITY" : " GENERATED BY DEFAULT AS IDENTITY").Append(r[10] as string);
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
            tables.Add(new DumpTable(name, $"CREATE {unlogged}TABLE {name} (\n    {string.Join(",\n    ", definitions)}\n){first[11]}", string.Join(", ", copyColumns)));
        }

        return tables;
    }

    /// <summary>Views after every view they select from (pg_rewrite dependencies), oldest first otherwise.</summary>
    private static async Task<List<string>> ViewsInDependencyOrderAsync(NpgsqlConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var views = (await Rows(connection, transaction, $"""
            SELECT c.oid::bigint, format('CREATE VIEW %I.%I', n.nspname, c.relname) || {WithOptions} || ' AS ' || pg_get_viewdef(c.oid)
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
            UNION ALL
            SELECT count(*) || ' large object(s)' FROM pg_largeobject_metadata HAVING count(*) > 0
            UNION ALL
            SELECT 'publication ' || p.pubname FROM pg_publication p
            UNION ALL
            SELECT 'event trigger ' || t.evtname FROM pg_event_trigger t WHERE {NotFromExtension("t.oid")}
            UNION ALL
            SELECT 'collation ' || format('%I.%I', n.nspname, co.collname) FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE {UserSchemas} AND {NotFromExtension("co.oid")}
            UNION ALL
            SELECT 'text search configuration ' || format('%I.%I', n.nspname, t.cfgname) FROM pg_ts_config t JOIN pg_namespace n ON n.oid = t.cfgnamespace WHERE {UserSchemas} AND {NotFromExtension("t.oid")}
            UNION ALL
            SELECT 'text search dictionary ' || format('%I.%I', n.nspname, t.dictname) FROM pg_ts_dict t JOIN pg_namespace n ON n.oid = t.dictnamespace WHERE {UserSchemas} AND {NotFromExtension("t.oid")}
            UNION ALL
            SELECT 'operator ' || format('%I.%s', n.nspname, o.oprname) FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE {UserSchemas} AND {NotFromExtension("o.oid")}
            UNION ALL
            SELECT 'cast ' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) FROM pg_cast c WHERE c.oid >= 16384 AND {NotFromExtension("c.oid")}
            UNION ALL
            SELECT 'foreign server ' || s.srvname FROM pg_foreign_server s WHERE {NotFromExtension("s.oid")}
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
        // A function with a BEGIN ATOMIC body holds semicolons.
        Providers.PostgreSql.PostgreSqlProvider.AsWritten(command);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<List<string>> Strings(NpgsqlConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken) =>
        (await Rows(connection, transaction, sql, cancellationToken).ConfigureAwait(false)).Select(r => (string)r[0]!).ToList();

    private static Task<List<object?[]>> Rows(NpgsqlConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken) =>
        connection.ReadRowsAsync(sql, transaction, cancellationToken);
}
