using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Backups;
using DbMigration.Tests.Fixtures;
using Microsoft.Data.Sqlite;

namespace DbMigration.Tests.Backups;

/// <summary>
/// Pins the SQLite content-hash definition that every backup.json records, against a second implementation written
/// from its description (through Microsoft.Data.Sqlite, not the C API): old backups must keep verifying whatever
/// the hasher's internals become.
/// </summary>
public sealed class SqliteContentHashTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_hash_is_the_documented_definition_for_every_storage_class()
    {
        var path = _dir.File("types.db");
        SQLitePCL.Batteries_V2.Init();
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB);
                CREATE TABLE k (a TEXT, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
                INSERT INTO t VALUES (1, -9223372036854775808, 0.1, 'é🦀 text', x'00ff10');
                INSERT INTO t VALUES (2, NULL, NULL, NULL, NULL);
                INSERT INTO t VALUES (3, 42, -1e300, '', x'');
                INSERT INTO t VALUES (7, 9223372036854775807, 3.0, 'x', zeroblob(70000));
                INSERT INTO t VALUES (9, '12', 'not a number', 5, 2.5);
                INSERT INTO k VALUES ('b', 2), ('a', 1), ('a', 3);
                """;
            command.ExecuteNonQuery();
        }

        var hashed = SqliteContentHasher.Hash(path, parallel: true, CancellationToken.None);

        var t = Assert.Single(hashed, h => h.Table == "t");
        Assert.Equal(5, t.Rows);
        var low = Reference(path, "SELECT * FROM t WHERE rowid <= 5 ORDER BY rowid");
        var high = Reference(path, "SELECT * FROM t WHERE rowid > 5 ORDER BY rowid");
        Assert.Equal(Hex(SHA256.HashData([.. low, .. high])), t.ContentHash);

        var k = Assert.Single(hashed, h => h.Table == "k");
        Assert.Equal(3, k.Rows);
        Assert.Equal(Hex(Reference(path, "SELECT * FROM k ORDER BY a, b")), k.ContentHash);
    }

    /// <summary>Per value: a type tag ('I', 'F', 'N', 'T', 'B'), then the int64 or double bits little-endian, or an int32 length and the bytes; '\n' ends a row.</summary>
    private static byte[] Reference(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var bytes = new List<byte>();
        var scratch = new byte[8];
        while (reader.Read())
        {
            for (var i = 0; i < reader.FieldCount; i++)
            {
                switch (reader.GetValue(i))
                {
                    case long integer:
                        bytes.Add((byte)'I');
                        BinaryPrimitives.WriteInt64LittleEndian(scratch, integer);
                        bytes.AddRange(scratch);
                        break;
                    case double real:
                        bytes.Add((byte)'F');
                        BinaryPrimitives.WriteInt64LittleEndian(scratch, BitConverter.DoubleToInt64Bits(real));
                        bytes.AddRange(scratch);
                        break;
                    case DBNull:
                        bytes.Add((byte)'N');
                        break;
                    case string text:
                        AddWithLength(bytes, 'T', Encoding.UTF8.GetBytes(text));
                        break;
                    case byte[] blob:
                        AddWithLength(bytes, 'B', blob);
                        break;
                    default:
                        throw new InvalidOperationException("unexpected storage class");
                }
            }

            bytes.Add((byte)'\n');
        }

        return SHA256.HashData(bytes.ToArray());
    }

    private static void AddWithLength(List<byte> bytes, char tag, byte[] payload)
    {
        bytes.Add((byte)tag);
        var length = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, payload.Length);
        bytes.AddRange(length);
        bytes.AddRange(payload);
    }

    private static string Hex(byte[] hash) => Convert.ToHexString(hash).ToLowerInvariant();
}
