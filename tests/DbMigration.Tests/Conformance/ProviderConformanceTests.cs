using System.Data.Common;
using DbMigration.Errors;
using DbMigration.Providers;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Conformance;

/// <summary>
/// The contract every provider must honour, run against a real server of each engine (golang-migrate's idea:
/// one suite, every driver). A new engine adds a subclass, nothing else.
/// </summary>
public abstract class ProviderConformanceTests(IEngineUnderTest engine, string? password)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);

    protected IEngineUnderTest Engine { get; } = engine;

    private IDatabaseProvider Provider => DatabaseProviders.For(Engine.Engine);

    private const string PortableSchema = """
        CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, note VARCHAR(100),
                            FOREIGN KEY (parent_id) REFERENCES parent (id));
        CREATE INDEX ix_child_parent ON child (parent_id);
        CREATE UNIQUE INDEX ux_parent_name ON parent (name);
        INSERT INTO parent (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
        INSERT INTO child (id, parent_id, note) VALUES (10, 1, 'x'), (11, 1, NULL);
        """;

    private async Task<DbConnection> OpenAsync(DatabaseTarget target) =>
        await Provider.OpenConnectionAsync(target, ConnectTimeout, CancellationToken.None);

    private static async Task ExecAsync(DbConnection connection, string sql)
    {
        foreach (var statement in DbMigration.Sql.SqlScriptSplitter.Split(sql, DatabaseEngine.Sqlite))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = statement.Text;
            await command.ExecuteNonQueryAsync();
        }
    }

    private async Task<(DatabaseTarget Target, DbConnection Connection)> SeededAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        var connection = await OpenAsync(target);
        await ExecAsync(connection, PortableSchema);
        return (target, connection);
    }

    /// <summary>SQL that moves the session (where names resolve, who it acts as), or null where a script cannot (SQLite).</summary>
    protected virtual string? MoveSessionSql => null;

    [Fact]
    public async Task The_session_state_a_script_moved_is_put_back()
    {
        var (_, connection) = await SeededAsync();
        await using var open = connection;
        var scope = await Provider.ReadSessionStateAsync(connection, CancellationToken.None);
        if (MoveSessionSql is { } move)
        {
            await ExecAsync(connection, move);
            Assert.NotEqual(scope, await Provider.ReadSessionStateAsync(connection, CancellationToken.None));
        }
        else
        {
            Assert.Null(scope);
        }

        await Provider.RestoreSessionStateAsync(connection, null, scope, CancellationToken.None);
        Assert.Equal(scope, await Provider.ReadSessionStateAsync(connection, CancellationToken.None));
        await using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM parent";
        Assert.Equal(3L, Convert.ToInt64(await count.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Reports_the_server_version_and_capabilities()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using var connection = await OpenAsync(target);

        var server = await Provider.GetServerInfoAsync(connection, CancellationToken.None);
        Assert.Equal(Engine.Engine, server.Engine);
        Assert.True(server.Version.Major >= 3, $"version {server.VersionText}");
        Assert.False(string.IsNullOrWhiteSpace(server.Product));
        var capabilities = Provider.GetCapabilities(server);
        Assert.Equal(Engine.Engine != DatabaseEngine.MySql, capabilities.TransactionalDdl);
    }

    [Fact]
    public async Task Introspects_tables_columns_keys_indexes_and_foreign_keys()
    {
        var (_, connection) = await SeededAsync();
        await using var _ = connection;

        var tables = await Provider.GetTablesAsync(connection, CancellationToken.None);
        var parent = Assert.Single(tables, t => t.Name.Name == "parent");
        var child = Assert.Single(tables, t => t.Name.Name == "child");

        Assert.Equal(["id", "name"], parent.Columns.Select(c => c.Name));
        Assert.Equal(["id"], parent.PrimaryKey);
        Assert.True(parent.Columns[0].IsPrimaryKey);
        Assert.False(parent.Columns[1].IsNullable);
        Assert.Contains("50", parent.Columns[1].DataType, StringComparison.Ordinal);
        Assert.Contains(parent.Indexes, i => i.Name == "ux_parent_name" && i.IsUnique && i.Columns.SequenceEqual(["name"]));

        Assert.Equal(["id", "parent_id", "note"], child.Columns.Select(c => c.Name));
        Assert.True(child.Columns[2].IsNullable);
        Assert.Contains(child.Indexes, i => i.Name == "ix_child_parent" && !i.IsUnique && i.Columns.SequenceEqual(["parent_id"]));
        var fk = Assert.Single(child.ForeignKeys);
        Assert.Equal(["parent_id"], fk.Columns);
        Assert.Equal("parent", fk.ReferencedTable.Name);
        Assert.Equal(["id"], fk.ReferencedColumns);
    }

    [Fact]
    public async Task Introspects_composite_keys_and_indexes_in_declared_column_order()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using var connection = await OpenAsync(target);
        await ExecAsync(connection, "CREATE TABLE pair_parent (b INTEGER NOT NULL, a INTEGER NOT NULL, PRIMARY KEY (b, a))");
        await ExecAsync(connection, "CREATE TABLE pair_child (id INTEGER NOT NULL PRIMARY KEY, x INTEGER, y INTEGER, CONSTRAINT fk_pair FOREIGN KEY (y, x) REFERENCES pair_parent (b, a))");
        await ExecAsync(connection, "CREATE INDEX ix_pair_xy ON pair_child (x, y)");
        await ExecAsync(connection, "CREATE UNIQUE INDEX ux_pair_yx ON pair_child (y, x, id)");

        var tables = await Provider.GetTablesAsync(connection, CancellationToken.None);
        var parent = Assert.Single(tables, t => t.Name.Name == "pair_parent");
        var child = Assert.Single(tables, t => t.Name.Name == "pair_child");

        Assert.Equal(["b", "a"], parent.PrimaryKey);
        Assert.Contains(child.Indexes, i => i.Columns.SequenceEqual(["x", "y"]) && !i.IsUnique && !i.IsPrimaryKey);
        Assert.Contains(child.Indexes, i => i.Name == "ux_pair_yx" && i.Columns.SequenceEqual(["y", "x", "id"]) && i.IsUnique);
        var fk = Assert.Single(child.ForeignKeys);
        Assert.Equal(["y", "x"], fk.Columns);
        Assert.Equal("pair_parent", fk.ReferencedTable.Name);
        Assert.Equal(["b", "a"], fk.ReferencedColumns);
    }

    [Fact]
    public async Task Counts_rows_and_measures_the_database()
    {
        var (target, connection) = await SeededAsync();
        await using var _ = connection;

        var parent = (await Provider.GetTablesAsync(connection, CancellationToken.None)).Single(t => t.Name.Name == "parent");
        Assert.Equal(3, await Provider.CountRowsAsync(connection, parent.Name, CancellationToken.None));
        Assert.True(await Provider.GetDatabaseSizeAsync(target, connection, CancellationToken.None) > 0);
    }

    [Fact]
    public async Task Quotes_identifiers_with_quotes_and_spaces()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using var connection = await OpenAsync(target);
        var name = "we\"ird name";
        await ExecAsync(connection, $"CREATE TABLE {Provider.QuoteIdentifier(name)} ({Provider.QuoteIdentifier("col \"1\"")} INTEGER)");

        var table = Assert.Single(await Provider.GetTablesAsync(connection, CancellationToken.None), t => t.Name.Name == name);
        Assert.Equal(0, await Provider.CountRowsAsync(connection, table.Name, CancellationToken.None));
        Assert.Equal("col \"1\"", Assert.Single(table.Columns).Name);
    }

    [Fact]
    public async Task The_integrity_check_passes_on_a_healthy_database()
    {
        var (_, connection) = await SeededAsync();
        await using var _ = connection;

        var report = await Provider.CheckIntegrityAsync(connection, CancellationToken.None);
        Assert.True(report.Outcome == IntegrityOutcome.Passed, report.Message + string.Join("; ", report.Problems));
        Assert.Empty(report.Problems);
    }

    [Fact]
    public async Task The_privilege_probe_succeeds_and_leaves_nothing_behind()
    {
        var (_, connection) = await SeededAsync();
        await using var _ = connection;
        var before = (await Provider.GetTablesAsync(connection, CancellationToken.None)).Select(t => t.Name.ToString()).ToList();

        await Provider.ProbeSchemaPrivilegesAsync(connection, CancellationToken.None);

        var after = (await Provider.GetTablesAsync(connection, CancellationToken.None)).Select(t => t.Name.ToString()).ToList();
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Another_session_holding_a_write_transaction_is_reported()
    {
        var (target, connection) = await SeededAsync();
        await using var _ = connection;
        Assert.DoesNotContain(await Provider.GetOtherSessionsAsync(target, connection, CancellationToken.None), s => s.InTransaction);

        await using var other = await OpenAsync(target);
        await using var transaction = await other.BeginTransactionAsync();
        await using (var write = other.CreateCommand())
        {
            write.Transaction = transaction;
            write.CommandText = "UPDATE parent SET name = 'z' WHERE id = 3";
            await write.ExecuteNonQueryAsync();
        }

        var sessions = await Provider.GetOtherSessionsAsync(target, connection, CancellationToken.None);
        Assert.Contains(sessions, s => s.InTransaction);
        await transaction.RollbackAsync();
    }

    [Fact]
    public async Task A_pooled_session_ended_while_idle_is_replaced_not_handed_out()
    {
        var (target, connection) = await SeededAsync();
        // The killer stays open throughout, so the pool cannot hand it the idle session or the reopen below.
        await using var killer = await OpenAsync(target);
        await connection.DisposeAsync(); // back to the pool, idle

        var ended = await Provider.EndOtherSessionsAsync(target, killer, CancellationToken.None);
        Assert.Equal(Engine.Engine == DatabaseEngine.Sqlite ? 0 : 1, ended);

        await Task.Delay(200);
        await using var again = await OpenAsync(target);
        await using var read = again.CreateCommand();
        read.CommandText = "SELECT COUNT(*) FROM parent";
        Assert.Equal(3L, Convert.ToInt64(await read.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Ending_other_sessions_rolls_their_work_back_and_leaves_none()
    {
        var (target, connection) = await SeededAsync();
        await using var _ = connection;
        var other = await OpenAsync(target);
        var transaction = await other.BeginTransactionAsync();
        await using (var write = other.CreateCommand())
        {
            write.Transaction = transaction;
            write.CommandText = "UPDATE parent SET name = 'z' WHERE id = 3";
            await write.ExecuteNonQueryAsync();
        }

        var ended = await Provider.EndOtherSessionsAsync(target, connection, CancellationToken.None);

        if (Engine.Engine == DatabaseEngine.Sqlite)
        {
            // A file has no sessions to end: the writer keeps its transaction.
            Assert.Equal(0, ended);
            await transaction.RollbackAsync();
        }
        else
        {
            Assert.Equal(1, ended);
            Assert.Empty(await Provider.GetOtherSessionsAsync(target, connection, CancellationToken.None));
            await using var read = connection.CreateCommand();
            read.CommandText = "SELECT name FROM parent WHERE id = 3";
            Assert.Equal("c", await read.ExecuteScalarAsync());
        }

        // The ended connection fails on its next use; disposing it must not.
        try
        {
            await transaction.DisposeAsync();
            await other.DisposeAsync();
        }
        catch (DbException)
        {
        }
    }

    [Fact]
    public async Task A_statement_error_is_translated_with_its_sql()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using var connection = await OpenAsync(target);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM no_such_table";
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => command.ExecuteReaderAsync());

        var translated = Provider.TranslateException(ex, target, command.CommandText);
        Assert.NotNull(translated);
        Assert.Equal(ErrorIds.QueryStatementFailed, translated!.ErrorId);
        Assert.Equal("SELECT * FROM no_such_table", translated.Sql);
        Assert.Contains("no_such_table", translated.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lock_excludes_a_second_holder_in_the_same_process_until_released()
    {
        var target = await Engine.CreateDatabaseAsync();
        var first = await Provider.AcquireLockAsync(target, "conformance", TimeSpan.FromSeconds(5), CancellationToken.None);

        var ex = await Assert.ThrowsAsync<DbMigrationException>(() => Provider.AcquireLockAsync(target, "conformance", TimeSpan.FromMilliseconds(300), CancellationToken.None));
        Assert.Equal(ErrorIds.LockTimeout, ex.ErrorId);
        Assert.Equal(ErrorKind.ResourceBusy, ex.Kind);

        await first.DisposeAsync();
        await using var second = await Provider.AcquireLockAsync(target, "conformance", TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal("conformance", second.Name);
    }

    [Fact]
    public async Task A_lock_taken_on_the_callers_connection_excludes_others_and_leaves_the_connection_open_when_released()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using var connection = await Provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), CancellationToken.None);
        var held = await Provider.AcquireLockAsync(connection, target, "session", TimeSpan.FromSeconds(5), CancellationToken.None);

        var ex = await Assert.ThrowsAsync<DbMigrationException>(() => Provider.AcquireLockAsync(target, "session", TimeSpan.FromMilliseconds(300), CancellationToken.None));
        Assert.Equal(ErrorIds.LockTimeout, ex.ErrorId);

        await held.DisposeAsync();
        Assert.Equal(System.Data.ConnectionState.Open, connection.State);
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT 1";
            Assert.Equal(1L, Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture));
        }

        await using (var other = await Provider.AcquireLockAsync(target, "session", TimeSpan.FromSeconds(5), CancellationToken.None))
        {
            Assert.Equal("session", other.Name);
        }

        if (Provider.Engine == DatabaseEngine.Sqlite)
        {
            return; // SQLite's lock is a file, not part of a session
        }

        // Closing the session without disposing the lock releases it as well.
        var abandoned = await Provider.AcquireLockAsync(connection, target, "session", TimeSpan.FromSeconds(5), CancellationToken.None);
        Provider.ReleasePooledConnections(target);
        await connection.CloseAsync();
        Provider.ReleasePooledConnections(target);
        await using (var after = await Provider.AcquireLockAsync(target, "session", TimeSpan.FromSeconds(5), CancellationToken.None))
        {
            Assert.Equal("session", after.Name);
        }

        await abandoned.DisposeAsync();
    }

    [Fact]
    public async Task A_lock_held_by_another_process_excludes_this_one_and_the_reverse()
    {
        var target = await Engine.CreateDatabaseAsync();

        await using (var other = TestHostProcess.StartLock(target, password, "xproc", holdMs: 4000, timeoutMs: 10000))
        {
            Assert.Equal("ACQUIRED", await other.NextLineAsync(TimeSpan.FromSeconds(60)));
            var ex = await Assert.ThrowsAsync<DbMigrationException>(() => Provider.AcquireLockAsync(target, "xproc", TimeSpan.FromMilliseconds(500), CancellationToken.None));
            Assert.Equal(ErrorIds.LockTimeout, ex.ErrorId);
            Assert.Equal("RELEASED", await other.NextLineAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(0, await other.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }

        await using (await Provider.AcquireLockAsync(target, "xproc", TimeSpan.FromSeconds(5), CancellationToken.None))
        {
            await using var blocked = TestHostProcess.StartLock(target, password, "xproc", holdMs: 0, timeoutMs: 500);
            Assert.Equal("TIMEOUT", await blocked.NextLineAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(3, await blocked.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task A_lock_held_by_a_killed_process_is_released()
    {
        var target = await Engine.CreateDatabaseAsync();
        await using (var other = TestHostProcess.StartLock(target, password, "killed", holdMs: 60000, timeoutMs: 10000))
        {
            Assert.Equal("ACQUIRED", await other.NextLineAsync(TimeSpan.FromSeconds(60)));
            other.Kill();
            await other.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        await using var mine = await Provider.AcquireLockAsync(target, "killed", TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal("killed", mine.Name);
    }
}

public sealed class SqliteProviderConformanceTests() : ProviderConformanceTests(new SqliteEngine(), null), IDisposable
{
    public void Dispose() => ((SqliteEngine)Engine).Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlProviderConformanceTests(PostgresServer server) : ProviderConformanceTests(server, server.Password)
{
    protected override string? MoveSessionSql => "SET search_path TO pg_catalog; SET ROLE pg_monitor";
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbProviderConformanceTests(MariaDbServer server) : ProviderConformanceTests(server, server.Password)
{
    protected override string? MoveSessionSql => "USE information_schema";
}
