using System.Net.Sockets;
using System.Text;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Engines;

/// <summary>
/// The MariaDB fixture the MySQL client issue builds on: a real server starts, greets with handshake v10 and
/// accepts the test user over TCP (checked with the mariadb CLI, independently of our client).
/// </summary>
[Collection(MariaDbCollection.Name)]
public sealed class MariaDbServerTests(MariaDbServer server)
{
    [Fact]
    public async Task The_server_greets_with_protocol_10_and_a_MariaDB_version()
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", server.Port);
        var stream = client.GetStream();
        var header = new byte[4];
        await stream.ReadExactlyAsync(header);
        var length = header[0] | header[1] << 8 | header[2] << 16;
        var payload = new byte[length];
        await stream.ReadExactlyAsync(payload);

        Assert.Equal(0, header[3]);
        Assert.Equal(10, payload[0]);
        var version = Encoding.ASCII.GetString(payload, 1, Array.IndexOf(payload, (byte)0, 1) - 1);
        Assert.Contains("MariaDB", version, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_test_user_authenticates_over_tcp_and_can_create_databases()
    {
        var database = (await server.CreateDatabaseAsync()).Database!;
        var client = ProcessRunner.FindBinary("mariadb", "DBMIGRATION_MARIADB_BINDIR");
        var result = await ProcessRunner.RunCheckedAsync(client,
            ["--no-defaults", "-h", "127.0.0.1", "-P", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-u", "dbm", "--batch", "--skip-column-names", database, "-e", "SELECT DATABASE(), CURRENT_USER()"],
            TimeSpan.FromSeconds(60),
            environment: new Dictionary<string, string> { ["MYSQL_PWD"] = server.Password });

        Assert.Contains(database, result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("dbm@%", result.StandardOutput, StringComparison.Ordinal);
    }
}
