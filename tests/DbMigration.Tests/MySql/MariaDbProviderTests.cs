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

    [Fact]
    public async Task A_refused_statement_carries_its_text_into_the_translated_error()
    {
        var target = await server.CreateDatabaseAsync();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var command = connection.CreateCommand();
        // The second statement fails, after the first one's result: the error still names the command.
        command.CommandText = "SELECT 1; SELECT no_such_column FROM no_such_table WHERE id = @id";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@id";
        parameter.Value = "s3cret";
        command.Parameters.Add(parameter);
        var error = await Assert.ThrowsAsync<MySqlException>(async () =>
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.NextResultAsync())
            {
            }
        });
        Assert.Equal(command.CommandText, error.CommandText);

        // A driver error that reaches a cmdlet untranslated gets its SQL from there, parameters unsubstituted.
        var translated = provider.TranslateException(error, target, null)!;
        Assert.Equal(command.CommandText, translated.Sql);
        Assert.DoesNotContain("s3cret", translated.Sql, StringComparison.Ordinal);
        Assert.Equal(1146, translated.ServerErrorNumber);
    }
}
