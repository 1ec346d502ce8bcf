using System.Security.Cryptography;
using System.Text;
using DbMigration.Backups;
using DbMigration.Providers;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>
/// Pins the server engines' content-hash definition that every backup.json records: the hasher writes common types
/// straight into bytes, and must give exactly the hash of the definition (each value's <c>len:text</c> built as a
/// string from GetValue, each row UTF-8 encoded), or old backups stop verifying.
/// </summary>
public abstract class ServerContentHashTests(IEngineUnderTest engine)
{
    /// <summary>Creates table <c>t</c> (primary key <c>id</c>) with every value type the engine's reader returns, edge values included.</summary>
    protected abstract string Seed { get; }

    /// <summary>The rows of <c>t</c> as the definition reads them, written out by hand.</summary>
    protected abstract string ReferenceQuery { get; }

    /// <summary>The rows as version 1 of the definition read them (before MariaDB FLOAT columns were read exactly).</summary>
    protected virtual string ReferenceQueryVersion1 => ReferenceQuery;

    /// <summary>A change version 1 of the definition could not see and version 2 does; null where there is none.</summary>
    protected virtual string? ChangeOnlyVersion2Sees => null;

    /// <summary>Changes one element inside a composite value (an array, a JSON document) of <c>t</c>.</summary>
    protected abstract string ChangeInsideAValue { get; }

    [Fact]
    public async Task The_hash_is_the_documented_definition_for_every_value_type()
    {
        var target = await engine.CreateDatabaseAsync();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), CancellationToken.None);
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = Seed;
            await command.ExecuteNonQueryAsync();
        }

        var hashed = await ContentHasher.HashDatabaseAsync(provider, target, ContentHasher.CurrentVersion, CancellationToken.None);
        var table = Assert.Single(hashed);

        async Task<(long Rows, string Hash, HashSet<Type> Kinds)> ReferenceAsync(string query)
        {
            await using var reference = connection.CreateCommand();
            reference.CommandText = query;
            await using var reader = await reference.ExecuteReaderAsync();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long rows = 0;
            var kinds = new HashSet<Type>();
            while (await reader.ReadAsync())
            {
                var row = new StringBuilder();
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    var value = reader.IsDBNull(i) ? null : reader.GetValue(i);
                    kinds.Add(reader.GetFieldType(i));
                    var text = ContentHasher.Canonical(value);
                    row.Append(text is null ? "-1:" : text.Length + ":" + text);
                }

                sha.AppendData(Encoding.UTF8.GetBytes(row.Append('\n').ToString()));
                rows++;
            }

            return (rows, Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant(), kinds);
        }

        var (rows, hash, kinds) = await ReferenceAsync(ReferenceQuery);
        Assert.True(rows >= 4, "the seed has edge rows");
        Assert.True(kinds.Count >= 10, "the seed covers the reader's value types: " + string.Join(", ", kinds.Select(k => k.Name)));
        Assert.Equal(rows, table.Rows);
        Assert.Equal(hash, table.ContentHash);

        // Backups written before version 2 still verify: their hashes are computed as they were.
        var first = Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, 1, CancellationToken.None));
        Assert.Equal((await ReferenceAsync(ReferenceQueryVersion1)).Hash, first.ContentHash);

        if (ChangeOnlyVersion2Sees is { } subtle)
        {
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = subtle;
                await command.ExecuteNonQueryAsync();
            }

            Assert.Equal(first.ContentHash, Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, 1, CancellationToken.None)).ContentHash);
            Assert.NotEqual(table.ContentHash, Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, 2, CancellationToken.None)).ContentHash);
        }

        await using (var command = connection.CreateCommand())
        {
            command.CommandText = ChangeInsideAValue;
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        var changed = Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, ContentHasher.CurrentVersion, CancellationToken.None));
        Assert.NotEqual(table.ContentHash, changed.ContentHash);
    }
}

