using System.Data;
using System.Globalization;
using System.Text;
using Dapper;
using DbMigration.MySql;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.MySql;

/// <summary>DbMigration's own MySQL client against a real MariaDB 10.11 started by the fixture.</summary>
[Collection(MariaDbCollection.Name)]
public sealed class MariaDbClientTests(MariaDbServer server)
{
    private async Task<MySqlConnection> OpenAsync(string? database = null, string extra = "")
    {
        var connection = new MySqlConnection(server.ConnectionString(database, extra));
        await connection.OpenAsync();
        return connection;
    }

    private async Task<string> NewDatabaseAsync() => (await server.CreateDatabaseAsync()).Database!;

    private static async Task<object?> ScalarAsync(MySqlConnection connection, string sql)
    {
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private static async Task ExecAsync(MySqlConnection connection, string sql)
    {
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Theory]
    [InlineData("None", false)]
    [InlineData("Preferred", true)]
    [InlineData("Required", true)]
    public async Task Authenticates_with_and_without_tls(string sslMode, bool encrypted)
    {
        await using var connection = await OpenAsync(extra: $"SslMode={sslMode};Pooling=false");
        Assert.Equal(encrypted, connection.IsEncrypted);
        var cipher = (string)(await ScalarAsync(connection, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'"))!;
        Assert.Equal(encrypted, cipher.Length > 0);
    }

    [Fact]
    public async Task VerifyCA_trusts_the_given_CA_and_rejects_an_unknown_one()
    {
        await using (var trusted = await OpenAsync(extra: $"SslMode=VerifyCA;SslCa={server.CertificateAuthorityFile};Pooling=false"))
        {
            Assert.True(trusted.IsEncrypted);
        }

        var ex = await Assert.ThrowsAsync<MySqlException>(() => OpenAsync(extra: "SslMode=VerifyCA;Pooling=false"));
        Assert.Equal(MySqlClientError.SslConnectionError, ex.Number);
        Assert.Contains("TLS", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyFull_checks_the_host_name()
    {
        var byName = new MySqlConnection($"Server=localhost;Port={server.Port};User ID=dbm;Password={server.Password};SslMode=VerifyFull;SslCa={server.CertificateAuthorityFile};Pooling=false");
        await byName.OpenAsync();
        Assert.True(byName.IsEncrypted);
        await byName.DisposeAsync();

        var ex = await Assert.ThrowsAsync<MySqlException>(() => OpenAsync(extra: $"SslMode=VerifyFull;SslCa={server.CertificateAuthorityFile};Pooling=false"));
        Assert.Equal(MySqlClientError.SslConnectionError, ex.Number);
    }

    [Fact]
    public async Task A_wrong_password_fails_with_1045_and_names_the_user()
    {
        var connection = new MySqlConnection($"Server=127.0.0.1;Port={server.Port};User ID=dbm;Password=wrong-one;Pooling=false");
        var ex = await Assert.ThrowsAsync<MySqlException>(() => connection.OpenAsync());

        Assert.Equal(1045, ex.Number);
        Assert.Equal("28000", ex.SqlState);
        Assert.Contains("Authentication failed for user 'dbm'", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-one", ex.ToString(), StringComparison.Ordinal);
        Assert.Equal(ConnectionState.Closed, connection.State);
    }

    [Fact]
    public async Task An_unsupported_authentication_plugin_is_named()
    {
        var user = "ed_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('pw-ed')");
        var connection = new MySqlConnection($"Server=127.0.0.1;Port={server.Port};User ID={user};Password=pw-ed;Pooling=false");

        var ex = await Assert.ThrowsAsync<MySqlException>(() => connection.OpenAsync());
        Assert.Equal(MySqlClientError.AuthPluginNotSupported, ex.Number);
        Assert.Contains("client_ed25519", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_account_that_requires_tls_is_refused_without_it()
    {
        var user = "tls_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-tls' REQUIRE SSL");

        var plain = new MySqlConnection($"Server=127.0.0.1;Port={server.Port};User ID={user};Password=pw-tls;SslMode=None;Pooling=false");
        var ex = await Assert.ThrowsAsync<MySqlException>(() => plain.OpenAsync());
        Assert.Equal(1045, ex.Number);
        Assert.Contains("TLS", ex.Message, StringComparison.Ordinal);

        await using var secure = new MySqlConnection($"Server=127.0.0.1;Port={server.Port};User ID={user};Password=pw-tls;SslMode=Required;Pooling=false");
        await secure.OpenAsync();
        Assert.True(secure.IsEncrypted);
    }

    [Fact]
    public async Task Connects_through_the_unix_socket()
    {
        await using var connection = new MySqlConnection($"Server={server.Socket};User ID=root;Pooling=false");
        await connection.OpenAsync();
        Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(connection, "SELECT 1"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_closed_port_is_reported_as_refused()
    {
        var connection = new MySqlConnection($"Server=127.0.0.1;Port={ProcessRunner.FreeTcpPort()};User ID=x;Pooling=false");
        var ex = await Assert.ThrowsAsync<MySqlException>(() => connection.OpenAsync());
        Assert.Equal(MySqlClientError.ConnectionRefused, ex.Number);
        Assert.Contains("refused", ex.Message, StringComparison.Ordinal);
    }

    private const string TypesTable = """
        CREATE TABLE types (
            id INT PRIMARY KEY,
            t TINYINT, tu TINYINT UNSIGNED, b1 TINYINT(1), s SMALLINT, su SMALLINT UNSIGNED, m MEDIUMINT, mu MEDIUMINT UNSIGNED,
            i INT, iu INT UNSIGNED, l BIGINT, lu BIGINT UNSIGNED,
            d65 DECIMAL(65,30), d18 DECIMAL(18,4), f FLOAT, dbl DOUBLE,
            bit1 BIT(1), bit64 BIT(64), y YEAR,
            dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6),
            c CHAR(10), vc VARCHAR(100), tx TEXT, lat VARCHAR(50) CHARACTER SET latin1, u3 VARCHAR(50) CHARACTER SET utf8mb3,
            bin BINARY(4), vb VARBINARY(100), bl LONGBLOB,
            js JSON, en ENUM('a','b','c'), st SET('x','y','z'), uu UUID
        ) CHARACTER SET utf8mb4
        """;

    private static readonly string[] TypeColumns =
        ["id", "t", "tu", "b1", "s", "su", "m", "mu", "i", "iu", "l", "lu", "d65", "d18", "f", "dbl", "bit1", "bit64", "y", "dt", "dtm", "ts", "tm", "c", "vc", "tx", "lat", "u3", "bin", "vb", "bl", "js", "en", "st", "uu"];

    public static TheoryData<bool> SyncAndAsync => new() { false, true };

    [Theory]
    [MemberData(nameof(SyncAndAsync))]
    public async Task Every_type_round_trips_with_nulls_and_edge_values(bool useAsync)
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "SET time_zone = '+00:00'; " + TypesTable);

        object?[] min =
        [
            1, (sbyte)-128, (byte)0, false, short.MinValue, ushort.MinValue, -8388608, 0u, int.MinValue, uint.MinValue, long.MinValue, ulong.MinValue,
            new MySqlDecimal("-12345678901234567890123456789012345.123456789012345678901234567891"), -99999999999999.9999m, -0.25f, double.MinValue,
            false, 0UL, 1901,
            new DateTime(1000, 1, 1), new DateTime(1000, 1, 1, 0, 0, 0), new DateTime(1970, 1, 1, 0, 0, 1), new TimeSpan(-838, -59, -59),
            string.Empty, string.Empty, string.Empty, "Ünïcödé ÿ", "utf8mb3 ✓", new byte[] { 0, 0, 0, 0 }, Array.Empty<byte>(), Array.Empty<byte>(),
            "{}", "a", string.Empty, Guid.Empty,
        ];
        object?[] max =
        [
            2, (sbyte)127, (byte)255, true, short.MaxValue, ushort.MaxValue, 8388607, 16777215u, int.MaxValue, uint.MaxValue, long.MaxValue, ulong.MaxValue,
            new MySqlDecimal("99999999999999999999999999999999999.999999999999999999999999999999"), 99999999999999.9999m, 1.5f, double.MaxValue,
            true, ulong.MaxValue, 2155,
            new DateTime(9999, 12, 31), new DateTime(9999, 12, 31, 23, 59, 59).AddTicks(9_999_990), new DateTime(2038, 1, 19, 3, 14, 7).AddTicks(9_999_990), new TimeSpan(0, 838, 59, 59, 999).Add(TimeSpan.FromTicks(9990)),
            "ten chars!", "quote ' backslash \\ tab \t nul \0 emoji 🦀 end", new string('x', 5000) + "🚀", "latin1 ©", "bmp only ✓", new byte[] { 1, 0xFF, 0x27, 0x5C }, new byte[] { 0, 1, 2, 0x27, 0x5C, 0xFF }, Enumerable.Range(0, 70000).Select(i => (byte)i).ToArray(),
            "{\"k\": [1, 2, {\"n\": null}], \"s\": \"é\"}", "c", "x,z", Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
        ];
        object?[] nulls = [3, .. Enumerable.Repeat<object?>(null, TypeColumns.Length - 1)];

        foreach (var row in new[] { min, max, nulls })
        {
            await using var insert = new MySqlCommand($"INSERT INTO types ({string.Join(", ", TypeColumns)}) VALUES ({string.Join(", ", TypeColumns.Select(c => "@" + c))})", connection);
            for (var i = 0; i < TypeColumns.Length; i++)
            {
                insert.Parameters.AddWithValue("@" + TypeColumns[i], row[i]);
            }

            Assert.Equal(1, useAsync ? await insert.ExecuteNonQueryAsync() : insert.ExecuteNonQuery());
        }

        await using var select = new MySqlCommand($"SELECT {string.Join(", ", TypeColumns)} FROM types ORDER BY id", connection);
        await using var reader = useAsync ? (MySqlDataReader)await select.ExecuteReaderAsync() : select.ExecuteReader();
        Assert.Equal(typeof(sbyte), reader.GetFieldType(1));
        Assert.Equal(typeof(bool), reader.GetFieldType(3));
        Assert.Equal(typeof(ulong), reader.GetFieldType(11));
        Assert.Equal(typeof(MySqlDecimal), reader.GetFieldType(12));
        Assert.Equal(typeof(decimal), reader.GetFieldType(13));
        Assert.Equal(typeof(TimeSpan), reader.GetFieldType(22));
        Assert.Equal(typeof(byte[]), reader.GetFieldType(29));
        Assert.Equal(typeof(string), reader.GetFieldType(26));
        foreach (var expected in new[] { min, max, nulls })
        {
            Assert.True(useAsync ? await reader.ReadAsync() : reader.Read());
            for (var i = 0; i < TypeColumns.Length; i++)
            {
                var actual = reader.GetValue(i);
                var want = expected[i] ?? DBNull.Value;
                if (TypeColumns[i] == "uu" && actual is string text)
                {
                    Assert.Equal(want, Guid.Parse(text));
                    Assert.Equal(want, reader.GetGuid(i));
                }
                else
                {
                    Assert.True(Equals(want, actual) || want is byte[] wb && actual is byte[] ab && wb.SequenceEqual(ab),
                        $"column {TypeColumns[i]}: expected {Describe(want)}, got {Describe(actual)}");
                }
            }
        }

        Assert.False(useAsync ? await reader.ReadAsync() : reader.Read());
    }

    private static string Describe(object? value) => value switch
    {
        null => "null",
        byte[] bytes => $"byte[{bytes.Length}]",
        _ => $"{value} ({value.GetType().Name})",
    };

    [Fact]
    public async Task Twenty_megabyte_blobs_round_trip_across_16_MB_packets()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB)");
        var blob = new byte[20 * 1024 * 1024];
        new Random(5).NextBytes(blob);

        await using (var insert = new MySqlCommand("INSERT INTO blobs VALUES (1, @data), (2, @empty)", connection))
        {
            insert.Parameters.AddWithValue("data", blob);
            insert.Parameters.AddWithValue("empty", Array.Empty<byte>());
            Assert.Equal(2, await insert.ExecuteNonQueryAsync());
        }

        await using var select = new MySqlCommand("SELECT data, LENGTH(data), SHA2(data, 256) FROM blobs ORDER BY id", connection);
        await using var reader = await select.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(blob, (byte[])reader.GetValue(0));
        Assert.Equal(blob.LongLength, Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(blob)), reader.GetString(2).ToUpperInvariant());
        Assert.True(await reader.ReadAsync());
        Assert.Empty((byte[])reader.GetValue(0));
    }

    [Fact]
    public async Task Multiple_result_sets_stream_in_order_with_rows_affected()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "CREATE TABLE n (v INT); INSERT INTO n VALUES (1), (2), (3)");

        await using var command = new MySqlCommand("SELECT v FROM n ORDER BY v; UPDATE n SET v = v + 10 WHERE v > 1; SELECT 'a' AS x, 'b' AS y; DELETE FROM n WHERE v = 1", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var first = new List<int>();
        while (await reader.ReadAsync())
        {
            first.Add(reader.GetInt32(0));
        }

        Assert.Equal([1, 2, 3], first);
        Assert.True(await reader.NextResultAsync());
        Assert.Equal(["x", "y"], [reader.GetName(0), reader.GetName(1)]);
        Assert.True(await reader.ReadAsync());
        Assert.Equal("b", reader.GetString(1));
        Assert.False(await reader.NextResultAsync());
        Assert.Equal(3, reader.RecordsAffected);
    }

    [Fact]
    public async Task Server_errors_keep_their_number_and_sqlstate_and_the_connection_survives()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        var missing = await Assert.ThrowsAsync<MySqlException>(() => ScalarAsync(connection, "SELECT * FROM no_such_table"));
        Assert.Equal(1146, missing.Number);
        Assert.Equal("42S02", missing.SqlState);

        await ExecAsync(connection, "CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (1)");
        var duplicate = await Assert.ThrowsAsync<MySqlException>(() => ExecAsync(connection, "INSERT INTO u VALUES (1)"));
        Assert.Equal(1062, duplicate.Number);
        Assert.Equal("23000", duplicate.SqlState);

        var syntax = await Assert.ThrowsAsync<MySqlException>(() => ExecAsync(connection, "SELEKT 1"));
        Assert.Equal(1064, syntax.Number);

        Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(connection, "SELECT COUNT(*) FROM u"), CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("")]
    [InlineData("NO_BACKSLASH_ESCAPES")]
    public async Task Hostile_strings_round_trip_exactly_in_both_escaping_modes(string sqlMode)
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, $"SET SESSION sql_mode = '{sqlMode}'; CREATE TABLE s (id INT PRIMARY KEY, v TEXT)");
        string[] values =
        [
            "plain", "it's", "back\\slash", "\\' OR 1=1 -- ", "'; DROP TABLE s; --", "\"double\"", "nul\0byte", "ctrl-z\x1a", "new\nline\r\n", "tab\there",
            "\\", "\\\\'", "emoji 🦀 and 4-byte 𝄞", "@id inside", "/* comment */", "# hash",
        ];
        for (var i = 0; i < values.Length; i++)
        {
            await using var insert = new MySqlCommand("INSERT INTO s VALUES (@id, @v)", connection);
            insert.Parameters.AddWithValue("id", i);
            insert.Parameters.AddWithValue("v", values[i]);
            await insert.ExecuteNonQueryAsync();
        }

