using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Errors;
using DbMigration.Operations;
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
    private const int BufferSize = 1 << 16;

    private static sqlite3 Open(string path)
    {
        Batteries_V2.Init();

        // Each connection stays on one thread, so SQLite's per-call connection mutex is pure cost (a quarter of the time).
        if (raw.sqlite3_open_v2(path, out var db, raw.SQLITE_OPEN_READONLY | raw.SQLITE_OPEN_NOMUTEX, null) != raw.SQLITE_OK)
        {
            var message = raw.sqlite3_errmsg(db).utf8_to_string();
            db.Dispose();
            throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"Cannot open '{path}' to hash it: {message}") { Target = path };
        }

        // A WAL-mode file is recovered by whichever connection opens it first (the integrity check runs beside the
        // hashing): wait for that instead of failing with SQLITE_BUSY.
        raw.sqlite3_busy_timeout(db, 30_000);
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

                // Two queries: min() and max() together make SQLite scan the whole table instead of seeking each end.
                var low = Bound(db, $"SELECT min(rowid) FROM {quoted}");
                var high = Bound(db, $"SELECT max(rowid) FROM {quoted}");
                var split = low + (high - low) / Segments;
                var parts = new[]
                {
                    $"SELECT * FROM {quoted} WHERE rowid <= {split} ORDER BY rowid",
                    $"SELECT * FROM {quoted} WHERE rowid > {split} ORDER BY rowid",
                };

                // The segments define the hash; whether they run at once only changes the speed.
                var segments = new TableSnapshot[Segments];
                TableSnapshot HashSegment(int i)
                {
                    using var own = Open(path);
                    return HashTable(own, name, parts[i], cancellationToken);
                }

                var second = parallel ? DedicatedThread.Run(() => HashSegment(1), cancellationToken) : null;
                try
                {
                    segments[0] = HashSegment(0);
                }
                catch when (second is not null)
                {
                    // Let the other segment close its connection before the error leaves.
                    try
                    {
                        second.Wait(CancellationToken.None);
                    }
                    catch (AggregateException)
                    {
                    }

                    throw;
                }

                segments[1] = second is null ? HashSegment(1) : second.GetAwaiter().GetResult();
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

    private static long Bound(sqlite3 db, string sql)
    {
        var value = Query(db, sql)[0][0];
        return value is null ? 0L : long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
    }

    // Called once per segment, so it never tiers up: ReadyToRun code would run the whole scan. Jit it optimized.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static TableSnapshot HashTable(sqlite3 db, string name, string sql, CancellationToken cancellationToken)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        using (statement)
        {
            // The loop calls e_sqlite3 directly: SQLitePCLRaw's SafeHandle marshalling cost more than the hashing.
            // One sqlite3_column_value per value, then the plain value accessors: each sqlite3_column_* call
            // repeats the statement's checks.
            var handle = statement.DangerousGetHandle();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[BufferSize];
            fixed (byte* start = buffer)
            {
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

                    // Room for every fixed-size part of the row; text and blob payloads check their own length.
                    if (used > BufferSize - (columns * 9) - 1)
                    {
                        hash.AppendData(buffer, 0, used);
                        used = 0;
                    }

                    for (var i = 0; i < columns; i++)
                    {
                        var value = SqliteNative.ColumnValue(handle, i);
                        var type = SqliteNative.ValueType(value);
                        var at = start + used;
                        switch (type)
                        {
                            case raw.SQLITE_INTEGER:
                                *at = (byte)'I';
                                BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(at + 1, 8), SqliteNative.ValueInt64(value));
                                used += 9;
                                break;
                            case raw.SQLITE_FLOAT:
                                *at = (byte)'F';
                                BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(at + 1, 8), BitConverter.DoubleToInt64Bits(SqliteNative.ValueDouble(value)));
                                used += 9;
                                break;
                            case raw.SQLITE_NULL:
                                *at = (byte)'N';
                                used += 1;
                                break;
                            default:
                                // Blob before bytes, as SQLite asks: the pointer stays valid until the next step.
                                var data = SqliteNative.ValueBlob(value);
                                var length = data is null ? 0 : SqliteNative.ValueBytes(value);
                                *at = type == raw.SQLITE_TEXT ? (byte)'T' : (byte)'B';
                                BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(at + 1, 4), length);
                                used += 5;
                                var payload = new ReadOnlySpan<byte>(data, length);
                                if (length > BufferSize - used - ((columns - i) * 9) - 1)
                                {
                                    hash.AppendData(buffer, 0, used);
                                    hash.AppendData(payload);
                                    used = 0;
                                }
                                else
                                {
                                    payload.CopyTo(new Span<byte>(start + used, length));
                                    used += length;
                                }

                                break;
                        }
                    }

                    start[used++] = (byte)'\n';
                }

                if (rc != Done)
                {
                    Check(db, rc);
                }

                hash.AppendData(buffer, 0, used);
                return new TableSnapshot(name, rows, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
            }
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