/// <summary>The text each value type contributes to the server engines' content hash.</summary>
public sealed class ContentHashDefinitionTests
{
    [Fact]
    public void The_definition_writes_each_type_in_its_documented_text()
    {
        Assert.Null(ContentHasher.Canonical(null));
        Assert.Equal("v-9223372036854775808", ContentHasher.Canonical(long.MinValue));
        Assert.Equal("v12.30", ContentHasher.Canonical(12.30m));
        Assert.Equal("f0.1", ContentHasher.Canonical(0.1));
        Assert.Equal("f-0", ContentHasher.Canonical(-0.0));
        Assert.Equal("fNaN", ContentHasher.Canonical(double.NaN));
        Assert.Equal("vTrue", ContentHasher.Canonical(true));
        Assert.Equal("x00FF", ContentHasher.Canonical(new byte[] { 0, 255 }));
        Assert.Equal("d2024-03-10T02:30:00.1234567", ContentHasher.Canonical(new DateTime(2024, 3, 10, 2, 30, 0).AddTicks(1234567)));
        Assert.Equal("o2024-03-10T01:30:00.0000000", ContentHasher.Canonical(new DateTimeOffset(2024, 3, 10, 2, 30, 0, TimeSpan.FromHours(1))));
        Assert.Equal("v00000000-0000-0000-0000-0000000000ff", ContentHasher.Canonical(new Guid("000000000000000000000000000000ff")));
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlContentHashTests(PostgresServer server) : ServerContentHashTests(server)
{
    protected override string Seed => """
        CREATE TABLE t (
            id integer PRIMARY KEY, s smallint, b bigint, n numeric(20,4), nf numeric, r real, d double precision,
            f boolean, u uuid, ts timestamp, tz timestamptz, dt date, tm time, iv interval, by bytea,
            tx text, vc varchar(20), ch char(5), j jsonb, arr integer[], ip inet, t3 timestamp(3), tm3 time(3));
        INSERT INTO t VALUES
            (1, -32768, -9223372036854775808, -1234567890123456.1234, 0.000000000000000000000001, 1.5e-38, 0.1,
             true, '6ba7b810-9dad-11d1-80b4-00c04fd430c8', '2024-03-10 02:30:00.123456', '2024-11-03 01:30:00+00',
             '1999-12-31', '23:59:59.999999', '1 day 02:03:04', '\x00ff10', 'é🦀 text', 'café', 'ab', '{"k": [1, 2]}',
             '{1,2,3}', '192.168.0.1', '2024-03-10 02:30:00.123', '01:02:03.456'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (3, 32767, 9223372036854775807, 12.30, 'NaN', 'Infinity', '-0', false, '00000000-0000-0000-0000-000000000000',
             '0001-01-01 00:00:00', '9999-12-31 23:59:59.999999+00', '0001-01-01', '00:00:00', '-3 mons', '', '', '', '', 'null',
             '{}', '::1', '0001-01-01', '00:00'),
            (4, 0, 0, 0, 1e20, '-Infinity', 1e308, true, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2024-01-01', '2024-01-01 12:00:00+05:30',
             '2024-02-29', '12:00', '0', decode(repeat('ab', 70000), 'hex'), repeat('ü', 40000), repeat('x', 20), 'abcde', '[]', NULL, NULL, NULL, NULL);
        """;

    // numeric, interval, arrays and inet are read as the server's text of them.
    protected override string ReferenceQuery => """
        SELECT id, s, b, n::text, nf::text, r, d, f, u, ts, tz, dt, tm, iv::text, by, tx, vc, ch, j, arr::text, ip::text, t3, tm3
        FROM t ORDER BY id
        """;

    protected override string ChangeInsideAValue => "UPDATE t SET arr = '{1,2,4}' WHERE id = 1";

    /// <summary>
    /// A timestamptz inside an array or a range is hashed as its text, which is in the session's zone: a backup taken
    /// by a role whose zone is one place and verified by another (or after the server's default changed) hashed
    /// another text, and failed. From version 2 that text is in UTC; version 1 is computed as it was.
    /// </summary>
    [Fact]
    public async Task Timestamps_inside_arrays_and_ranges_hash_alike_whatever_zone_the_session_is_in()
    {
        var target = await server.CreateDatabaseAsync();
        var provider = DatabaseProviders.For(target);
        await using (var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), CancellationToken.None))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE stay (id int PRIMARY KEY, booked tstzrange, seen timestamptz[]); INSERT INTO stay VALUES (1, '[2024-07-01 12:00+00,2024-07-02 10:00+00)', '{2024-07-01 12:00+00}')";
            await command.ExecuteNonQueryAsync();
        }

