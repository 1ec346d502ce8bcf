using System.Data.Common;
using DbMigration.Errors;
using DbMigration.Providers;

namespace DbMigration.Timezone;

/// <summary>
/// PostgreSQL will not change the type of a column that a view reads. The views reading a converted column, directly
/// or through other views, are dropped for the ALTER and created again as they were, in the same transaction: the
/// definition and options, the owner, grants on the view and its columns, comments, column defaults, rules and
/// INSTEAD OF triggers. What cannot be carried over that way (a materialized view, a rule on a table, a generated
/// column) is refused before the run records anything.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    /// <summary>A dependent view: how deep it sits (1 reads the table), how to create it, and what to restore after.</summary>
    private sealed record SavedView(uint Oid, string Name, char Kind, int Depth, string Create, List<string> Restore);

    private static async Task AlterKeepingViewsAsync(DbConnection connection, DbTransaction transaction, string table, IReadOnlyList<string> columns, string alter, CancellationToken cancellationToken)
    {
        var views = await DependentViewsAsync(connection, transaction, table, columns, cancellationToken).ConfigureAwait(false);
        var indexes = await ExpressionIndexesAsync(connection, transaction, table, columns, cancellationToken).ConfigureAwait(false);
        foreach (var view in views.OrderByDescending(v => v.Depth))
        {
            await connection.ExecuteAsync($"DROP VIEW {view.Name}", cancellationToken, transaction).ConfigureAwait(false);
        }

        try
        {
            await using var command = connection.CreateCommand(alter, transaction, 0);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex) when (ex.SqlState == "42P17" && indexes.Count > 0)
        {
            // "functions in index expression must be marked IMMUTABLE": say which index, and what to do.
            throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation, IndexNotImmutableMessage(table, columns, indexes), ex)
            { Sql = alter };
        }
        catch (DbException ex) when (ex.SqlState == "0A000")
        {
            // "cannot alter type of a column used by …": something else reads the column (a SQL-standard function body).
            throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                $"{table} ({string.Join(", ", columns)}): PostgreSQL refused to change the column's type: {(ex as Npgsql.PostgresException)?.MessageText ?? ex.Message}. Nothing was changed. Drop what reads the column, convert, and create it again.", ex)
            { Sql = alter };
        }

        foreach (var view in views.OrderBy(v => v.Depth))
        {
            await connection.ExecuteAsync(view.Create, cancellationToken, transaction).ConfigureAwait(false);
            foreach (var statement in view.Restore)
            {
                await connection.ExecuteAsync(statement, cancellationToken, transaction).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// What keeps PostgreSQL from changing the columns' type that dropping and recreating plain views cannot solve:
    /// materialized views and rules reading them (directly or through views), generated columns computed from them,
    /// and functions or procedures whose SQL-standard body reads them.
    /// </summary>
    private static async Task<List<string>> PostgresBlockersAsync(DbConnection connection, string table, IReadOnlyList<string> columns, CancellationToken cancellationToken)
    {
        var blockers = (await DependentViewsAsync(connection, null, table, columns, cancellationToken, describeOnly: true).ConfigureAwait(false))
            .Where(v => v.Kind != 'v')
            .Select(v => (v.Kind == 'm' ? $"materialized view {v.Name}" : $"a rule on {v.Name}") + (columns.Count == 1 ? " reads it" : " reads them"))
            .ToList();
        // Generated columns computed from the columns, functions or procedures whose SQL-standard body (BEGIN
        // ATOMIC) reads them, row security policies that read them, triggers that name them (UPDATE OF, WHEN), and
        // foreign keys on either side: the values would no longer match the other side's until both changed.
        await using var command = connection.CreateCommand("""
            SELECT DISTINCT 'generated column ' || g.attname || ' is computed from ' || a.attname
            FROM pg_attrdef ad
            JOIN pg_attribute g ON g.attrelid = ad.adrelid AND g.attnum = ad.adnum AND g.attgenerated <> ''
            JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refobjid = ad.adrelid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE ad.adrelid = @table::regclass AND a.attname = ANY(@columns)
            UNION
            SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END || p.oid::regprocedure::text || '''s BEGIN ATOMIC body reads ' || a.attname
            FROM pg_depend d
            JOIN pg_proc p ON p.oid = d.objid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = @table::regclass AND a.attname = ANY(@columns)
            UNION
            SELECT 'policy ' || pol.polname || ' reads ' || a.attname
            FROM pg_depend d
            JOIN pg_policy pol ON pol.oid = d.objid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_policy'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = @table::regclass AND a.attname = ANY(@columns)
            UNION
            SELECT 'trigger ' || t.tgname || ' names ' || a.attname || ' (in UPDATE OF or its WHEN condition)'
            FROM pg_depend d
            JOIN pg_trigger t ON t.oid = d.objid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_trigger'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = @table::regclass AND a.attname = ANY(@columns)
            UNION
            SELECT 'foreign key ' || con.conname || ' of ' || con.conrelid::regclass::text || ' references ' || a.attname
            FROM pg_constraint con
            JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = ANY(con.confkey)
            WHERE con.contype = 'f' AND con.confrelid = @table::regclass AND a.attname = ANY(@columns)
            UNION
            SELECT 'foreign key ' || con.conname || ' makes ' || a.attname || ' reference ' || con.confrelid::regclass::text
            FROM pg_constraint con
            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)
            WHERE con.contype = 'f' AND con.conrelid = @table::regclass AND a.attname = ANY(@columns)
            ORDER BY 1
            """).AddParameter("@table", table).AddParameter("@columns", columns.ToArray());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            blockers.Add(reader.GetString(0));
        }

        return blockers;
    }

    private static string IndexNotImmutableMessage(string table, IReadOnlyList<string> columns, IReadOnlyList<string> indexes) =>
        $"{table} ({string.Join(", ", columns)}): index {string.Join(", ", indexes)} computes an expression or tests a condition over the column that is not immutable for timestamptz (its result would depend on the session's time zone), so PostgreSQL cannot rebuild it. Nothing was changed. Drop the index, convert, and create it again over an expression such as (column AT TIME ZONE 'UTC'), or with a condition against a timestamptz constant.";

    /// <summary>
    /// The expression and partial indexes over the columns that PostgreSQL could not rebuild once they are
    /// timestamptz, found before anything changes: the type is changed on an empty temporary copy of the table and
    /// its indexes, in a transaction that is rolled back. Empty when there are none, or when the probe cannot run
    /// (no right to create temporary tables); the conversion then says so itself.
    /// </summary>
    private static async Task<IReadOnlyList<string>> IndexesNotImmutableAsync(IDatabaseProvider provider, DbConnection connection, string table, IReadOnlyList<string> columns, CancellationToken cancellationToken)
    {
        var indexes = await ExpressionIndexesAsync(connection, null, table, columns, cancellationToken).ConfigureAwait(false);
        if (indexes.Count == 0)
        {
            return indexes;
        }

        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await connection.ExecuteAsync($"CREATE TEMP TABLE dbmigration_tz_probe (LIKE {table} INCLUDING INDEXES) ON COMMIT DROP", cancellationToken, transaction).ConfigureAwait(false);
            var alters = columns.Select(c => $"ALTER COLUMN {provider.QuoteIdentifier(c)} TYPE timestamptz USING {provider.QuoteIdentifier(c)} AT TIME ZONE 'UTC'");
            await connection.ExecuteAsync($"ALTER TABLE pg_temp.dbmigration_tz_probe {string.Join(", ", alters)}", cancellationToken, transaction).ConfigureAwait(false);
            return [];
        }
        catch (DbException ex) when (ex.SqlState == "42P17")
        {
            return indexes;
        }
        catch (DbException)
        {
            return [];
        }
        finally
        {
            await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Expression and partial indexes on the table that read one of the columns.</summary>
    private static async Task<List<string>> ExpressionIndexesAsync(DbConnection connection, DbTransaction? transaction, string table, IReadOnlyList<string> columns, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await using var command = connection.CreateCommand("""
            SELECT DISTINCT i.indexrelid::regclass::text
            FROM pg_index i
            JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE i.indrelid = @table::regclass AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AND a.attname = ANY(@columns)
            """, transaction).AddParameter("@table", table).AddParameter("@columns", columns.ToArray());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>The views (and other relations with rules) that read the columns, directly or through views, with what recreates each.</summary>
    private static async Task<List<SavedView>> DependentViewsAsync(DbConnection connection, DbTransaction? transaction, string table, IReadOnlyList<string> columns, CancellationToken cancellationToken, bool describeOnly = false)
    {
        var found = new List<(uint Oid, string Name, char Kind, int Depth, string Create)>();
        await using (var command = connection.CreateCommand("""
            WITH RECURSIVE reading(oid, depth) AS (
                SELECT r.ev_class, 1
                FROM pg_depend d
                JOIN pg_rewrite r ON r.oid = d.objid
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = @table::regclass AND a.attname = ANY(@columns) AND r.ev_class <> d.refobjid
                UNION ALL
                SELECT r.ev_class, reading.depth + 1
                FROM reading
                JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.refobjid = reading.oid
                JOIN pg_rewrite r ON r.oid = d.objid
                WHERE r.ev_class <> reading.oid AND reading.depth < 64
            )
            SELECT c.oid, c.oid::regclass::text, c.relkind::text, max(reading.depth),
                   CASE WHEN c.relkind = 'v' THEN format('CREATE VIEW %s%s AS %s', c.oid::regclass,
                       CASE WHEN c.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END,
                       pg_get_viewdef(c.oid)) END
            FROM reading JOIN pg_class c ON c.oid = reading.oid
            GROUP BY c.oid
            """, transaction).AddParameter("@table", table).AddParameter("@columns", columns.ToArray()))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                found.Add((System.Convert.ToUInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), reader.GetString(1), reader.GetString(2)[0], reader.GetInt32(3), reader.IsDBNull(4) ? string.Empty : reader.GetString(4)));
            }
        }

        var views = new List<SavedView>();
        foreach (var (oid, name, kind, depth, create) in found)
        {
            views.Add(new SavedView(oid, name, kind, depth, create, describeOnly || kind != 'v' ? [] : await RestoreStatementsAsync(connection, transaction, oid, cancellationToken).ConfigureAwait(false)));
        }

        return views;
    }

    /// <summary>What CREATE VIEW does not bring back, as statements: owner, grants, comments, column defaults, rules, triggers.</summary>
    private static async Task<List<string>> RestoreStatementsAsync(DbConnection connection, DbTransaction? transaction, uint oid, CancellationToken cancellationToken)
    {
        var statements = new List<string>();
        await using var command = connection.CreateCommand("""
            SELECT 1, format('ALTER VIEW %s OWNER TO %I', c.oid::regclass, pg_get_userbyid(c.relowner)) FROM pg_class c WHERE c.oid = @oid::oid
            UNION ALL
            SELECT 2, format('GRANT %s ON %s TO %s%s', g.privilege_type, c.oid::regclass,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                FROM pg_class c, aclexplode(c.relacl) g WHERE c.oid = @oid::oid AND g.grantee <> c.relowner
            UNION ALL
            SELECT 3, format('GRANT %s (%I) ON %s TO %s%s', g.privilege_type, a.attname, a.attrelid::regclass,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                FROM pg_attribute a, aclexplode(a.attacl) g WHERE a.attrelid = @oid::oid AND a.attnum > 0 AND a.attacl IS NOT NULL
            UNION ALL
            SELECT 4, format('COMMENT ON VIEW %s IS %L', @oid::oid::regclass, obj_description(@oid::oid, 'pg_class')) WHERE obj_description(@oid::oid, 'pg_class') IS NOT NULL
            UNION ALL
            SELECT 5, format('COMMENT ON COLUMN %s.%I IS %L', a.attrelid::regclass, a.attname, col_description(a.attrelid, a.attnum))
                FROM pg_attribute a WHERE a.attrelid = @oid::oid AND a.attnum > 0 AND col_description(a.attrelid, a.attnum) IS NOT NULL
            UNION ALL
            SELECT 6, format('ALTER VIEW %s ALTER COLUMN %I SET DEFAULT %s', ad.adrelid::regclass, a.attname, pg_get_expr(ad.adbin, ad.adrelid))
                FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum WHERE ad.adrelid = @oid::oid
            UNION ALL
            SELECT 7, pg_get_ruledef(r.oid) FROM pg_rewrite r WHERE r.ev_class = @oid::oid AND r.rulename <> '_RETURN'
            UNION ALL
            SELECT 8, pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgrelid = @oid::oid AND NOT t.tgisinternal
            ORDER BY 1
            """, transaction).AddParameter("@oid", (long)oid);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            statements.Add(reader.GetString(1));
        }

        return statements;
    }
}
