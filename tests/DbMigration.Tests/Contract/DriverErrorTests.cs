using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;
using Microsoft.Data.Sqlite;

namespace DbMigration.Tests.Contract;

/// <summary>A driver exception that reaches the cmdlet layer untranslated still leaves with a stable id.</summary>
public sealed class DriverErrorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Logic that lets a real SQLite error through, as a core path without its own translation would.</summary>
    private sealed class UntranslatedQuery : DatabaseCmdlet
    {
        internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
        {
            await using var connection = new SqliteConnection($"Data Source={Database.FilePath};Pooling=False");
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT * FROM no_such_table";
            await command.ExecuteScalarAsync(cancellationToken);
        }
    }

    [Fact]
    public void A_driver_exception_is_translated_by_the_targets_provider()
    {
        var path = _dir.File("app.db");
        using (var create = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            create.Open();
        }

        var error = Assert.Throws<DbMigrationException>(() => new UntranslatedQuery { Database = DatabaseTarget.FromFile(path) }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.QueryStatementFailed, error.ErrorId);
        Assert.Contains("no such table", error.Message, StringComparison.Ordinal);
        Assert.IsType<SqliteException>(error.InnerException);
    }
}
