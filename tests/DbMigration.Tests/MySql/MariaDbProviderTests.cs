using System.Globalization;
using DbMigration.MySql;
using DbMigration.Providers;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.MySql;

/// <summary>What the MySQL provider adds on MariaDB beyond the shared conformance suite.</summary>
[Collection(MariaDbCollection.Name)]
public sealed class MariaDbProviderTests(MariaDbServer server)
{
    [Fact]
    public async Task Sessions_are_pinned_to_UTC_and_MariaDB_reports_native_uuid()
    {
        var target = await server.CreateDatabaseAsync();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT @@session.time_zone";
        Assert.Equal("+00:00", await command.ExecuteScalarAsync());

        var info = await provider.GetServerInfoAsync(connection, CancellationToken.None);
        Assert.Equal("MariaDB", info.Product);
        var capabilities = provider.GetCapabilities(info);
        Assert.True(capabilities.NativeUuid);
        Assert.False(capabilities.TransactionalDdl);
        Assert.False(provider.GetCapabilities(info with { Version = new Version(10, 6) }).NativeUuid);
    }

    [Fact]
    public async Task Last_insert_id_and_warning_counts_are_reported()
    {
        await using var connection = new MySqlConnection(server.ConnectionString((await server.CreateDatabaseAsync()).Database));
        await connection.OpenAsync();
        await using (var create = new MySqlCommand("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT)", connection))
        {
            await create.ExecuteNonQueryAsync();
        }

        await using var insert = new MySqlCommand("SET SESSION sql_mode = ''; INSERT INTO a (v) VALUES (1), (2); INSERT INTO a (v) VALUES (999)", connection);
        Assert.Equal(3, await insert.ExecuteNonQueryAsync());
        Assert.Equal(3, insert.LastInsertedId);
        Assert.Equal(1, insert.WarningCount);
        await using var check = new MySqlCommand("SELECT v FROM a WHERE id = 3", connection);
        Assert.Equal(127, Convert.ToInt32(await check.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
    }
}