        await using var select = new MySqlCommand("SELECT v FROM s ORDER BY id", connection);
        await using var reader = await select.ExecuteReaderAsync();
        foreach (var expected in values)
        {
            Assert.True(await reader.ReadAsync());
            Assert.Equal(expected, reader.GetString(0));
        }

        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task A_command_timeout_kills_the_query_and_the_connection_stays_usable()
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand("SELECT SLEEP(20)", connection) { CommandTimeout = 1 };
        var started = DateTime.UtcNow;

        var ex = await Assert.ThrowsAsync<MySqlException>(() => command.ExecuteScalarAsync());
        Assert.Equal(MySqlClientError.CommandTimeout, ex.Number);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
        Assert.Equal(7L, Convert.ToInt64(await ScalarAsync(connection, "SELECT 7"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_cancellation_token_kills_a_long_query()
    {
        await using var connection = await OpenAsync();
        await using var command = new MySqlCommand("SELECT BENCHMARK(10000000000, SHA2('x', 256))", connection) { CommandTimeout = 0 };
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var started = DateTime.UtcNow;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => command.ExecuteScalarAsync(cts.Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
        Assert.Equal(8L, Convert.ToInt64(await ScalarAsync(connection, "SELECT 8"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_server_that_drops_the_connection_mid_query_is_reported_clearly()
    {
        await using var victim = await OpenAsync(extra: "Pooling=false");
        await using var killer = await OpenAsync(extra: "Pooling=false");
        var query = Task.Run(() => ScalarAsync(victim, "SELECT SLEEP(20)"));
        await Task.Delay(500);
        await ExecAsync(killer, "KILL CONNECTION " + victim.ServerThread);

        var ex = await Assert.ThrowsAsync<MySqlException>(() => query);
        Assert.True(ex.Number is MySqlClientError.ServerLost or 1927, $"unexpected error {ex.Number}: {ex.Message}");
        Assert.Contains(ex.Number == MySqlClientError.ServerLost ? "closed the connection" : "killed", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_pool_reuses_sessions_and_resets_them_on_return()
    {
        var database = await NewDatabaseAsync();
        var elsewhere = await NewDatabaseAsync();
        var extra = "Maximum Pool Size=1;Application Name=pool-" + Guid.NewGuid().ToString("N");
        int first;
        await using (var connection = await OpenAsync(database, extra))
        {
            first = connection.ServerThread;
            // USE moves the session without the client seeing it; the reset alone keeps it there.
            await ExecAsync(connection, $"SET @leak = 42; CREATE TEMPORARY TABLE scratch (x INT); SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; USE `{elsewhere}`");
        }

        await using (var again = await OpenAsync(database, extra))
        {
            Assert.Equal(first, again.ServerThread);
            Assert.Equal(database, await ScalarAsync(again, "SELECT DATABASE()"));
            Assert.Equal(database, again.Database);
            Assert.Equal(DBNull.Value, await ScalarAsync(again, "SELECT @leak"));
            var gone = await Assert.ThrowsAsync<MySqlException>(() => ScalarAsync(again, "SELECT COUNT(*) FROM scratch"));
            Assert.Equal(1146, gone.Number);
            Assert.DoesNotContain("NO_BACKSLASH_ESCAPES", (string)(await ScalarAsync(again, "SELECT @@SESSION.sql_mode"))!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_pooled_session_the_server_closed_while_idle_is_replaced_not_handed_out()
    {
        var extra = "Maximum Pool Size=2;Application Name=pool-" + Guid.NewGuid().ToString("N");
        int first;
        await using (var connection = await OpenAsync(extra: extra))
        {
            first = connection.ServerThread;
        }

        await using (var killer = await OpenAsync(extra: "Pooling=false"))
        {
            await ExecAsync(killer, "KILL CONNECTION " + first);
        }

        await Task.Delay(200);
        await using var again = await OpenAsync(extra: extra);
        Assert.NotEqual(first, again.ServerThread);
        Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(again, "SELECT 1"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Pooling_can_be_switched_off()
    {
        int first;
        await using (var connection = await OpenAsync(extra: "Pooling=false"))
        {
            first = connection.ServerThread;
        }

        await using var second = await OpenAsync(extra: "Pooling=false");
        Assert.NotEqual(first, second.ServerThread);
    }

    [Fact]
    public async Task Ping_change_database_and_reset_work()
    {
        var database = await NewDatabaseAsync();
        await using var connection = await OpenAsync(extra: "Pooling=false");
        Assert.True(connection.Ping());
        await connection.ChangeDatabaseAsync(database);
        Assert.Equal(database, connection.Database);
        Assert.Equal(database, await ScalarAsync(connection, "SELECT DATABASE()"));
        await ExecAsync(connection, "SET @v = 1");
        await connection.ResetConnectionAsync();
        Assert.Equal(DBNull.Value, await ScalarAsync(connection, "SELECT @v"));
    }

    [Fact]
    public async Task Transactions_commit_and_roll_back()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "CREATE TABLE tx (id INT PRIMARY KEY) ENGINE=InnoDB");

        await using (var rollback = await connection.BeginTransactionAsync())
        {
            await ExecAsync(connection, "INSERT INTO tx VALUES (1)");
            await rollback.RollbackAsync();
        }

        await using (var commit = await connection.BeginTransactionAsync(IsolationLevel.Serializable))
        {
            await ExecAsync(connection, "INSERT INTO tx VALUES (2)");
            await commit.CommitAsync();
        }

        Assert.Equal(2, Convert.ToInt32(await ScalarAsync(connection, "SELECT GROUP_CONCAT(id) FROM tx"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Bulk_load_from_a_data_reader_round_trips_every_row()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "CREATE TABLE bulk (id BIGINT PRIMARY KEY, name VARCHAR(100), note TEXT NULL, amount DECIMAL(12,2), at DATETIME(6), flag TINYINT(1))");
        using var table = new DataTable();
        table.Columns.Add("id", typeof(long));
        table.Columns.Add("name", typeof(string));
        table.Columns.Add("note", typeof(string));
        table.Columns.Add("amount", typeof(decimal));
        table.Columns.Add("at", typeof(DateTime));
        table.Columns.Add("flag", typeof(bool));
        var start = new DateTime(2024, 3, 10, 1, 59, 59, 123, DateTimeKind.Unspecified);
        for (var i = 0; i < 10_000; i++)
        {
            table.Rows.Add(i, $"name {i} tab\there \\ back 🦀", i % 7 == 0 ? DBNull.Value : $"line\nbreak {i}", i * 1.25m, start.AddSeconds(i), i % 2 == 0);
        }

        var loaded = await new MySqlBulkLoader(connection) { TableName = "bulk" }.LoadAsync(table.CreateDataReader());
        Assert.Equal(10_000, loaded);

        await using var select = new MySqlCommand("SELECT id, name, note, amount, at, flag FROM bulk ORDER BY id", connection);
        await using var reader = await select.ExecuteReaderAsync();
        var n = 0;
        while (await reader.ReadAsync())
        {
            var expected = table.Rows[n];
            Assert.Equal(expected["id"], reader.GetInt64(0));
            Assert.Equal(expected["name"], reader.GetString(1));
            Assert.Equal(expected["note"], reader.GetValue(2));
            Assert.Equal(expected["amount"], reader.GetDecimal(3));
            Assert.Equal(expected["at"], reader.GetDateTime(4));
            Assert.Equal(expected["flag"], reader.GetBoolean(5));
            n++;
        }

        Assert.Equal(10_000, n);
    }

    [Fact]
    public async Task Bulk_load_from_a_csv_stream()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, DbMigration.Bench.Data.EventsSchema.MariaDb);
        var csv = new StringBuilder();
        foreach (var row in new DbMigration.Bench.Data.EventsDataGenerator().Generate(5_000))
        {
            DbMigration.Bench.Data.EventsSchema.AppendCsv(csv, row);
        }

        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(csv.ToString()));
        var loader = new MySqlBulkLoader(connection) { TableName = "events", FieldTerminator = "," };
        foreach (var column in DbMigration.Bench.Data.EventsSchema.Columns)
        {
            loader.Columns.Add(column);
        }

        Assert.Equal(5_000, loader.Load(stream));
        Assert.Equal(5_000L, Convert.ToInt64(await ScalarAsync(connection, "SELECT COUNT(*) FROM events"), CultureInfo.InvariantCulture));
        Assert.Equal(5_000L, Convert.ToInt64(await ScalarAsync(connection, "SELECT COUNT(*) FROM events WHERE event_uuid REGEXP '^[0-9a-f-]{36}$'"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_file_the_client_did_not_offer_is_never_sent()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await ExecAsync(connection, "CREATE TABLE stolen (line TEXT)");
        var secret = Path.Combine(Path.GetTempPath(), "dbm-secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, "root:x:0:0:secret\n");
        try
        {
            var ex = await Assert.ThrowsAsync<MySqlException>(() => ExecAsync(connection, $"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE stolen"));
            Assert.Equal(MySqlClientError.LocalInfileRefused, ex.Number);
            Assert.Contains(secret, ex.Message, StringComparison.Ordinal);
            Assert.Equal(0L, Convert.ToInt64(await ScalarAsync(connection, "SELECT COUNT(*) FROM stolen"), CultureInfo.InvariantCulture));
        }
        finally
        {
            File.Delete(secret);
        }
    }

    private sealed record Person(long Id, string Name, decimal? Balance);

    [Fact]
    public async Task Dapper_queries_and_executes_through_the_client()
    {
        await using var connection = await OpenAsync(await NewDatabaseAsync());
        await connection.ExecuteAsync("CREATE TABLE people (id BIGINT PRIMARY KEY, name VARCHAR(50), balance DECIMAL(10,2) NULL)");
        var inserted = await connection.ExecuteAsync("INSERT INTO people (id, name, balance) VALUES (@Id, @Name, @Balance)",
            new[] { new Person(1, "Ada", 10.5m), new Person(2, "O'Neil", null), new Person(3, "Zoë", -3m) });
        Assert.Equal(3, inserted);

        var people = (await connection.QueryAsync<Person>("SELECT id, name, balance FROM people WHERE id >= @min ORDER BY id", new { min = 2 })).ToList();
        Assert.Equal([new Person(2, "O'Neil", null), new Person(3, "Zoë", -3m)], people);
        Assert.Equal(3L, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM people"));
    }

    [Fact]
    public async Task Zero_dates_raise_an_error_or_read_as_null_by_option()
    {
        var database = await NewDatabaseAsync();
        await using (var setup = await OpenAsync(database))
        {
            await ExecAsync(setup, "SET SESSION sql_mode = ''; CREATE TABLE z (d DATETIME); INSERT INTO z VALUES ('0000-00-00 00:00:00')");
        }

        await using (var strict = await OpenAsync(database))
        {
            var ex = await Assert.ThrowsAsync<MySqlException>(() => ScalarAsync(strict, "SELECT d FROM z"));
            Assert.Equal(MySqlClientError.ZeroDate, ex.Number);
        }

        await using var lenient = await OpenAsync(database, "Zero DateTime Behavior=Null");
        Assert.Equal(DBNull.Value, await ScalarAsync(lenient, "SELECT d FROM z"));
    }

    [Fact]
    public async Task Zero_and_partial_dates_read_as_their_text_with_the_Text_option_and_real_dates_as_DateTime()
    {
        var database = await NewDatabaseAsync();
        await using (var setup = await OpenAsync(database))
        {
            await ExecAsync(setup, "SET SESSION sql_mode = ''; CREATE TABLE z (id INT, d DATETIME(3), day DATE); INSERT INTO z VALUES (1, '0000-00-00 00:00:00', '2024-05-00'), (2, '2024-00-01 10:00:00.250', '0000-00-00'), (3, '2024-07-01 12:00:00.125', '2024-07-01')");
        }

        await using var text = await OpenAsync(database, "Zero DateTime Behavior=Text");
        await using var command = new MySqlCommand("SELECT d, day FROM z ORDER BY id", text);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<object>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetValue(0));
            values.Add(reader.GetValue(1));
        }

        Assert.Equal<object>(["0000-00-00 00:00:00.000", "2024-05-00", "2024-00-01 10:00:00.250", "0000-00-00", new DateTime(2024, 7, 1, 12, 0, 0, 125), new DateTime(2024, 7, 1)], values);
    }

    [Fact]
    public void The_synchronous_api_works_end_to_end()
    {
        using var connection = new MySqlConnection(server.ConnectionString(extra: "Pooling=false"));
        connection.Open();
        using var command = new MySqlCommand("SELECT 1 AS a UNION ALL SELECT 2", connection);
        using var reader = command.ExecuteReader();
        Assert.True(reader.HasRows);
        var values = new List<long>();
        while (reader.Read())
        {
            values.Add(Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture));
        }

        Assert.Equal([1L, 2L], values);
    }

    [Fact]
    public async Task The_provider_factory_builds_working_objects()
    {
        var factory = MySqlProviderFactory.Instance;
        await using var connection = factory.CreateConnection();
        connection.ConnectionString = server.ConnectionString(extra: "Pooling=false");
        await connection.OpenAsync();
        await using var command = factory.CreateCommand();
        command.Connection = connection;
        command.CommandText = "SELECT @x + 1";
        var parameter = factory.CreateParameter();
        parameter.ParameterName = "x";
        parameter.Value = 41;
        command.Parameters.Add(parameter);
        Assert.Equal(42L, Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture));
    }
}
