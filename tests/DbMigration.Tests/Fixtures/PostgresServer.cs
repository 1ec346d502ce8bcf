using DbMigration.Targets;
using Npgsql;

namespace DbMigration.Tests.Fixtures;

/// <summary>
/// A throwaway PostgreSQL server on a free loopback port in a temp folder, run as the postgres user when the
/// tests run as root. DBMIGRATION_TEST_POSTGRES (a postgres:// URI of a superuser) uses an existing server instead.
/// Host connections need a password (scram-sha-256), so wrong-password paths are real.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime, IEngineUnderTest
{
    public const string EnvironmentVariable = "DBMIGRATION_TEST_POSTGRES";
    private const string ServiceUser = "postgres";
    private string? _directory;
    private string? _pgCtl;

    public DatabaseEngine Engine => DatabaseEngine.PostgreSql;

    /// <summary>The superuser on the maintenance database, with its password.</summary>
    public DatabaseTarget Admin { get; private set; } = null!;

    public string Password { get; private set; } = string.Empty;

    public int Port { get; private set; }

    /// <summary>The folder of the throwaway server's Unix socket; null for a server given by URI.</summary>
    public string? SocketFolder => _directory;

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } uri)
        {
            Admin = DatabaseTarget.Parse(uri);
            Port = Admin.Port ?? 5432;
            return;
        }

        var initdb = ProcessRunner.FindBinary("initdb", "DBMIGRATION_PG_BINDIR", "/usr/lib/postgresql");
        _pgCtl = Path.Combine(Path.GetDirectoryName(initdb)!, "pg_ctl");
        _directory = await ProcessRunner.CreateServiceDirectoryAsync("dbm-pg", ServiceUser);
        Password = "pw-" + Guid.NewGuid().ToString("N")[..12];
        var passwordFile = Path.Combine(_directory, "pwfile");
        await File.WriteAllTextAsync(passwordFile, Password + "\n");
        if (ProcessRunner.IsRoot)
        {
            await ProcessRunner.RunCheckedAsync("chown", [ServiceUser + ":", passwordFile], TimeSpan.FromSeconds(10));
        }

        var data = Path.Combine(_directory, "data");
        await ProcessRunner.RunCheckedAsync(initdb,
            ["-D", data, "-U", "postgres", "--pwfile=" + passwordFile, "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "-N"],
            TimeSpan.FromMinutes(3), ServiceUser);

        Port = ProcessRunner.FreeTcpPort();
        var options = $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200";
        await ProcessRunner.RunCheckedAsync(_pgCtl,
            ["-D", data, "-l", Path.Combine(_directory, "server.log"), "-w", "-t", "120", "-o", options, "start"],
            TimeSpan.FromMinutes(3), ServiceUser);

        Admin = DatabaseTarget.Parse($"postgres://postgres@127.0.0.1:{Port}/postgres").WithCredential("postgres", Password);
    }

    public string AdminConnectionString =>
        DbMigration.Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(Admin, TimeSpan.FromSeconds(15)) + ";Pooling=false";

    public async Task<DatabaseTarget> CreateDatabaseAsync()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return Admin.WithDatabase(name);
    }

    public async Task ExecuteAsync(DatabaseTarget database, string sql)
    {
        await using var connection = new NpgsqlConnection(DbMigration.Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(database, TimeSpan.FromSeconds(15)) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_directory is null || _pgCtl is null)
        {
            return;
        }

        try
        {
            await ProcessRunner.RunAsync(_pgCtl, ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"], TimeSpan.FromMinutes(1), ServiceUser);
        }
        finally
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL server";
}
