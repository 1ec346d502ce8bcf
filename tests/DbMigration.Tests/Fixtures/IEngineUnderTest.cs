using DbMigration.Targets;

namespace DbMigration.Tests.Fixtures;

/// <summary>A real engine the suites run against: each call gives a fresh, empty database.</summary>
public interface IEngineUnderTest
{
    DatabaseEngine Engine { get; }

    Task<DatabaseTarget> CreateDatabaseAsync();
}

/// <summary>SQLite: a fresh database file in a temp folder per call.</summary>
public sealed class SqliteEngine : IEngineUnderTest, IDisposable
{
    private readonly TempDirectory _directory = new();

    public DatabaseEngine Engine => DatabaseEngine.Sqlite;

    public string Directory => _directory.Path;

    public async Task<DatabaseTarget> CreateDatabaseAsync()
    {
        var path = _directory.File("db-" + Guid.NewGuid().ToString("N")[..8] + ".db");
        SQLitePCL.Batteries_V2.Init();
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 1;";
            await command.ExecuteNonQueryAsync();
        }

        return DatabaseTarget.FromFile(path);
    }

    public void Dispose() => _directory.Dispose();
}
