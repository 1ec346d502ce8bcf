using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Errors;
using DbMigration.Providers.Sqlite;
using SQLitePCL;

namespace DbMigration.Backups;

/// <summary>
/// Row counts and content hashes for SQLite files, read through SQLite's C API: each value is hashed from the
/// bytes SQLite holds (type tag, length, payload) without building strings, in rowid or primary-key order.
/// Backups and their verification both use it, so equal hashes mean equal content. A rowid table is hashed as two
/// rowid ranges (always two, so the hash does not depend on the machine), on two threads when the CPU is free.
/// </summary>
internal static unsafe class SqliteContentHasher
{
    private const int Row = 100;
    private const int Done = 101;
    private const int Segments = 2;

    private static sqlite3 Open(string path)
    {
        Batteries_V2.Init();
        if (raw.sqlite3_open_v2(path, out var db, raw.SQLITE_OPEN_READONLY, null) != raw.SQLITE_OK)
        {
            var message = raw.sqlite3_errmsg(db).utf8_to_string();
            db.Dispose();
            throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"Cannot open '{path}' to hash it: {message}") { Target = path };
        }

        return db;
    }

    public static IReadOnlyList<TableSnapshot> Hash(string path, bool parallel, CancellationToken cancellationToken)
    {
        using (var db = Open(path))
        {
            var tables = new List<(string Name, bool WithoutRowId)>();
            foreach (var row in Query(db, "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"))
            {
                tables.Add((row[0]!, row[1]?.Contains("WITHOUT ROWID", StringComparison.OrdinalIgnoreCase) == true));
            }

            var result = new List<TableSnapshot>(tables.Count);
            foreach (var (name, withoutRowId) in tables)
            {
                var quoted = "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
                string order;
                if (withoutRowId)
                {
                    var keys = Query(db, $"SELECT name FROM pragma_table_info('{name.Replace("'", "''", StringComparison.Ordinal)}') WHERE pk > 0 ORDER BY pk").Select(r => "\"" + r[0]!.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"");
                    order = string.Join(", ", keys);
                }
                else
                {
                    order = "rowid";
                }

                if (withoutRowId)
                {
                    result.Add(HashTable(db, name, $"SELECT * FROM {quoted} ORDER BY {order}", cancellationToken));
                    continue;
                }

                var bounds = Query(db, $"SELECT min(rowid), max(rowid) FROM {quoted}")[0];
                var low = bounds[0] is null ? 0L : long.Parse(bounds[0]!, System.Globalization.CultureInfo.InvariantCulture);
                var high = bounds[1] is null ? 0L : long.Parse(bounds[1]!, System.Globalization.CultureInfo.InvariantCulture);
                var split = low + (high - low) / Segments;
                var parts = new[]
                {
                    $"SELECT * FROM {quoted} WHERE rowid <= {split} ORDER BY rowid",
                    $"SELECT * FROM {quoted} WHERE rowid > {split} ORDER BY rowid",
                };
                var segments = new TableSnapshot[Segments];
                // The segments define the hash; whether they run at once only changes the speed.
                Parallel.For(0, Segments, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = parallel ? Segments : 1 }, i =>
                {
                    using var own = Open(path);
                    segments[i] = HashTable(own, name, parts[i], cancellationToken);
                });
                using var combined = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                foreach (var segment in segments)
                {
                    combined.AppendData(Convert.FromHexString(segment.ContentHash));
                }

                result.Add(new TableSnapshot(name, segments.Sum(s => s.Rows), Convert.ToHexString(combined.GetHashAndReset()).ToLowerInvariant()));
            }

            return result;
        }
    }

    private static TableSnapshot HashTable(sqlite3 db, string name, string sql, CancellationToken cancellationToken)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        using (statement)
        {
            // The loop calls e_sqlite3 directly: SQLitePCLRaw's SafeHandle marshalling cost more than the hashing.
            var handle = statement.DangerousGetHandle();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            var used = 0;
            long rows = 0;
            var columns = raw.sqlite3_column_count(statement);
            int rc;
            while ((rc = SqliteNative.Step(handle)) == Row)
            {
                if ((++rows & 0xFFFF) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                for (var i = 0; i < columns; i++)
                {
                    var type = SqliteNative.ColumnType(handle, i);
                    switch (type)
                    {
                        case raw.SQLITE_INTEGER:
                            Ensure(hash, buffer, ref used, 9);
                            buffer[used] = (byte)'I';
                            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(used + 1), SqliteNative.ColumnInt64(handle, i));
                            used += 9;
                            break;
                        case raw.SQLITE_FLOAT:
                            Ensure(hash, buffer, ref used, 9);
                            buffer[used] = (byte)'F';
                            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(used + 1), BitConverter.DoubleToInt64Bits(SqliteNative.ColumnDouble(handle, i)));
                            used += 9;
                            break;
                        case raw.SQLITE_NULL:
                            Ensure(hash, buffer, ref used, 1);
                            buffer[used++] = (byte)'N';
                            break;
                        default:
                            // Blob before bytes, as SQLite asks: the pointer stays valid until the next step.
                            var data = SqliteNative.ColumnBlob(handle, i);
                            var length = SqliteNative.ColumnBytes(handle, i);
                            var bytes = data is null ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(data, length);
                            Ensure(hash, buffer, ref used, 5);
                            buffer[used] = type == raw.SQLITE_TEXT ? (byte)'T' : (byte)'B';
                            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(used + 1), bytes.Length);
                            used += 5;
                            if (bytes.Length > buffer.Length - used)
                            {
                                hash.AppendData(buffer, 0, used);
                                used = 0;
                                hash.AppendData(bytes);
                            }
                            else
                            {
                                bytes.CopyTo(buffer.AsSpan(used));
                                used += bytes.Length;
                            }

                            break;
                    }
                }

                Ensure(hash, buffer, ref used, 1);
                buffer[used++] = (byte)'\n';
            }

            if (rc != Done)
            {
                Check(db, rc);
            }

            hash.AppendData(buffer, 0, used);
            return new TableSnapshot(name, rows, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
        }
    }

    private static void Ensure(IncrementalHash hash, byte[] buffer, ref int used, int needed)
    {
        if (used + needed > buffer.Length)
        {
            hash.AppendData(buffer, 0, used);
            used = 0;
        }
    }

    private static List<string?[]> Query(sqlite3 db, string sql)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        using (statement)
        {
            var rows = new List<string?[]>();
            var columns = raw.sqlite3_column_count(statement);
            while (raw.sqlite3_step(statement) == Row)
            {
                var row = new string?[columns];
                for (var i = 0; i < columns; i++)
                {
                    row[i] = raw.sqlite3_column_type(statement, i) == raw.SQLITE_NULL ? null : Encoding.UTF8.GetString(raw.sqlite3_column_blob(statement, i));
                }

                rows.Add(row);
            }

            return rows;
        }
    }

    private static void Check(sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"SQLite error {rc} while hashing: {raw.sqlite3_errmsg(db).utf8_to_string()}");
        }
    }
}
