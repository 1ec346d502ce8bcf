using System.Collections;
using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.Query;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Cmdlets;

/// <summary>Invoke-DatabaseQuery's logic, run through the cmdlet class with a recording host, on every engine.</summary>
public abstract class InvokeDatabaseQueryTests(IEngineUnderTest engine)
{
    protected IEngineUnderTest Engine { get; } = engine;

    protected virtual string SleepQuery => "SELECT pg_sleep(10)";

    /// <summary>SQL counting the named tables in the test database.</summary>
    private string CountTables(params string[] names)
    {
        var list = string.Join(", ", names.Select(n => "'" + n + "'"));
        return Engine.Engine switch
        {
            DatabaseEngine.Sqlite => $"SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ({list})",
            DatabaseEngine.PostgreSql => $"SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ({list})",
            _ => $"SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ({list})",
        };
    }

    private protected static RecordingHost Run(DatabaseTarget target, string query, Hashtable? parameters = null, int timeout = 30, bool whatIf = false, CancellationToken cancellationToken = default)
    {
        var host = new RecordingHost { WhatIf = whatIf };
        new InvokeDatabaseQueryCommand { Database = target, Query = query, Parameters = parameters, Timeout = timeout }.Invoke(host, cancellationToken);
        return host;
    }

    [Fact]
    public async Task A_select_returns_one_object_per_row_with_the_columns_as_properties()
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = Run(target, "SELECT 1 AS id, 'alpha' AS name UNION ALL SELECT 2, 'beta' ORDER BY id");

        var rows = host.ObjectsOf<QueryRow>().ToList();
        Assert.Equal(2, rows.Count);
        Assert.Equal(["id", "name"], rows[0].Columns);
        Assert.Equal(1L, Convert.ToInt64(rows[0]["id"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("beta", rows[1]["name"]);
        Assert.Empty(host.ObjectsOf<QueryStatementResult>());
    }

    [Fact]
    public async Task A_script_runs_in_order_and_non_queries_report_rows_affected()
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = Run(target, """
            CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20));
            INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
            UPDATE items SET name = 'z' WHERE id >= 2;
            SELECT id, name FROM items ORDER BY id;
            """);

        var results = host.ObjectsOf<QueryStatementResult>().ToList();
        Assert.Equal([1, 2, 3], results.Select(r => r.StatementIndex));
        Assert.Equal(3, results[1].RowsAffected);
        Assert.Equal(2, results[2].RowsAffected);
        var rows = host.ObjectsOf<QueryRow>().ToList();
        Assert.Equal(["a", "z", "z"], rows.Select(r => (string)r["name"]!));
        Assert.All(rows, r => Assert.Equal(4, r.StatementIndex));
    }

    private static RecordingHost RunInOneTransaction(DatabaseTarget target, string query, bool whatIf = false, int timeout = 30, CancellationToken cancellationToken = default)
    {
        var host = new RecordingHost { WhatIf = whatIf };
        new InvokeDatabaseQueryCommand { Database = target, Query = query, SingleTransactionMode = true, Timeout = timeout }.Invoke(host, cancellationToken);
        return host;
    }

    private static long Count(DatabaseTarget target, string table) =>
        Convert.ToInt64(Assert.Single(Run(target, $"SELECT COUNT(*) AS n FROM {table}").ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Without_SingleTransaction_each_statement_commits_on_its_own()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))");

        var ex = Assert.Throws<DbMigrationException>(() => Run(target, "INSERT INTO items (id, name) VALUES (1, 'a'); INSERT INTO items (id, name) VALUES (1, 'again'); INSERT INTO items (id, name) VALUES (2, 'b')"));

        Assert.Equal(ErrorIds.QueryStatementFailed, ex.ErrorId);
        Assert.DoesNotContain("rolled back", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, Count(target, "items"));
    }

