using System.Globalization;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.PowerShell.Commands;
using DbMigration.Providers;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>
/// DbMigration's built-in logical dumps, used when pg_dump or mariadb-dump is missing: backed up, verified by
/// restoring, and restored with every schema object working again (keys, checks, defaults, identity values,
/// generated columns, indexes, views on views, routines, triggers) and every value byte for byte.
/// </summary>
public abstract class BuiltInDumpTests(IEngineUnderTest engine) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    protected string Repository => _dir.File("backups");

    /// <summary>Statements, run one at a time, that build the rich schema described in each engine's class.</summary>
    protected abstract IReadOnlyList<string> Schema { get; }

    /// <summary>An object the built-in dump refuses, and the word its error names it by.</summary>
    protected abstract (string Sql, string Named) Unsupported { get; }

    /// <summary>Inserts a row without an id; the identity or AUTO_INCREMENT value must continue after the restored ones.</summary>
    protected abstract string InsertWithoutId { get; }

    protected abstract string BuiltInFormat { get; }

    protected static async Task ExecuteAsync(DatabaseTarget target, params string[] statements)
    {
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        foreach (var sql in statements)
        {
            await connection.ExecuteAsync(sql, CancellationToken.None);
        }
    }

    protected static async Task<object?> ScalarAsync(DatabaseTarget target, string sql)
    {
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var command = connection.CreateCommand(sql);
        var value = await command.ExecuteScalarAsync(CancellationToken.None);
        return value is DBNull ? null : value;
    }

    protected static long Long(object? value) => Convert.ToInt64(value, CultureInfo.InvariantCulture);

    /// <summary>A built-in backup of <paramref name="target"/>, then <paramref name="drop"/>, then a restore of it that reports no error.</summary>
    protected async Task BackUpDropAndRestoreAsync(DatabaseTarget target, params string[] drop)
    {
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn }, null, CancellationToken.None);
        await ExecuteAsync(target, drop);
        var restore = new RecordingHost();
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
    }

    private async Task<DatabaseTarget> SeededAsync()
    {
        var target = await engine.CreateDatabaseAsync();
        await ExecuteAsync(target, [.. Schema]);
        return target;
    }

    [Fact]
    public async Task Without_the_dump_tool_a_built_in_dump_is_taken_verified_and_restored_with_every_object_working()
    {
        var target = await SeededAsync();
        BackupInfo backup;
        var host = new RecordingHost(_dir.Path);
        using (ExternalTool.HideAll())
        {
            new BackupDatabaseCommand { Database = target, Path = Repository, Compress = BackupCompression.Fast, IncludeSqlDumpMode = true }.Invoke(host, CancellationToken.None);
        }

        Assert.Empty(host.Errors);
        Assert.Contains(host.Warnings, w => w.Contains("built-in logical dump", StringComparison.Ordinal));
        backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(BuiltInFormat, backup.Format);
        Assert.Contains(backup.Files, f => f.Kind == "sql-dump");
        Assert.Equal(3000, backup.Tables.Single(t => t.Table.EndsWith("item", StringComparison.Ordinal)).Rows);

        // Verification restores through DbMigration's own loader (no client tools) and compares content hashes.
        var verify = new RecordingHost();
        using (ExternalTool.HideAll())
        {
            new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(verify, CancellationToken.None);
        }

        var verification = Assert.Single(verify.ObjectsOf<BackupVerification>());
        Assert.True(verification.Status == VerificationStatus.Passed, verification.Message + "\n" + string.Join("\n", verification.Checks));

        await ExecuteAsync(target, "DELETE FROM item", "DROP VIEW expensive_summary", "DROP VIEW expensive");
        var restore = new RecordingHost(_dir.Path);
        using (ExternalTool.HideAll())
        {
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        }

        Assert.Empty(restore.Errors);
        Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);

        // Values, byte for byte.
        Assert.Equal(3000L, Long(await ScalarAsync(target, "SELECT COUNT(*) FROM item")));
        Assert.Equal("it's a \\ \"quoted\"\nline\ttab é🦀", await ScalarAsync(target, "SELECT note FROM item WHERE id = 1"));
        Assert.Equal(new byte[] { 0, 1, 39, 92, 10, 255 }, (byte[]?)await ScalarAsync(target, "SELECT payload FROM item WHERE id = 1"));
        Assert.Null(await ScalarAsync(target, "SELECT note FROM item WHERE id = 2"));
        Assert.Equal(0.1, Convert.ToDouble(await ScalarAsync(target, "SELECT ratio FROM item WHERE id = 3"), CultureInfo.InvariantCulture));
        Assert.Equal("12345.6789", Convert.ToString(await ScalarAsync(target, "SELECT price FROM item WHERE id = 3"), CultureInfo.InvariantCulture));
        Assert.Equal(2000L, Long(await ScalarAsync(target, "SELECT LENGTH(big) FROM item WHERE id = 4")));

        // Generated column, views (one on another), and the routine.
        Assert.Equal(6L, Long(await ScalarAsync(target, "SELECT doubled FROM item WHERE id = 3")));
        Assert.Equal(Long(await ScalarAsync(target, "SELECT COUNT(*) FROM item WHERE qty > 1500")), Long(await ScalarAsync(target, "SELECT total FROM expensive_summary")));
        Assert.Equal(42L, Long(await ScalarAsync(target, "SELECT add_one(41)")));

        // The identity/AUTO_INCREMENT value continues after the restored rows, and the trigger fires.
        await ExecuteAsync(target, InsertWithoutId);
        Assert.Equal(3001L, Long(await ScalarAsync(target, "SELECT MAX(id) FROM item")));
        Assert.Equal(1L, Long(await ScalarAsync(target, "SELECT COUNT(*) FROM audit WHERE item_id = 3001")));

        // Keys and checks are enforced again.
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ExecuteAsync(target, "INSERT INTO item (id, category_id, qty) VALUES (5000, 999, 1)"));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ExecuteAsync(target, "INSERT INTO item (id, category_id, qty) VALUES (5001, 1, -5)"));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ExecuteAsync(target, "INSERT INTO category (id, code) VALUES (99, 'a')"));
        Assert.Equal("new", await ScalarAsync(target, "SELECT CONCAT(status, '') FROM item WHERE id = 3001"));
        Assert.Equal("it's shipped", await ScalarAsync(target, "SELECT CONCAT(status, '') FROM item WHERE id = 3"));
    }

    [Fact]
    public async Task EngineTool_without_the_tool_fails_clearly_and_writes_nothing()
    {
        var target = await SeededAsync();
        var host = new RecordingHost(_dir.Path);
        DbMigrationException ex;
        using (ExternalTool.HideAll())
        {
            ex = Assert.Throws<DbMigrationException>(() =>
                new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool }.Invoke(host, CancellationToken.None));
        }

        Assert.Equal(ErrorIds.BackupToolFailed, ex.ErrorId);
        Assert.Contains("dump", ex.Message, StringComparison.Ordinal);
        Assert.Empty(new BackupRepository(Repository).List());
    }

    [Fact]
    public async Task An_object_the_built_in_dump_cannot_reproduce_is_refused_by_name()
    {
        var target = await SeededAsync();
        await ExecuteAsync(target, Unsupported.Sql);
        await AssertBuiltInDumpRefusesAsync(target, Unsupported.Named);
    }

    /// <summary>A built-in dump of <paramref name="target"/> fails with ToolFailed naming each of <paramref name="named"/>, and writes no backup.</summary>
    protected async Task AssertBuiltInDumpRefusesAsync(DatabaseTarget target, params string[] named)
    {
        var ex = await Assert.ThrowsAsync<DbMigrationException>(() => new BackupService().CreateAsync(new BackupRequest { Source = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn }, null, CancellationToken.None));
        Assert.Equal(ErrorIds.BackupToolFailed, ex.ErrorId);
        Assert.All(named, n => Assert.Contains(n, ex.Message, StringComparison.Ordinal));
        Assert.Empty(new BackupRepository(Repository).List());
    }

    [Fact]
    public async Task A_built_in_dump_cut_short_fails_verification_even_with_a_matching_checksum()
    {
        var target = await SeededAsync();
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn }, null, CancellationToken.None);
        var primary = Path.Combine(backup.Path, backup.Files.Single(f => f.Kind == "primary").Name);
        var text = await File.ReadAllTextAsync(primary);

        // Cut inside the data, then re-record the checksum so only the loader can notice.
        await File.WriteAllTextAsync(primary, text[..text.IndexOf("row 1500", StringComparison.Ordinal)]);
        var sha = await BackupStreams.Sha256Async(primary, CancellationToken.None);
        var doctored = backup with { Files = [.. backup.Files.Select(f => f.Kind == "primary" ? f with { Size = new FileInfo(primary).Length, Sha256 = sha } : f)] };
        BackupManifest.Write(backup.Path, doctored);

        var host = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = BackupManifest.Read(backup.Path), Server = target }.Invoke(host, CancellationToken.None);
        var verification = Assert.Single(host.ObjectsOf<BackupVerification>());
        Assert.Equal(VerificationStatus.Failed, verification.Status);
        Assert.Equal(ErrorIds.BackupCorrupt, verification.ErrorId);
        Assert.Contains("truncated", verification.Message, StringComparison.Ordinal);
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlBuiltInDumpTests(PostgresServer server) : BuiltInDumpTests(server)
{
    protected override string BuiltInFormat => PostgreSqlLogicalDump.Format;

    protected override string InsertWithoutId => "INSERT INTO item (category_id, qty) VALUES (1, 7)";

    protected override (string Sql, string Named) Unsupported => ("CREATE MATERIALIZED VIEW totals AS SELECT COUNT(*) AS n FROM item", "materialized view public.totals");

    /// <summary>Owners and ACLs (grantors included) of everything in schema app, one line per object, in a fixed order.</summary>
    private const string AppPrivileges = """
        SELECT string_agg(line, E'\n' ORDER BY line) FROM (
            SELECT 'schema ' || nspname || ' ' || pg_get_userbyid(nspowner) || ' ' || COALESCE(nspacl::text, '-') AS line FROM pg_namespace WHERE nspname = 'app'
            UNION ALL SELECT 'relation ' || relname || ' ' || pg_get_userbyid(relowner) || ' ' || COALESCE(relacl::text, '-') FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind IN ('r', 'v', 'S')
            UNION ALL SELECT 'column ' || (SELECT relname FROM pg_class WHERE oid = attrelid) || '.' || attname || ' ' || attacl::text FROM pg_attribute WHERE attacl IS NOT NULL AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'app'::regnamespace)
            UNION ALL SELECT 'function ' || proname || ' ' || pg_get_userbyid(proowner) || ' ' || COALESCE(proacl::text, '-') FROM pg_proc WHERE pronamespace = 'app'::regnamespace
            UNION ALL SELECT 'type ' || typname || ' ' || pg_get_userbyid(typowner) || ' ' || COALESCE(typacl::text, '-') FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype IN ('e', 'd')
            UNION ALL SELECT 'defaults ' || pg_get_userbyid(defaclrole) || ' ' || defaclobjtype::text || ' ' || defaclacl::text FROM pg_default_acl WHERE defaclnamespace = 'app'::regnamespace) s
        """;

    /// <summary>The database's own ACL, settings (its own and per role) and comment.</summary>
    private const string DatabasePrivileges = """
        SELECT concat_ws(E'\n',
            (SELECT datacl::text FROM pg_database WHERE datname = current_database()),
            (SELECT string_agg(COALESCE(pg_get_userbyid(NULLIF(setrole, 0)), '*') || ' ' || array_to_string(setconfig, ','), E'\n' ORDER BY setrole)
             FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())),
            (SELECT description FROM pg_shdescription WHERE classoid = 'pg_database'::regclass AND objoid = (SELECT oid FROM pg_database WHERE datname = current_database())))
        """;

    /// <summary>Every comment in the database, one line per object, in a fixed order.</summary>
    private const string AllComments = """
        SELECT string_agg(line, E'\n' ORDER BY line) FROM (
            SELECT c.classoid::regclass::text || ' ' || COALESCE(
                       (SELECT relname || COALESCE('.' || (SELECT attname FROM pg_attribute WHERE attrelid = c.objoid AND attnum = c.objsubid), '') FROM pg_class WHERE oid = c.objoid AND c.classoid = 'pg_class'::regclass),
                       (SELECT proname FROM pg_proc WHERE oid = c.objoid AND c.classoid = 'pg_proc'::regclass),
                       (SELECT typname FROM pg_type WHERE oid = c.objoid AND c.classoid = 'pg_type'::regclass),
                       (SELECT conname FROM pg_constraint WHERE oid = c.objoid AND c.classoid = 'pg_constraint'::regclass),
                       (SELECT tgname FROM pg_trigger WHERE oid = c.objoid AND c.classoid = 'pg_trigger'::regclass),
                       (SELECT nspname FROM pg_namespace WHERE oid = c.objoid AND c.classoid = 'pg_namespace'::regclass)) || ': ' || c.description AS line
            FROM pg_description c
            WHERE c.classoid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_namespace'::regclass)
              AND c.objoid >= 16384) s
        """;

    /// <summary>Storage and planner settings, replica identities, clustering, view options and extended statistics.</summary>
    private const string TableSettings = """
        SELECT string_agg(line, E'\n' ORDER BY line) FROM (
            SELECT 'relation ' || relname || ' ' || COALESCE(array_to_string(reloptions, ','), '-') || ' replica identity ' || relreplident::text AS line
            FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v')
            UNION ALL SELECT 'column ' || attrelid::regclass || '.' || attname || ' statistics ' || COALESCE(attstattarget::text, '-') || ' storage ' || attstorage::text
            FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r') AND attnum > 0 AND NOT attisdropped
            UNION ALL SELECT 'clustered on ' || indexrelid::regclass FROM pg_index WHERE indisclustered AND indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
            UNION ALL SELECT 'replica identity index ' || indexrelid::regclass FROM pg_index WHERE indisreplident AND indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
            UNION ALL SELECT 'statistics ' || pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxnamespace = 'public'::regnamespace
            UNION ALL SELECT 'column options ' || attrelid::regclass || '.' || attname || ' ' || array_to_string(attoptions, ',') || ' compression ' || attcompression::text
            FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r') AND attnum > 0 AND (attoptions IS NOT NULL OR attcompression <> '')
            UNION ALL SELECT 'index column ' || attrelid::regclass || '.' || attnum || ' statistics ' || attstattarget
            FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'i') AND attstattarget >= 0
            UNION ALL SELECT 'view default ' || adrelid::regclass || '.' || adnum || ' ' || pg_get_expr(adbin, adrelid)
            FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'v')) s
        """;

    [Fact]
    public async Task Storage_settings_replica_identities_clustering_view_options_and_defaults_and_extended_statistics_come_back()
    {
        // The built-in dump wrote each table's columns and constraints only: a restore dropped these without a word,
        // and a table published for logical replication with REPLICA IDENTITY FULL lost it.
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            "CREATE TABLE account (id integer PRIMARY KEY, email text NOT NULL, note text, balance numeric) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05)",
            "ALTER TABLE account ALTER COLUMN email SET STATISTICS 500",
            "ALTER TABLE account ALTER COLUMN note SET STORAGE EXTERNAL",
            "ALTER TABLE account REPLICA IDENTITY FULL",
            "CREATE INDEX ix_account_email ON account (email)",
            "ALTER TABLE account ALTER COLUMN email SET (n_distinct = -0.5)",
            "ALTER TABLE account ALTER COLUMN note SET COMPRESSION pglz",
            "CREATE INDEX ix_account_lower_email ON account (lower(email))",
            "ALTER INDEX ix_account_lower_email ALTER COLUMN 1 SET STATISTICS 300",
            "ALTER TABLE account CLUSTER ON ix_account_email",
            "CREATE TABLE ledger (id integer NOT NULL, account_id integer NOT NULL, amount numeric)",
            "CREATE UNIQUE INDEX ux_ledger ON ledger (id)",
            "ALTER TABLE ledger REPLICA IDENTITY USING INDEX ux_ledger",
            "ALTER TABLE ledger CLUSTER ON ux_ledger",
            "CREATE TABLE audit (id integer PRIMARY KEY, at timestamptz)",
            "ALTER TABLE audit REPLICA IDENTITY NOTHING",
            "CREATE STATISTICS account_stats (dependencies, ndistinct) ON email, balance FROM account",
            "CREATE VIEW rich_accounts WITH (security_barrier = true) AS SELECT id, email FROM account WHERE balance > 1000 WITH LOCAL CHECK OPTION",
            "CREATE VIEW account_emails AS SELECT id, email FROM account",
            "ALTER VIEW account_emails ALTER COLUMN email SET DEFAULT 'unknown@example.com'",
            "INSERT INTO account VALUES (1, 'a@example.com', 'x', 5000)", "INSERT INTO ledger VALUES (1, 1, 10)");
        var before = (string?)await ScalarAsync(target, TableSettings);
        Assert.Contains("relation account fillfactor=70,autovacuum_vacuum_scale_factor=0.05 replica identity f", before, StringComparison.Ordinal);
        Assert.Contains("relation rich_accounts security_barrier=true,check_option=local", before, StringComparison.Ordinal);
        Assert.Contains("column options account.email n_distinct=-0.5", before, StringComparison.Ordinal);
        Assert.Contains("index column ix_account_lower_email.1 statistics 300", before, StringComparison.Ordinal);
        Assert.Contains("view default account_emails.2 'unknown@example.com'::text", before, StringComparison.Ordinal);

        await BackUpDropAndRestoreAsync(target, "DROP VIEW rich_accounts, account_emails", "DROP TABLE account, ledger, audit");
        Assert.Equal(before, (string?)await ScalarAsync(target, TableSettings));
        // The view's check option is enforced again.
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ExecuteAsync(target, "INSERT INTO rich_accounts (id, email) VALUES (2, 'b@example.com')"));
    }

    [Fact]
    public async Task Publications_event_triggers_collations_text_search_operators_and_casts_are_refused_by_name()
    {
        // None of these was dumped or refused: a backup verified, and its restore came back without them.
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            "CREATE TABLE item (id integer PRIMARY KEY, name text)",
            "CREATE PUBLICATION item_changes FOR TABLE item",
            "CREATE FUNCTION no_drops() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'drop'; END$$",
            "CREATE EVENT TRIGGER watch_drops ON sql_drop EXECUTE FUNCTION no_drops()",
            "CREATE COLLATION german_phonebook (provider = icu, locale = 'de-u-co-phonebk')",
            "CREATE TEXT SEARCH CONFIGURATION simple_names (COPY = simple)",
            "CREATE FUNCTION text_eq_ci(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT lower($1) = lower($2)'",
            "CREATE OPERATOR ==~ (LEFTARG = text, RIGHTARG = text, FUNCTION = text_eq_ci)",
            "CREATE DOMAIN code AS text",
            "CREATE FUNCTION code_of(integer) RETURNS code LANGUAGE sql IMMUTABLE AS 'SELECT $1::text::code'",
            "CREATE CAST (integer AS code) WITH FUNCTION code_of(integer)");
        try
        {
            await AssertBuiltInDumpRefusesAsync(target, "publication item_changes", "event trigger watch_drops", "collation public.german_phonebook", "text search configuration public.simple_names", "operator public.==~", "cast integer AS public.code");
        }
        finally
        {
            // An event trigger fires for the whole database; the server's other tests drop databases of their own.
            await ExecuteAsync(target, "DROP EVENT TRIGGER watch_drops");
        }
    }

    [Fact]
    public async Task Disabled_and_replica_triggers_and_row_level_security_switched_on_come_back_as_they_were()
    {
        // A disabled trigger came back firing, and a table whose row-level security denied other roles every row
        // came back readable by them.
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            "CREATE TABLE secret (id integer PRIMARY KEY, note text)",
            "ALTER TABLE secret ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE secret FORCE ROW LEVEL SECURITY",
            "CREATE TABLE item (id integer PRIMARY KEY, touched integer NOT NULL DEFAULT 0)",
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END$$",
            "CREATE TRIGGER touch_off BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION touch()",
            "ALTER TABLE item DISABLE TRIGGER touch_off",
            "CREATE TRIGGER touch_replica BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION touch()",
            "ALTER TABLE item ENABLE REPLICA TRIGGER touch_replica",
            "CREATE TRIGGER touch_always BEFORE DELETE ON item FOR EACH ROW EXECUTE FUNCTION touch()",
            "ALTER TABLE item ENABLE ALWAYS TRIGGER touch_always",
            "INSERT INTO secret VALUES (1, 'x')", "INSERT INTO item VALUES (1, 0)");
        const string states = """
            SELECT string_agg(line, E'\n' ORDER BY line) FROM (
                SELECT 'trigger ' || tgname || ' ' || tgenabled::text AS line FROM pg_trigger WHERE tgrelid = 'item'::regclass AND NOT tgisinternal
                UNION ALL SELECT 'table ' || relname || ' ' || relrowsecurity::text || ' ' || relforcerowsecurity::text FROM pg_class WHERE oid IN ('secret'::regclass, 'item'::regclass)) s
            """;
        var before = (string?)await ScalarAsync(target, states);
        Assert.Equal("table item false false\ntable secret true true\ntrigger touch_always A\ntrigger touch_off D\ntrigger touch_replica R", before);

        await BackUpDropAndRestoreAsync(target, "DROP TABLE secret, item");
        Assert.Equal(before, (string?)await ScalarAsync(target, states));
        await ExecuteAsync(target, "UPDATE item SET id = 1");
        Assert.Equal(0L, Long(await ScalarAsync(target, "SELECT touched FROM item")));
    }

    [Fact]
    public async Task Checks_added_NOT_VALID_to_domains_and_tables_come_back_not_valid_over_rows_that_break_them()
    {
        // CREATE DOMAIN … CHECK (…) NOT VALID is a syntax error, so such a backup failed every restore.
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            "CREATE DOMAIN small AS integer CONSTRAINT positive CHECK (VALUE > 0)",
            "CREATE TABLE item (id integer PRIMARY KEY, n small, note text)",
            "INSERT INTO item VALUES (1, 5000, 'a long note')",
            "ALTER DOMAIN small ADD CONSTRAINT under_1000 CHECK (VALUE < 1000) NOT VALID",
            "ALTER TABLE item ADD CONSTRAINT short_note CHECK (length(note) < 5) NOT VALID");
        const string checks = "SELECT string_agg(conname || ' ' || convalidated::text, ', ' ORDER BY conname) FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace";
        var before = (string?)await ScalarAsync(target, checks);
        Assert.Equal("positive true, short_note false, under_1000 false", before);

        // The restore of a backup not yet verified verifies it in full first.
        await BackUpDropAndRestoreAsync(target, "DROP TABLE item", "DROP DOMAIN small");
        Assert.Equal(before, (string?)await ScalarAsync(target, checks));
        Assert.Equal(5000L, Long(await ScalarAsync(target, "SELECT n FROM item WHERE id = 1")));
        // Still enforced on new values.
        await Assert.ThrowsAnyAsync<Exception>(() => ExecuteAsync(target, "INSERT INTO item VALUES (2, 2000, 'b')"));
    }

    /// <summary>
    /// COPY wrote values as the database's settings show them: with DateStyle 'SQL, DMY' a date went out as
    /// 31/12/2024, which the restore refused (and 01/02/2024 a restore reading month first would take as January),
    /// and extra_float_digits = 0 rounded 0.30000000000000004 to 0.3. Every backup of such a database failed its
    /// verification. The dump now writes ISO dates and floats to their last digit whatever the database says.
    /// </summary>
    [Fact]
    public async Task A_database_set_to_show_dates_day_first_and_short_floats_is_dumped_exactly()
    {
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            $"ALTER DATABASE \"{target.Database}\" SET datestyle = 'SQL, DMY'",
            $"ALTER DATABASE \"{target.Database}\" SET extra_float_digits = 0",
            $"ALTER DATABASE \"{target.Database}\" SET intervalstyle = 'sql_standard'");
        // Sessions opened from now on take the settings.
        DbMigration.Providers.DatabaseProviders.For(target).ReleasePooledConnections(target);
        await ExecuteAsync(target,
            "CREATE TABLE m (id int PRIMARY KEY, d date, t timestamp, f float8, r real, i interval, ds date[], fs float8[])",
            "INSERT INTO m VALUES (1, '2024-02-01', '2024-02-01 13:14:15.123456', 0.1::float8 + 0.2::float8, 1.5000001, '1 year 2 mons -3 days 04:05:06', '{2024-02-01,2024-12-31}', '{0.30000000000000004}'), (2, '2024-12-31', '2024-12-31 23:59:59', 1e-320, 3.4e38, '-00:00:01', NULL, NULL)");
        // Each value's binary form, which no setting changes.
        const string Exact = """
            SELECT string_agg(concat_ws(',', id, encode(date_send(d), 'hex'), encode(timestamp_send(t), 'hex'), encode(float8send(f), 'hex'),
                encode(float4send(r), 'hex'), encode(interval_send(i), 'hex'), encode(array_send(ds), 'hex'), encode(array_send(fs), 'hex')), '|' ORDER BY id) FROM m
            """;
        var before = await ScalarAsync(target, Exact);
        Assert.Equal("31/12/2024", await ScalarAsync(target, "SELECT d::text FROM m WHERE id = 2"));
        Assert.Equal("0.3", await ScalarAsync(target, "SELECT f::text FROM m WHERE id = 1"));

        var host = new RecordingHost();
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        await ExecuteAsync(target, "UPDATE m SET d = NULL, f = NULL");
        var restore = new RecordingHost();
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.Equal(before, await ScalarAsync(target, Exact));
        Assert.Equal("SQL, DMY", await ScalarAsync(target, "SHOW datestyle"));
    }

    [Fact]
    public async Task Large_objects_are_refused_by_count_rather_than_left_out()
    {
        // The built-in dump copied the oid column but not the objects: verified, then restored without their bytes.
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target, "CREATE TABLE docs (id integer PRIMARY KEY, body oid)", "INSERT INTO docs VALUES (1, lo_from_bytea(0, 'hello'::bytea)), (2, lo_from_bytea(0, '\\x00ff'::bytea))");
        await AssertBuiltInDumpRefusesAsync(target, "2 large object(s)");
    }

    [Fact]
    public async Task Comments_on_every_kind_of_object_survive_the_built_in_dump()
    {
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target,
            "CREATE SCHEMA app", "COMMENT ON SCHEMA app IS 'the app''s own schema'",
            "CREATE TYPE app.mood AS ENUM ('sad', 'ok')", "COMMENT ON TYPE app.mood IS 'how it went'",
            "CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0)", "COMMENT ON DOMAIN app.posint IS 'above zero'",
            "CREATE TABLE app.orders (id integer PRIMARY KEY, qty app.posint, m app.mood, CONSTRAINT qty_small CHECK (qty < 1000))",
            "COMMENT ON TABLE app.orders IS 'orders; one per sale'", "COMMENT ON COLUMN app.orders.qty IS 'how many'",
            "COMMENT ON CONSTRAINT qty_small ON app.orders IS 'sanity'",
            "INSERT INTO app.orders VALUES (1, 5, 'ok')",
            "CREATE INDEX ix_qty ON app.orders (qty)", "COMMENT ON INDEX app.ix_qty IS 'for reports'",
            "CREATE SEQUENCE app.tickets", "COMMENT ON SEQUENCE app.tickets IS 'ticket numbers'",
            "CREATE VIEW app.big AS SELECT id FROM app.orders WHERE qty > 3", "COMMENT ON VIEW app.big IS 'large orders'",
            "COMMENT ON COLUMN app.big.id IS 'the order'",
            "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$", "COMMENT ON FUNCTION app.touch() IS 'does nothing'",
            "CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch()",
            "COMMENT ON TRIGGER orders_touch ON app.orders IS 'kept for later'");
        var before = (string?)await ScalarAsync(target, AllComments);
        Assert.Contains("orders; one per sale", before, StringComparison.Ordinal);
        Assert.Equal(12, before!.Split('\n').Length);

        var host = new RecordingHost(Repository);
        using (ExternalTool.HideAll())
        {
            new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        }

        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(BuiltInFormat, backup.Format);
        var copy = target.WithDatabase(target.Database + "_copy");
        using (ExternalTool.HideAll())
        {
            new RestoreMigrationBackupCommand { Database = copy, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(Repository), CancellationToken.None);
        }

        Assert.Equal(before, (string?)await ScalarAsync(copy, AllComments));
    }

    [Fact]
    public async Task Functions_with_BEGIN_ATOMIC_bodies_over_tables_and_views_are_dumped_verified_and_restored()
    {
        var target = await server.CreateDatabaseAsync();
        var setup = new RecordingHost();
        new InvokeDatabaseQueryCommand
        {
            Database = target,
            Query = """
                CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2); CREATE VIEW t_odd AS SELECT id FROM t WHERE id % 2 = 1;
                CREATE FUNCTION t_rows() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM public.t; END;
                CREATE FUNCTION t_odd_rows() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM public.t_odd; END;
                CREATE FUNCTION one() RETURNS int LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT 1; END;
                """,
        }.Invoke(setup, CancellationToken.None);
        Assert.Empty(setup.Errors);

        var host = new RecordingHost(Repository);
        using (ExternalTool.HideAll())
        {
            new BackupDatabaseCommand { Database = target, Path = Repository, VerifyMode = true }.Invoke(host, CancellationToken.None);
        }

        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(BuiltInFormat, backup.Format);
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        await ExecuteAsync(target, "DROP FUNCTION t_rows()", "DROP FUNCTION t_odd_rows()", "DROP FUNCTION one()");
        using (ExternalTool.HideAll())
        {
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(Repository), CancellationToken.None);
        }

        Assert.Equal(2L, Long(await ScalarAsync(target, "SELECT t_rows()")));
        Assert.Equal(1L, Long(await ScalarAsync(target, "SELECT t_odd_rows()")));
        Assert.Equal(1L, Long(await ScalarAsync(target, "SELECT one()")));
    }

    [Fact]
    public async Task A_role_that_is_not_a_superuser_restores_what_it_may_and_keeps_the_objects_it_may_not_give_away()
    {
        var target = await server.CreateDatabaseAsync();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string owner = $"dbm_owner_{suffix}", reader = $"dbm_reader_{suffix}", restorer = $"dbm_restorer_{suffix}";
        await ExecuteAsync(target,
            $"CREATE ROLE {owner}", $"CREATE ROLE {reader}", $"CREATE ROLE {restorer} LOGIN CREATEDB PASSWORD 'restorer-pw'",
            "CREATE SCHEMA app", $"ALTER SCHEMA app OWNER TO {owner}", $"GRANT USAGE ON SCHEMA app TO {reader}",
            "CREATE TABLE app.orders (id integer PRIMARY KEY, amount integer NOT NULL)", "INSERT INTO app.orders VALUES (1, 5), (2, 7)",
            $"ALTER TABLE app.orders OWNER TO {owner}", $"GRANT SELECT ON app.orders TO {reader}",
            $"ALTER DATABASE {target.Database} OWNER TO {restorer}");
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn }, null, CancellationToken.None);

        // The database's owner restores it, without being a superuser or a member of the objects' owner.
        var asRestorer = target.WithCredential(restorer, "restorer-pw");
        var host = new RecordingHost();
        new RestoreMigrationBackupCommand { Database = asRestorer, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Equal(2, Assert.Single(host.ObjectsOf<RestoreResult>()).Tables.Single(t => t.Table.EndsWith("orders", StringComparison.Ordinal)).Rows);
        var warning = Assert.Single(host.Warnings, w => w.Contains("owner or privilege", StringComparison.Ordinal));
        Assert.Contains($"OWNER TO {owner}", warning, StringComparison.Ordinal);

        // The restoring role keeps the objects, and the grants it could make as their owner are there and work.
        Assert.Equal(restorer, await ScalarAsync(target, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'app.orders'::regclass"));
        Assert.Equal(12L, Long(await ScalarAsync(target, $"SET ROLE {reader}; SELECT SUM(amount) FROM app.orders")));
    }

    [Theory]
    [InlineData("search_path=\"$user\", public", "ALTER DATABASE d SET search_path TO '$user', 'public'")]
    [InlineData("search_path=\"a,b\", \"say \"\"hi\"\"\"", "ALTER DATABASE d SET search_path TO 'a,b', 'say \"hi\"'")]
    [InlineData("search_path=\"\"", "ALTER DATABASE d SET search_path TO ''")]
    [InlineData("work_mem=8MB", "ALTER DATABASE d SET work_mem TO '8MB'")]
    [InlineData("app.tenant=it's", "ALTER DATABASE d SET \"app.tenant\" TO 'it''s'")]
    public void A_stored_setting_becomes_the_statement_that_sets_it_again(string stored, string expected) =>
        Assert.Equal(expected, PostgreSqlLogicalDump.SetStatement("ALTER DATABASE d", stored));

    [Fact]
    public async Task Owners_and_privileges_come_back_and_a_role_the_server_lacks_is_named_not_fatal()
    {
        var target = await server.CreateDatabaseAsync();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string owner = $"dbm_owner_{suffix}", reader = $"dbm_reader_{suffix}", gone = $"dbm_gone_{suffix}", stranger = $"dbm_stranger_{suffix}";
        await ExecuteAsync(target,
            $"CREATE ROLE {owner}", $"CREATE ROLE {reader}", $"CREATE ROLE {gone}", $"CREATE ROLE {stranger}",
            "CREATE SCHEMA app", $"ALTER SCHEMA app OWNER TO {owner}", $"GRANT USAGE ON SCHEMA app TO {reader}, {stranger}",
            "CREATE TYPE app.mood AS ENUM ('ok', 'bad')", $"ALTER TYPE app.mood OWNER TO {owner}", "REVOKE USAGE ON TYPE app.mood FROM PUBLIC", $"GRANT USAGE ON TYPE app.mood TO {reader}",
            "CREATE TABLE app.orders (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, amount integer NOT NULL, secret text)",
            $"ALTER TABLE app.orders OWNER TO {owner}", "INSERT INTO app.orders (amount, secret) VALUES (5, 'x'), (7, 'y')",
            $"GRANT SELECT ON app.orders TO {reader}", $"GRANT INSERT ON app.orders TO {reader} WITH GRANT OPTION",
            $"GRANT SELECT (id, amount), UPDATE (amount) ON app.orders TO {stranger}", $"GRANT SELECT ON app.orders TO {gone}", $"GRANT UPDATE (amount) ON app.orders TO {gone}",
            "CREATE TABLE app.refunds (id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME app.refund_no INCREMENT BY 5 START WITH 100) PRIMARY KEY, amount integer)",
            $"ALTER TABLE app.refunds OWNER TO {owner}", "INSERT INTO app.refunds (amount) VALUES (1)", $"GRANT USAGE ON SEQUENCE app.refund_no TO {reader}",
            "CREATE SEQUENCE app.ticket", $"ALTER SEQUENCE app.ticket OWNER TO {owner}", $"GRANT USAGE ON SEQUENCE app.ticket TO {reader}",
            "CREATE VIEW app.totals AS SELECT sum(amount) AS total FROM app.orders", $"ALTER VIEW app.totals OWNER TO {owner}", $"GRANT SELECT ON app.totals TO {reader}",
            "CREATE FUNCTION app.double_it(v integer) RETURNS integer LANGUAGE sql AS $$ SELECT v * 2 $$", $"ALTER FUNCTION app.double_it(integer) OWNER TO {owner}",
            "REVOKE EXECUTE ON FUNCTION app.double_it(integer) FROM PUBLIC", $"GRANT EXECUTE ON FUNCTION app.double_it(integer) TO {reader}",
            $"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA app GRANT SELECT ON TABLES TO {reader}",
            $"ALTER DATABASE {target.Database} SET search_path = \"$user\", app, public", $"ALTER ROLE {reader} IN DATABASE {target.Database} SET work_mem = '8MB'",
            $"COMMENT ON DATABASE {target.Database} IS 'orders, it''s said'", $"REVOKE CONNECT, TEMPORARY ON DATABASE {target.Database} FROM PUBLIC", $"GRANT CONNECT ON DATABASE {target.Database} TO {reader}");
        var databaseLevel = (string?)await ScalarAsync(target, DatabasePrivileges);
        Assert.Contains("app, public", databaseLevel, StringComparison.Ordinal);
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn }, null, CancellationToken.None);
        Assert.Equal(PostgreSqlLogicalDump.Format, backup.Format);

        // The role is gone from the server before the restore: its grants cannot come back, everything else must.
        await ExecuteAsync(target, $"REVOKE ALL ON app.orders FROM {gone}", $"REVOKE ALL (amount) ON app.orders FROM {gone}", $"DROP ROLE {gone}");
        var expected = (string?)await ScalarAsync(target, AppPrivileges);
        Assert.Contains($"{reader}=a*r/{owner}", expected, StringComparison.Ordinal);
        await ExecuteAsync(target, "DROP SCHEMA app CASCADE");

        var host = new RecordingHost();
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Single(host.ObjectsOf<RestoreResult>());
        var warning = Assert.Single(host.Warnings, w => w.Contains("owner or privilege", StringComparison.Ordinal));
        Assert.Contains(gone, warning, StringComparison.Ordinal);
        Assert.Equal(expected, (string?)await ScalarAsync(target, AppPrivileges));
        Assert.Equal(databaseLevel, (string?)await ScalarAsync(target, DatabasePrivileges));

        // The identity sequence kept its name and step: the next refund continues 100, 105.
        await ExecuteAsync(target, "INSERT INTO app.refunds (amount) VALUES (2)");
        Assert.Equal(105L, Long(await ScalarAsync(target, "SELECT MAX(id) FROM app.refunds")));

        // And they act as before: the reader reads and calls, the stranger sees only its columns and may not call.
        Assert.Equal(12L, Long(await ScalarAsync(target, $"SET ROLE {reader}; SELECT total FROM app.totals")));
        Assert.Equal(14L, Long(await ScalarAsync(target, $"SET ROLE {reader}; SELECT app.double_it(7)")));
        Assert.Equal(2L, Long(await ScalarAsync(target, $"SET ROLE {stranger}; SELECT COUNT(amount) FROM app.orders")));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ScalarAsync(target, $"SET ROLE {stranger}; SELECT COUNT(secret) FROM app.orders"));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => ScalarAsync(target, $"SET ROLE {stranger}; SELECT app.double_it(1)"));
    }

    protected override IReadOnlyList<string> Schema =>
    [
        "CREATE SCHEMA sales",
        "CREATE TYPE sales.state AS ENUM ('new', 'paid', 'it''s shipped')",
        "CREATE DOMAIN positive AS integer CHECK (VALUE >= 0)",
        "CREATE TABLE category (id integer PRIMARY KEY, code text NOT NULL UNIQUE)",
        "CREATE SEQUENCE invoice_no START 100 INCREMENT 5",
        """
        CREATE TABLE item (
            id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            category_id integer NOT NULL REFERENCES category (id),
            qty positive NOT NULL,
            doubled bigint GENERATED ALWAYS AS (qty * 2) STORED,
            note text,
            payload bytea,
            ratio double precision,
            price numeric(12, 4),
            big text,
            status sales.state NOT NULL DEFAULT 'new',
            invoice bigint DEFAULT nextval('invoice_no'),
            created timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT qty_sane CHECK (qty < 1000000))
        """,
        "CREATE TABLE audit (id serial PRIMARY KEY, item_id integer NOT NULL)",
        "CREATE INDEX ix_item_category_qty ON item (category_id, qty DESC) WHERE qty > 0",
        "CREATE FUNCTION add_one(v integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT v + 1 $$",
        "CREATE FUNCTION note_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit (item_id) VALUES (NEW.id); RETURN NEW; END $$",
        "CREATE TRIGGER item_audit AFTER INSERT ON item FOR EACH ROW EXECUTE FUNCTION note_insert()",
        "INSERT INTO category (id, code) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO item (id, category_id, qty, note, payload) VALUES (1, 1, 1, E'it''s a \\\\ \"quoted\"\\nline\\ttab é🦀', '\\x0001275c0aff'::bytea)",
        "INSERT INTO item (id, category_id, qty, note) VALUES (2, 2, 2, NULL)",
        "INSERT INTO item (id, category_id, qty, ratio, price, status) VALUES (3, 1, 3, 0.1, 12345.6789, 'it''s shipped')",
        "INSERT INTO item (id, category_id, qty, big) VALUES (4, 1, 4, repeat('x', 2000))",
        "INSERT INTO item (id, category_id, qty, note) SELECT g, 1 + g % 2, g, 'row ' || g FROM generate_series(5, 3000) g",
        "SELECT setval(pg_get_serial_sequence('item', 'id'), 3000)",
        "CREATE VIEW expensive AS SELECT id, qty FROM item WHERE qty > 1500",
        "CREATE VIEW expensive_summary AS SELECT COUNT(*) AS total FROM expensive",
        "DELETE FROM audit",
    ];
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbBuiltInDumpTests(MariaDbServer server) : BuiltInDumpTests(server)
{
    protected override string BuiltInFormat => MySqlLogicalDump.Format;

    protected override string InsertWithoutId => "INSERT INTO item (category_id, qty) VALUES (1, 7)";

    protected override (string Sql, string Named) Unsupported => ("CREATE SEQUENCE ticket_no", "sequence ticket_no");

    /// <summary>
    /// A server whose sql_mode has ANSI_QUOTES (sql_mode = ANSI, as some applications ask for) prints "item" for
    /// `item` in SHOW CREATE: the built-in dump wrote that, and its load session, which sets its own sql_mode, read
    /// it as a string, so every built-in backup failed verification. The dump reads definitions under a plain mode.
    /// </summary>
    [Fact]
    public async Task A_server_set_to_ANSI_quotes_is_dumped_with_definitions_every_session_reads()
    {
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target, "CREATE TABLE item (id INT PRIMARY KEY, label CHAR(8), qty INT DEFAULT 1)", "INSERT INTO item VALUES (1, 'ab', 2), (2, NULL, 3)",
            $"CREATE VIEW big AS SELECT id, qty FROM `{target.Database}`.item WHERE qty > 2");
        var mode = Convert.ToString(await ScalarAsync(target, "SELECT @@GLOBAL.sql_mode"), CultureInfo.InvariantCulture)!;
        try
        {
            await server.RunSqlAsync($"SET GLOBAL sql_mode = '{mode},ANSI_QUOTES,PAD_CHAR_TO_FULL_LENGTH'");
            DbMigration.Providers.DatabaseProviders.For(target).ReleasePooledConnections(target);
            Assert.Equal(1L, Long(await ScalarAsync(target, "SELECT @@SESSION.sql_mode LIKE '%ANSI_QUOTES%'")));

            var host = new RecordingHost();
            new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.BuiltIn, VerifyMode = true }.Invoke(host, CancellationToken.None);
            Assert.Empty(host.Errors);
            var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
            Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

            await ExecuteAsync(target, "DROP VIEW big", "DELETE FROM item");
            var restore = new RecordingHost();
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(restore, CancellationToken.None);
            Assert.Empty(restore.Errors);
            Assert.Equal("2:3", await ScalarAsync(target, "SELECT GROUP_CONCAT(CONCAT(id, ':', qty)) FROM big"));
            Assert.Equal("ab", await ScalarAsync(target, "SELECT TRIM(label) FROM item WHERE id = 1"));
        }
        finally
        {
            await server.RunSqlAsync($"SET GLOBAL sql_mode = '{mode}'");
            DbMigration.Providers.DatabaseProviders.For(target).ReleasePooledConnections(target);
        }
    }

    [Fact]
    public async Task A_system_versioned_table_is_refused_rather_than_dumped_without_its_history()
    {
        var target = await server.CreateDatabaseAsync();
        await ExecuteAsync(target, "CREATE TABLE price (id INT PRIMARY KEY, amount INT) WITH SYSTEM VERSIONING", "INSERT INTO price VALUES (1, 10)", "UPDATE price SET amount = 11");
        await AssertBuiltInDumpRefusesAsync(target, "system-versioned table price");
    }

    protected override IReadOnlyList<string> Schema =>
    [
        "CREATE TABLE category (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE)",
        """
        CREATE TABLE item (
            id INT AUTO_INCREMENT PRIMARY KEY,
            category_id INT NOT NULL,
            qty INT NOT NULL,
            doubled BIGINT AS (qty * 2) PERSISTENT,
            note TEXT,
            payload VARBINARY(100),
            ratio DOUBLE,
            price DECIMAL(12, 4),
            big MEDIUMTEXT,
            status ENUM('new', 'paid', 'it''s shipped') NOT NULL DEFAULT 'new',
            flags BIT(8) DEFAULT b'00000101',
            created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            CONSTRAINT fk_item_category FOREIGN KEY (category_id) REFERENCES category (id),
            CONSTRAINT qty_sane CHECK (qty >= 0),
            KEY ix_item_category_qty (category_id, qty DESC))
        """,
        "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, item_id INT NOT NULL)",
        "CREATE FUNCTION add_one(v INT) RETURNS INT DETERMINISTIC RETURN v + 1",
        "CREATE TRIGGER item_audit AFTER INSERT ON item FOR EACH ROW BEGIN INSERT INTO audit (item_id) VALUES (NEW.id); END",
        "INSERT INTO category (id, code) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO item (id, category_id, qty, note, payload) VALUES (1, 1, 1, 'it\\'s a \\\\ \"quoted\"\\nline\\ttab é🦀', 0x0001275C0AFF)",
        "INSERT INTO item (id, category_id, qty, note) VALUES (2, 2, 2, NULL)",
        "INSERT INTO item (id, category_id, qty, ratio, price, status) VALUES (3, 1, 3, 0.1, 12345.6789, 'it''s shipped')",
        "INSERT INTO item (id, category_id, qty, big) VALUES (4, 1, 4, REPEAT('x', 2000))",
        "INSERT INTO item (id, category_id, qty, note) SELECT seq, 1 + seq % 2, seq, CONCAT('row ', seq) FROM seq_5_to_3000",
        "CREATE VIEW expensive AS SELECT id, qty FROM item WHERE qty > 1500",
        "CREATE VIEW expensive_summary AS SELECT COUNT(*) AS total FROM expensive",
        "DELETE FROM audit",
    ];
}
