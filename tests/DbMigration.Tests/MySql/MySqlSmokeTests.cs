using DbMigration.MySql;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.MySql;

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbClientSmokeTests(MariaDbServer server)
{
    [Fact]
    public async Task Connects_and_selects()
    {
        await using var connection = new MySqlConnection($"Server=127.0.0.1;Port={server.Port};User ID=dbm;Password={server.Password};Pooling=false");
        await connection.OpenAsync();
        await using var command = new MySqlCommand("SELECT 1 AS one, 'two' AS two, NULL AS three, VERSION() AS v", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(1, Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("two", reader.GetString(1));
        Assert.True(reader.IsDBNull(2));
        Assert.Contains("MariaDB", reader.GetString(3), StringComparison.Ordinal);
        Assert.False(await reader.ReadAsync());
    }
}