    [Fact]
    public async Task SingleTransaction_takes_back_every_statement_when_one_fails()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20)); INSERT INTO items (id, name) VALUES (9, 'kept')");

        var ex = Assert.Throws<DbMigrationException>(() => RunInOneTransaction(target, """
            INSERT INTO items (id, name) VALUES (1, 'a');
            UPDATE items SET name = 'changed' WHERE id = 9;
            INSERT INTO items (id, name) VALUES (1, 'again');
            INSERT INTO items (id, name) VALUES (2, 'b');
            """));

        Assert.Equal(ErrorIds.QueryStatementFailed, ex.ErrorId);
        Assert.Contains("Statement 3 of 4", ex.Message, StringComparison.Ordinal);
        Assert.Contains("rolled back: nothing the script did took effect", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, Count(target, "items"));
        Assert.Equal("kept", Assert.Single(Run(target, "SELECT name FROM items").ObjectsOf<QueryRow>())["name"]);
    }

    [Fact]
    public async Task SingleTransaction_commits_the_whole_script_and_is_confirmed_as_one()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))");
        const string Script = "INSERT INTO items (id, name) VALUES (1, 'a'); INSERT INTO items (id, name) VALUES (2, 'b'); SELECT COUNT(*) AS n FROM items";

        var dry = RunInOneTransaction(target, Script, whatIf: true);
        var asked = Assert.Single(dry.ShouldProcessCalls);
        Assert.StartsWith("Execute 3 statement(s) in one transaction", asked.Action, StringComparison.Ordinal);
        Assert.Equal(0, Count(target, "items"));

        var host = RunInOneTransaction(target, Script);
        // The script sees its own rows before the commit, and the commit keeps them.
        Assert.Equal(2L, Convert.ToInt64(Assert.Single(host.ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(host.Verbose, v => v.StartsWith("Committed the 3 statement(s) as one transaction", StringComparison.Ordinal));
        Assert.Equal(2, Count(target, "items"));
    }

    [Fact]
    public async Task SingleTransaction_refuses_a_script_that_manages_its_own_transaction_before_anything_runs()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))");

        var ex = Assert.Throws<DbMigrationException>(() => RunInOneTransaction(target, "INSERT INTO items (id, name) VALUES (1, 'a');\nCOMMIT;\nINSERT INTO items (id, name) VALUES (2, 'b');"));

        Assert.Equal(ErrorIds.QueryNotTransactional, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("Statement 2 (line 2) is its own COMMIT", ex.Message, StringComparison.Ordinal);
        Assert.Equal("COMMIT", ex.Sql);
        Assert.Equal(0, Count(target, "items"));
    }

    [Fact]
    public async Task SingleTransaction_rolls_back_a_script_stopped_by_its_timeout()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))");

        var ex = Assert.Throws<DbMigrationException>(() => RunInOneTransaction(target, $"INSERT INTO items (id, name) VALUES (1, 'a'); {SleepQuery}", timeout: 1));

        Assert.Equal(ErrorIds.QueryTimeout, ex.ErrorId);
        Assert.Contains("rolled back", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, Count(target, "items"));
    }

    [Fact]
    public async Task Parameters_bind_values_without_pasting_them_into_the_sql()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(50))");
        Run(target, "INSERT INTO people (id, name) VALUES (@id, @name)", new Hashtable { ["id"] = 7, ["@name"] = "O'Brien; DROP TABLE people" });

        var host = Run(target, "SELECT name FROM people WHERE id = @id", new Hashtable { ["id"] = 7 });
        Assert.Equal("O'Brien; DROP TABLE people", Assert.Single(host.ObjectsOf<QueryRow>())["name"]);
    }

    [Fact]
    public async Task WhatIf_shows_every_statement_and_runs_none()
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = Run(target, "CREATE TABLE should_not_exist (id INTEGER); INSERT INTO should_not_exist VALUES (1)", whatIf: true);

        Assert.Equal(2, host.ShouldProcessCalls.Count);
        Assert.Contains("CREATE TABLE should_not_exist", host.ShouldProcessCalls[0].Action, StringComparison.Ordinal);
        Assert.Empty(host.Objects);
        var check = Run(target, CountTables("should_not_exist"));
        Assert.Equal(0L, Convert.ToInt64(Assert.Single(check.ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task The_first_failing_statement_stops_the_script_with_its_sql_and_a_stable_id()
    {
        var target = await Engine.CreateDatabaseAsync();
        var ex = Assert.Throws<DbMigrationException>(() => Run(target, "CREATE TABLE t1 (id INTEGER);\nSELECT * FROM missing_table;\nCREATE TABLE t2 (id INTEGER);"));

        Assert.Equal(ErrorIds.QueryStatementFailed, ex.ErrorId);
        Assert.Equal("SELECT * FROM missing_table", ex.Sql);
        Assert.Contains("Statement 2 of 3 (line 2)", ex.Message, StringComparison.Ordinal);
        Assert.Equal(target.ToString(), ex.Target);

        var tables = Run(target, CountTables("t1", "t2"));
        Assert.Equal(1L, Convert.ToInt64(Assert.Single(tables.ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_statement_that_outlives_the_timeout_is_cancelled_with_a_timeout_error()
    {
        var target = await Engine.CreateDatabaseAsync();
        var started = DateTime.UtcNow;
        var ex = Assert.Throws<DbMigrationException>(() => Run(target, SleepQuery, timeout: 1));

        Assert.Equal(ErrorIds.QueryTimeout, ex.ErrorId);
        Assert.Equal(ErrorKind.OperationTimeout, ex.Kind);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(9), "the statement was not interrupted");
    }

    [Fact]
    public async Task Stopping_the_pipeline_cancels_a_running_statement()
    {
        var target = await Engine.CreateDatabaseAsync();
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var started = DateTime.UtcNow;
        Assert.ThrowsAny<OperationCanceledException>(() => Run(target, SleepQuery, timeout: 0, cancellationToken: stop.Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(9), "the statement was not interrupted");
    }

    [Fact]
    public async Task Every_host_call_happens_on_the_calling_pipeline_thread()
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = "SELECT 1 AS a; SELECT 2 AS b" }.Invoke(host, CancellationToken.None);

        Assert.Equal(2, host.ObjectsOf<QueryRow>().Count());
        Assert.NotEmpty(host.Progress);
        Assert.Equal([Environment.CurrentManagedThreadId], host.CallingThreads.Distinct());
    }

    [Fact]
    public void An_empty_script_is_refused_before_connecting()
    {
        var ex = Assert.Throws<DbMigrationException>(() => Run(DatabaseTarget.Parse("/nonexistent/never.db"), "-- only a comment"));
        Assert.Equal(ErrorIds.QueryEmpty, ex.ErrorId);
    }
    /// <summary>
    /// A parameter the script uses but -Parameters does not give is refused before any statement runs. Left alone,
    /// PostgreSQL would read "@id" as its absolute-value operator on the column ("WHERE id = @id" is true for every
    /// id >= 0), and SQLite would fail only when it reached that statement. On MariaDB @id is a user variable.
    /// </summary>
    [Fact]
    public async Task A_parameter_that_is_not_given_is_refused_before_anything_runs()
    {
        var target = await Engine.CreateDatabaseAsync();
        Run(target, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)");
        const string script = "INSERT INTO t VALUES (4); DELETE FROM t WHERE id = @id";
        if (Engine.Engine == DatabaseEngine.MySql)
        {
            Run(target, script, new Hashtable { ["other"] = 1 });
            Assert.Equal(4L, Convert.ToInt64(Assert.Single(Run(target, "SELECT COUNT(*) AS n FROM t").ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        var ex = Assert.Throws<DbMigrationException>(() => Run(target, script, new Hashtable { ["other"] = 1 }));
        Assert.Equal(ErrorIds.QueryInvalidParameter, ex.ErrorId);
        Assert.Contains("@id", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3L, Convert.ToInt64(Assert.Single(Run(target, "SELECT COUNT(*) AS n FROM t").ObjectsOf<QueryRow>())["n"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Throws<DbMigrationException>(() => Run(target, "SELECT * FROM t WHERE id = @id"));
        Assert.Single(Run(target, "SELECT * FROM t WHERE id = @id", new Hashtable { ["id"] = 2 }).ObjectsOf<QueryRow>());

        // Names match as the driver matches them: Npgsql ignores case, Microsoft.Data.Sqlite does not.
        if (Engine.Engine == DatabaseEngine.PostgreSql)
        {
            Assert.Equal(2L, Convert.ToInt64(Assert.Single(Run(target, "SELECT id FROM t WHERE id = @ID", new Hashtable { ["id"] = 2 }).ObjectsOf<QueryRow>())["id"], System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            Assert.Contains("nothing was run", Assert.Throws<DbMigrationException>(() => Run(target, "SELECT id FROM t WHERE id = @ID", new Hashtable { ["id"] = 2 })).Message, StringComparison.Ordinal);
        }
        Assert.Single(Run(target, "SELECT '@id' AS quoted -- @id in a comment").ObjectsOf<QueryRow>());
        if (Engine.Engine == DatabaseEngine.Sqlite)
        {
            // SQLite's other markers are checked by Microsoft.Data.Sqlite as the statement runs.
            Assert.Equal(ErrorIds.QueryInvalidParameter, Assert.Throws<DbMigrationException>(() => Run(target, "SELECT * FROM t WHERE id = :id")).ErrorId);
        }
    }

}

public sealed class SqliteInvokeDatabaseQueryTests() : InvokeDatabaseQueryTests(new SqliteEngine()), IDisposable
{
    // A recursive CTE that runs for minutes unless interrupted.
    protected override string SleepQuery => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";

    public void Dispose() => ((SqliteEngine)Engine).Dispose();

    [Fact]
    public void A_missing_file_is_reported_and_never_created()
    {
        using var dir = new TempDirectory();
        var path = dir.File("missing.db");
        var host = new RecordingHost();

        var ex = Assert.Throws<DbMigrationException>(() =>
            new InvokeDatabaseQueryCommand { Database = DatabaseTarget.Parse(path), Query = "SELECT 1" }.Invoke(host, CancellationToken.None));

        Assert.Equal(ErrorIds.TargetFileNotFound, ex.ErrorId);
        Assert.Equal(ErrorKind.ObjectNotFound, ex.Kind);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task A_relative_path_resolves_against_the_PowerShell_location_not_the_process_directory()
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = new RecordingHost(Path.GetDirectoryName(target.FilePath));
        new InvokeDatabaseQueryCommand { Database = DatabaseTarget.Parse(Path.GetFileName(target.FilePath!)), Query = "SELECT 42 AS answer" }.Invoke(host, CancellationToken.None);

        Assert.Equal(42L, Assert.Single(host.ObjectsOf<QueryRow>())["answer"]);
    }

    [Fact]
    public async Task A_raw_connection_string_needs_Engine()
    {
        var target = await Engine.CreateDatabaseAsync();
        var raw = DatabaseTarget.Parse($"Data Source={target.FilePath}");
        var ex = Assert.Throws<DbMigrationException>(() =>
            new InvokeDatabaseQueryCommand { Database = raw, Query = "SELECT 1" }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.TargetEngineRequired, ex.ErrorId);

        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = raw, Engine = DatabaseEngine.Sqlite, Query = "SELECT 1 AS one" }.Invoke(host, CancellationToken.None);
        Assert.Single(host.ObjectsOf<QueryRow>());
    }

    [Fact]
    public void A_file_that_is_not_a_database_gets_a_clear_error()
    {
        using var dir = new TempDirectory();
        var path = dir.File("notes.txt");
        File.WriteAllText(path, new string('x', 4096));

        var ex = Assert.Throws<DbMigrationException>(() =>
            new InvokeDatabaseQueryCommand { Database = DatabaseTarget.Parse(path), Query = "SELECT 1" }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.TargetNotADatabase, ex.ErrorId);
        Assert.Contains("not a SQLite database", ex.Message, StringComparison.Ordinal);
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlInvokeDatabaseQueryTests(PostgresServer server) : InvokeDatabaseQueryTests(server)
{
    [Fact]
    public async Task A_wrong_password_is_an_authentication_error_that_never_shows_the_password()
    {
        var target = (await server.CreateDatabaseAsync()).WithCredential("postgres", "Wr0ng-Secret-Value");
        var ex = Assert.Throws<DbMigrationException>(() =>
            new InvokeDatabaseQueryCommand { Database = target, Query = "SELECT 1" }.Invoke(new RecordingHost(), CancellationToken.None));

        Assert.Equal(ErrorIds.ConnectionAuthenticationFailed, ex.ErrorId);
        Assert.Equal(ErrorKind.AuthenticationError, ex.Kind);
        Assert.DoesNotContain("Wr0ng-Secret-Value", ex.Message + ex.Target + ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Operators_that_contain_an_at_sign_are_not_parameters()
    {
        var target = await server.CreateDatabaseAsync();
        var row = Assert.Single(Run(target, "SELECT ARRAY[1] <@ ARRAY[1, 2] AS contained, @ -5 AS absolute, '{\"a\":1}'::jsonb @> '{\"a\":1}' AS has").ObjectsOf<QueryRow>());
        Assert.Equal(true, row["contained"]);
    }

    [Fact]
    public async Task Dollar_quoted_functions_run_as_one_statement()
    {
        var target = await server.CreateDatabaseAsync();
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand
        {
            Database = target,
            Query = "CREATE FUNCTION twice(x int) RETURNS int AS $$ BEGIN RETURN x * 2; END; $$ LANGUAGE plpgsql; SELECT twice(21) AS v;",
        }.Invoke(host, CancellationToken.None);

        Assert.Equal(42, Assert.Single(host.ObjectsOf<QueryRow>())["v"]);
    }

    [Fact]
    public async Task SQL_standard_function_bodies_and_rules_with_several_actions_run_as_one_statement()
    {
        var target = await server.CreateDatabaseAsync();
        var host = Run(target, """
            CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE VIEW v AS SELECT id FROM a;
            CREATE FUNCTION both_counts() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b); END;
            CREATE RULE v_insert AS ON INSERT TO v DO INSTEAD (INSERT INTO a VALUES (new.id); INSERT INTO b VALUES (new.id));
            INSERT INTO v VALUES (1);
            SELECT both_counts() AS n;
            """);
        Assert.Empty(host.Errors);
        Assert.Equal(2L, Assert.Single(host.ObjectsOf<QueryRow>())["n"]);
    }

    /// <summary>
    /// Values the driver could not hand over failed the whole query with "DbMigration did not expect this error":
    /// an array holding a NULL, and a numeric beyond decimal's range.
    /// </summary>
    [Fact]
    public async Task Arrays_with_NULLs_and_numerics_beyond_decimal_are_returned_and_the_unreadable_are_named()
    {
        var target = await server.CreateDatabaseAsync();
        var row = Assert.Single(Run(target, "SELECT '{1,NULL,3}'::int[] AS sparse, '{4,5}'::int[] AS dense, 1e40::numeric AS huge, 123.45::numeric AS small").ObjectsOf<QueryRow>());
        Assert.Equal(new int?[] { 1, null, 3 }, row["sparse"]);
        Assert.Equal(new int?[] { 4, 5 }, row["dense"]);
        Assert.Equal(System.Numerics.BigInteger.Pow(10, 40), row["huge"]);
        Assert.Equal(123.45m, row["small"]);

        var error = Assert.Throws<DbMigrationException>(() => Run(target, "SELECT 1 AS id, 'NaN'::numeric AS ratio"));
        Assert.Equal((ErrorIds.QueryValueNotReadable, ErrorKind.InvalidData), (error.ErrorId, error.Kind));
        Assert.Contains("'ratio' (numeric)", error.Message, StringComparison.Ordinal);
        Assert.Contains("ratio::text", error.Message, StringComparison.Ordinal);
        Assert.Equal("NaN", Assert.Single(Run(target, "SELECT 'NaN'::numeric::text AS ratio").ObjectsOf<QueryRow>())["ratio"]);
    }

    /// <summary>
    /// An interval of months or years (what age() returns) failed the whole query, as TimeSpan has no months, and
    /// one of negative months was silently read without them ('-1 year -00:00:01' as one second back). Both come
    /// back as a NodaTime Period, field by field; an interval of days and time stays a TimeSpan.
    /// </summary>
    [Fact]
    public async Task Intervals_of_months_and_years_are_returned_exactly_as_periods()
    {
        var target = await server.CreateDatabaseAsync();
        var row = Assert.Single(Run(target, """
            SELECT age(TIMESTAMP '2024-03-15 10:30:00', TIMESTAMP '2021-01-10 08:00:00') AS tenure,
                   INTERVAL '1 mon -2 days 03:04:05.678901' AS mixed, INTERVAL '-1 year -2 months -00:00:01' AS negative,
                   INTERVAL '2 days 01:00:00' AS plain, INTERVAL '-3 days -00:00:00.5' AS back, NULL::interval AS none
            """).ObjectsOf<QueryRow>());
        Assert.Equal(new NodaTime.PeriodBuilder { Years = 3, Months = 2, Days = 5, Hours = 2, Minutes = 30 }.Build(), row["tenure"]);
        Assert.Equal(new NodaTime.PeriodBuilder { Months = 1, Days = -2, Hours = 3, Minutes = 4, Seconds = 5, Ticks = 6_789_010 }.Build(), row["mixed"]);
        Assert.Equal(new NodaTime.PeriodBuilder { Years = -1, Months = -2, Seconds = -1 }.Build(), row["negative"]);
        Assert.Equal("P3Y2M5DT2H30M", row["tenure"]!.ToString());
        Assert.Equal(new TimeSpan(2, 1, 0, 0), row["plain"]);
        Assert.Equal(-(TimeSpan.FromDays(3) + TimeSpan.FromMilliseconds(500)), row["back"]);
        Assert.Null(row["none"]);

        // In arrays too, of any shape, NULLs kept: '-1 year' came back as 00:00:00 there.
        var arrays = Assert.Single(Run(target, "SELECT '{-1 year,2 days,NULL}'::interval[] AS flat, '{{1 mon,1 day},{-1 day,00:00:01}}'::interval[] AS square").ObjectsOf<QueryRow>());
        Assert.Equal(new object?[] { NodaTime.Period.FromYears(-1), TimeSpan.FromDays(2), null }, arrays["flat"]);
        var square = Assert.IsType<object[,]>(arrays["square"]);
        Assert.Equal(NodaTime.Period.FromMonths(1), square[0, 0]);
        Assert.Equal(TimeSpan.FromDays(1), square[0, 1]);
        Assert.Equal(TimeSpan.FromDays(-1), square[1, 0]);
        Assert.Equal(TimeSpan.FromSeconds(1), square[1, 1]);
    }

    /// <summary>
    /// ±infinity in a timestamp or date came back as DateTime.MaxValue or MinValue: 'infinity' showed as the last
    /// moment of 9999, and '-infinity' as 0001-01-01, the same as a real value of that day. They come back as the
    /// words PostgreSQL uses; finite values are as before.
    /// </summary>
    [Fact]
    public async Task Infinite_timestamps_and_dates_are_returned_as_infinity_not_as_a_date()
    {
        var target = await server.CreateDatabaseAsync();
        var row = Assert.Single(Run(target, """
            SELECT 'infinity'::timestamp AS open_end, '-infinity'::timestamptz AS since_ever, '-infinity'::date AS first_day,
                   '0001-01-01 00:00:00'::timestamp AS real_first, '2024-07-01 12:00:00+00'::timestamptz AS instant, '2024-07-01'::date AS day,
                   ARRAY['2024-07-01 12:00:00'::timestamp, NULL, 'infinity'] AS moments, ARRAY[['2024-07-01 12:00:00+00'::timestamptz]] AS nested
            """).ObjectsOf<QueryRow>());
        Assert.Equal("infinity", row["open_end"]);
        Assert.Equal("-infinity", row["since_ever"]);
        Assert.Equal("-infinity", row["first_day"]);
        Assert.Equal(new DateTime(1, 1, 1, 0, 0, 0, DateTimeKind.Unspecified), row["real_first"]);
        var instant = Assert.IsType<DateTime>(row["instant"]);
        Assert.Equal((new DateTime(2024, 7, 1, 12, 0, 0), DateTimeKind.Utc), (instant, instant.Kind));
        Assert.Equal(new DateOnly(2024, 7, 1), row["day"]);
        // Arrays of timestamps failed the whole query ("Reading as 'System.Object' is not supported").
        Assert.Equal(new object?[] { new DateTime(2024, 7, 1, 12, 0, 0), null, "infinity" }, row["moments"]);
        Assert.Equal(new DateTime(2024, 7, 1, 12, 0, 0, DateTimeKind.Utc), Assert.IsType<object[,]>(row["nested"])[0, 0]);
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbInvokeDatabaseQueryTests(MariaDbServer server) : InvokeDatabaseQueryTests(server)
{
    protected override string SleepQuery => "SELECT SLEEP(10)";

    /// <summary>
    /// BOOLEAN is TINYINT(1), which holds any number from -128 to 127: an application's status codes in one came back
    /// as $true, so 2 and 1 looked the same. 0 and 1 stay booleans; other values come back as they are.
    /// </summary>
    [Fact]
    public async Task A_TINYINT_1_column_reads_0_and_1_as_booleans_and_any_other_value_as_itself()
    {
        var target = await server.CreateDatabaseAsync();
        Run(target, "CREATE TABLE flags (id INT PRIMARY KEY, flag BOOLEAN, code TINYINT(1) UNSIGNED); INSERT INTO flags VALUES (1, 0, 0), (2, 1, 1), (3, 2, 200), (4, -1, NULL), (5, NULL, 9)");

        var rows = Run(target, "SELECT flag, code FROM flags ORDER BY id").ObjectsOf<QueryRow>().ToList();

        Assert.Equal([false, true, 2, -1, null], rows.Select(r => r["flag"]));
        Assert.Equal([false, true, 200, null, 9], rows.Select(r => r["code"]));
    }

    [Fact]
    public async Task SingleTransaction_refuses_DDL_that_MariaDB_would_commit_at_once()
    {
        var target = await server.CreateDatabaseAsync();
        Run(target, "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))");

        var ex = Assert.Throws<DbMigrationException>(() => new InvokeDatabaseQueryCommand
        {
            Database = target,
            Query = "INSERT INTO items (id, name) VALUES (1, 'a');\nALTER TABLE items ADD COLUMN note VARCHAR(10);",
            SingleTransactionMode = true,
        }.Invoke(new RecordingHost(), CancellationToken.None));

        Assert.Equal(ErrorIds.QueryNotTransactional, ex.ErrorId);
        Assert.Contains("is a ALTER statement, which MySQL and MariaDB commit at once", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Run(target, "SELECT id FROM items").ObjectsOf<QueryRow>());

        // A temporary table does not end the transaction, so it may take part.
        new InvokeDatabaseQueryCommand
        {
            Database = target,
            Query = "CREATE TEMPORARY TABLE scratch (id INT); INSERT INTO scratch VALUES (1); INSERT INTO items (id, name) SELECT id, 'from scratch' FROM scratch;",
            SingleTransactionMode = true,
        }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal("from scratch", Assert.Single(Run(target, "SELECT name FROM items").ObjectsOf<QueryRow>())["name"]);
    }

    [Fact]
    public async Task A_wrong_password_is_an_authentication_error_that_never_shows_the_password()
    {
        var target = (await server.CreateDatabaseAsync()).WithCredential("dbm", "Wr0ng-Secret-Value");
        var ex = Assert.Throws<DbMigrationException>(() =>
            new InvokeDatabaseQueryCommand { Database = target, Query = "SELECT 1" }.Invoke(new RecordingHost(), CancellationToken.None));

        Assert.Equal(ErrorIds.ConnectionAuthenticationFailed, ex.ErrorId);
        Assert.Equal(1045, ex.ServerErrorNumber);
        Assert.DoesNotContain("Wr0ng-Secret-Value", ex.Message + ex.Target + ex.ToString(), StringComparison.Ordinal);
    }
}
