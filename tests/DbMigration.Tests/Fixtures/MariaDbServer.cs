using System.Diagnostics;
using System.Net.Sockets;
using DbMigration.Targets;

namespace DbMigration.Tests.Fixtures;

/// <summary>
/// A throwaway MariaDB server (mariadb-install-db + mariadbd) on a free loopback port in a temp folder, run as the
/// mysql user when the tests run as root. DBMIGRATION_TEST_MARIADB (a mariadb:// URI) uses an existing server.
/// Set-up statements go through the mariadb CLI on the socket, independently of the client under test.
/// </summary>
public sealed class MariaDbServer : IAsyncLifetime, IEngineUnderTest
{
    public const string EnvironmentVariable = "DBMIGRATION_TEST_MARIADB";
    private const string ServiceUser = "mysql";
    private string? _directory;
    private Process? _server;

    public DatabaseEngine Engine => DatabaseEngine.MySql;

    public DatabaseTarget Admin { get; private set; } = null!;

    public string Password { get; private set; } = string.Empty;

    public int Port { get; private set; }

    public string? Socket { get; private set; }

    /// <summary>The CA that signed the server's TLS certificate (issued for "localhost"); null for an external server.</summary>
    public string? CertificateAuthorityFile { get; private set; }

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } uri)
        {
            Admin = DatabaseTarget.Parse(uri);
            Port = Admin.Port ?? 3306;
            return;
        }

        var installDb = ProcessRunner.FindBinary("mariadb-install-db", "DBMIGRATION_MARIADB_BINDIR");
        var mariadbd = ProcessRunner.FindBinary("mariadbd", "DBMIGRATION_MARIADB_BINDIR");
        var asRoot = ProcessRunner.IsRoot;
        _directory = await ProcessRunner.CreateServiceDirectoryAsync("dbm-maria", asRoot ? ServiceUser : null);
        var data = Path.Combine(_directory, "data");
        var userArgs = asRoot ? new[] { "--user=" + ServiceUser } : [];
        await ProcessRunner.RunCheckedAsync(installDb,
            ["--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db", .. userArgs],
            TimeSpan.FromMinutes(3));

        var tls = await CreateCertificatesAsync(_directory);
        CertificateAuthorityFile = tls.Ca;
        if (asRoot)
        {
            await ProcessRunner.RunCheckedAsync("chown", ["-R", ServiceUser + ":", _directory], TimeSpan.FromSeconds(30));
        }

        Port = ProcessRunner.FreeTcpPort();
        Socket = Path.Combine(_directory, "mysqld.sock");
        var info = ProcessRunner.StartInfo(mariadbd,
        [
            "--no-defaults", "--datadir=" + data, "--socket=" + Socket, "--port=" + Port, "--bind-address=127.0.0.1",
            "--pid-file=" + Path.Combine(_directory, "mysqld.pid"), "--log-error=" + Path.Combine(_directory, "error.log"),
            "--skip-name-resolve", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci", "--innodb-buffer-pool-size=128M", "--max-allowed-packet=64M", "--local-infile=1",
            "--innodb-flush-log-at-trx-commit=2", "--ssl-ca=" + tls.Ca, "--ssl-cert=" + tls.Cert, "--ssl-key=" + tls.Key,
            "--plugin-load-add=auth_ed25519",
            // Binary logging on, as on a server with replicas or point-in-time recovery: it limits what some writes may do.
            "--log-bin=" + Path.Combine(_directory, "binlog"), "--server-id=1", "--binlog-format=MIXED", .. userArgs,
        ]);
        _server = Process.Start(info) ?? throw new InvalidOperationException("Could not start mariadbd.");

        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!await CanConnectAsync())
        {
            if (_server.HasExited || DateTime.UtcNow > deadline)
            {
                var log = File.Exists(Path.Combine(_directory, "error.log")) ? await File.ReadAllTextAsync(Path.Combine(_directory, "error.log")) : "(no log)";
                throw new InvalidOperationException("mariadbd did not start.\n" + log);
            }

            await Task.Delay(200);
        }

        Password = "pw-" + Guid.NewGuid().ToString("N")[..12];
        await RunSqlAsync($"CREATE USER 'dbm'@'%' IDENTIFIED BY '{Password}'; GRANT ALL PRIVILEGES ON *.* TO 'dbm'@'%' WITH GRANT OPTION; FLUSH PRIVILEGES;");
        Admin = DatabaseTarget.Parse($"mariadb://dbm@127.0.0.1:{Port}/mysql").WithCredential("dbm", Password);
    }

    /// <summary>Runs SQL through the mariadb CLI as root on the server's socket.</summary>
    public async Task<string> RunSqlAsync(string sql)
    {
        var client = ProcessRunner.FindBinary("mariadb", "DBMIGRATION_MARIADB_BINDIR");
        var result = await ProcessRunner.RunCheckedAsync(client, ["--no-defaults", "--socket=" + Socket, "-uroot", "--batch", "--skip-column-names", "-e", sql], TimeSpan.FromMinutes(2));
        return result.StandardOutput;
    }

    public async Task<DatabaseTarget> CreateDatabaseAsync()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..12];
        await RunSqlAsync($"CREATE DATABASE `{name}`");
        return Admin.WithDatabase(name);
    }

    /// <summary>A connection string for DbMigration's own client, as the test user.</summary>
    public string ConnectionString(string? database = null, string extra = "") =>
        $"Server=127.0.0.1;Port={Port};User ID=dbm;Password={Password};Database={database ?? string.Empty};{extra}";

    /// <summary>A throwaway CA and a server certificate for "localhost", made with the openssl CLI.</summary>
    private static async Task<(string Ca, string Cert, string Key)> CreateCertificatesAsync(string directory)
    {
        var ca = Path.Combine(directory, "ca.pem");
        var caKey = Path.Combine(directory, "ca-key.pem");
        var key = Path.Combine(directory, "server-key.pem");
        var csr = Path.Combine(directory, "server.csr");
        var cert = Path.Combine(directory, "server-cert.pem");
        var ext = Path.Combine(directory, "san.ext");
        var timeout = TimeSpan.FromMinutes(1);
        await ProcessRunner.RunCheckedAsync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=DbMigration Test CA", "-keyout", caKey, "-out", ca], timeout);
        await ProcessRunner.RunCheckedAsync("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr], timeout);
        await File.WriteAllTextAsync(ext, "subjectAltName=DNS:localhost\n");
        await ProcessRunner.RunCheckedAsync("openssl", ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert], timeout);
        return (ca, cert, key);
    }

    private async Task<bool> CanConnectAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            if (!_server.HasExited)
            {
                _server.Kill(entireProcessTree: true);
                await _server.WaitForExitAsync();
            }

            _server.Dispose();
        }

        if (_directory is not null)
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
public sealed class MariaDbCollection : ICollectionFixture<MariaDbServer>
{
    public const string Name = "MariaDB server";
}
