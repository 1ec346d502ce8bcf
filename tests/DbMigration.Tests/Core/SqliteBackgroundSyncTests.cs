using DbMigration.Providers.Sqlite;
using Microsoft.Data.Sqlite;

namespace DbMigration.Tests.Core;

/// <summary>
/// The early flush reaches the VFS through SQLite's own file handle: it must succeed in both journal modes, mid
/// transaction, and leave a database that commits, or rolls back, whole.
/// </summary>
public sealed class SqliteBackgroundSyncTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("dbm-sync-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Theory]
    [InlineData("delete", true)]
    [InlineData("delete", false)]
    [InlineData("wal", true)]
    [InlineData("wal", false)]
    public async Task Flushes_mid_transaction_and_the_transaction_still_commits_or_rolls_back_whole(string journalMode, bool commit)
    {
        var path = Path.Combine(_folder, $"{journalMode}-{commit}.db");
        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            Execute(connection, $"PRAGMA journal_mode = {journalMode}; PRAGMA cache_size = 50; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); INSERT INTO t (v) VALUES ('before')");
            var sync = new SqliteBackgroundSync(connection, walMode: journalMode == "wal", enabled: true);
            using (var transaction = connection.BeginTransaction())
            {
                // Far more than the 50-page cache holds, so pages spill to the file before the flush.
                Execute(connection, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO t (v) SELECT printf('%0200d', i) FROM n", transaction);
                sync.Nudge();
                Assert.Equal(0, await sync.WhenIdleAsync());
                Execute(connection, "INSERT INTO t (v) VALUES ('after the flush')", transaction);
                sync.Nudge();
                Assert.Equal(0, await sync.WhenIdleAsync());
                if (commit)
                {
                    transaction.Commit();
                }
                else
                {
                    transaction.Rollback();
                }
            }
        }

        await using var check = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        await check.OpenAsync();
        Assert.Equal("ok", Scalar(check, "PRAGMA integrity_check"));
        Assert.Equal(commit ? 20_002L : 1L, Scalar(check, "SELECT COUNT(*) FROM t"));
    }

    [Fact]
    public async Task Does_nothing_when_disabled()
    {
        await using var connection = new SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync();
        var sync = new SqliteBackgroundSync(connection, walMode: false, enabled: false);
        sync.Nudge();
        Assert.True(sync.WhenIdleAsync().IsCompletedSuccessfully);
        Assert.Equal(0, await sync.WhenIdleAsync());
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