        async Task<(string Version1, string Version2)> HashesInAsync(string zone)
        {
            await using (var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), CancellationToken.None))
            {
                await using var command = connection.CreateCommand();
                command.CommandText = $"ALTER DATABASE \"{target.Database}\" SET timezone = '{zone}'";
                await command.ExecuteNonQueryAsync();
            }

            provider.ReleasePooledConnections(target);
            return (Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, 1, CancellationToken.None)).ContentHash,
                Assert.Single(await ContentHasher.HashDatabaseAsync(provider, target, 2, CancellationToken.None)).ContentHash);
        }

        var tokyo = await HashesInAsync("Asia/Tokyo");
        var lima = await HashesInAsync("America/Lima");
        Assert.Equal(tokyo.Version2, lima.Version2);
        Assert.NotEqual(tokyo.Version1, lima.Version1);
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbContentHashTests(MariaDbServer server) : ServerContentHashTests(server)
{
    protected override string Seed => """
        CREATE TABLE t (
            id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, s SMALLINT, m MEDIUMINT, b BIGINT, bu BIGINT UNSIGNED,
            n DECIMAL(20,4), big DECIMAL(40,10), r FLOAT, d DOUBLE, bo BOOLEAN, dt DATETIME(6), dd DATE, tm TIME(6), y YEAR,
            bl MEDIUMBLOB, vb VARBINARY(16), tx MEDIUMTEXT, vc VARCHAR(20), e ENUM('a', 'b'), j JSON, bi BIT(8), zd DATETIME);
        INSERT INTO t VALUES
            (1, -128, 255, -32768, -8388608, -9223372036854775808, 18446744073709551615, -1234567890123456.1234,
             123456789012345678901234567890.1234567891, 1.5, 0.1, TRUE, '2024-03-10 02:30:00.123456', '1999-12-31',
             '-838:59:59.000000', 1901, x'00ff10', x'01', 'é🦀 text', 'café', 'b', '{"k": [1, 2]}', b'10101010', '2024-01-01 00:00:00'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (3, 127, 0, 32767, 8388607, 9223372036854775807, 0, 12.30, 0, -0, 1e308, FALSE, '1000-01-01 00:00:00', '1000-01-01',
             '00:00:00', 2155, '', '', '', '', 'a', 'null', b'0', '1000-01-01 00:00:00'),
            (4, 0, 1, 0, 0, 0, 1, 0, 1, 3.4e38, -1e-300, 2, '9999-12-31 23:59:59.999999', '9999-12-31', '838:59:59.999999', 2024,
             REPEAT(x'ab', 70000), x'ffffffffffffffffffffffffffffffff', REPEAT('ü', 40000), REPEAT('x', 20), 'b', '[]', b'11111111', NULL);
        """;

    // A FLOAT reads as six significant digits of text, a TINYINT(1) as a boolean: from version 2 they are hashed as
    // the exact DOUBLE widening and as the number.
    protected override string ReferenceQuery =>
        "SELECT id, ti, tu, s, m, b, bu, n, big, CAST(r AS DOUBLE), d, bo + 0, dt, dd, tm, y, bl, vb, tx, vc, e, j, bi, zd FROM t ORDER BY id";

    protected override string ReferenceQueryVersion1 => "SELECT * FROM t ORDER BY id";

    // 1.5 and the float nearest 1.5000001 both read "1.5"; a TINYINT(1) of 2 and one of 1 both read true.
    protected override string? ChangeOnlyVersion2Sees => "UPDATE t SET r = 1.5000001 WHERE id = 1; UPDATE t SET bo = 1 WHERE id = 4";

    protected override string ChangeInsideAValue => "UPDATE t SET j = '{\"k\": [1, 3]}' WHERE id = 1";
}
