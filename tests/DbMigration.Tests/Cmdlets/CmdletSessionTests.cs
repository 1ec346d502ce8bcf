using DbMigration.Backups;
using DbMigration.PowerShell.Commands;
using DbMigration.Providers;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Cmdlets;

/// <summary>
/// A cmdlet that has returned leaves no session on the server: a DBA's DROP DATABASE or a session count right after
/// a runbook's Backup-Database must not find DbMigration's idle pooled connections there.
/// </summary>
public abstract class CmdletSessionTests(IEngineUnderTest engine, DatabaseTarget admin)
{
    protected IEngineUnderTest Engine { get; } = engine;

    /// <summary>SQL counting the sessions on database @db other than the asking one.</summary>
    protected abstract string SessionsOnDatabase { get; }

    private async Task<long> SessionsAsync(DatabaseTarget target)
    {
        var provider = DatabaseProviders.For(admin);
        await using var connection = await provider.OpenConnectionAsync(admin, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = SessionsOnDatabase;
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@db";
        parameter.Value = target.Database;
        command.Parameters.Add(parameter);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The sessions left on the database once the server has finished closing those that were closed.</summary>
    private async Task<long> SettledSessionsAsync(DatabaseTarget target)
    {
        var sessions = await SessionsAsync(target);
        for (var attempt = 0; sessions > 0 && attempt < 20; attempt++)
        {
            await Task.Delay(100);
            sessions = await SessionsAsync(target);
        }

        return sessions;
    }

    [Fact]
    public async Task Backup_and_query_cmdlets_leave_no_idle_session_on_the_database()
    {
        var target = await Engine.CreateDatabaseAsync();
        using var repository = new TempDirectory();

        var query = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = "CREATE TABLE kept (id INT PRIMARY KEY); INSERT INTO kept VALUES (1)" }.Invoke(query, CancellationToken.None);
        Assert.Empty(query.Errors);
        Assert.Equal(0, await SettledSessionsAsync(target));

        // The built-in dump reads on two connections at once, so two sessions went back to the pool.
        var backup = new RecordingHost(repository.Path);
        new BackupDatabaseCommand { Database = target, Path = repository.Path, DumpMethod = BackupDumpMethod.BuiltIn }.Invoke(backup, CancellationToken.None);
        Assert.Empty(backup.Errors);
        Assert.Single(backup.ObjectsOf<BackupInfo>());
        Assert.Equal(0, await SettledSessionsAsync(target));

        // While a cmdlet runs, its session is there: the count above is not blind.
        var provider = DatabaseProviders.For(target);
        await using (var open = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            Assert.Equal(1, await SessionsAsync(target));
        }
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlCmdletSessionTests(PostgresServer server) : CmdletSessionTests(server, server.Admin)
{
    protected override string SessionsOnDatabase => "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = @db AND pid <> pg_backend_pid()";
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbCmdletSessionTests(MariaDbServer server) : CmdletSessionTests(server, server.Admin)
{
    protected override string SessionsOnDatabase => "SELECT COUNT(*) FROM information_schema.processlist WHERE db = @db AND id <> CONNECTION_ID()";
}
