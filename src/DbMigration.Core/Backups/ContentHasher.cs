using System.Buffers;
using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Operations;
using DbMigration.Providers;

namespace DbMigration.Backups;

/// <summary>
/// Row counts and a SHA-256 over each table's rows in primary-key order (all columns when there is no key), with
/// every value written in a canonical, length-prefixed form. Equal hashes mean equal content.
/// </summary>
/// <remarks>
/// The canonical form of one value is <c>len:text</c>, where <c>text</c> is a type tag and the invariant text of
/// the value (<see cref="Canonical"/>) and <c>len</c> its length in UTF-16 code units; NULL is <c>-1:</c>. Each
/// row ends with a newline and is hashed as UTF-8. Values of common types are written straight into a byte buffer
/// with the same result, sparing a string per value and per row.
/// </remarks>
internal static partial class ContentHasher
{
    /// <summary>The version new backups record (<see cref="BackupInfo.ContentHashVersion"/>).</summary>
    public const int CurrentVersion = 2;

    /// <summary>Opens the database and hashes every table (restored copies of server engines), as <paramref name="version"/> did.</summary>
    public static async Task<IReadOnlyList<TableSnapshot>> HashDatabaseAsync(IDatabaseProvider provider, Targets.DatabaseTarget database, int version, CancellationToken cancellationToken)
    {
        await using var connection = await provider.OpenConnectionAsync(database, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        return await SnapshotAsync(provider, connection, null, cancellationToken, version).ConfigureAwait(false);
    }

    /// <summary>
    /// PostgreSQL settings under which a value's text is the same whatever the database or role sets: ISO dates (not
    /// DateStyle 'SQL, DMY'), intervals in PostgreSQL's style, and floats to their last digit (not extra_float_digits
    /// = 0). They are the defaults, so hashes taken under the defaults are unchanged.
    /// </summary>
    /// <param name="utc">Also show timestamptz values in UTC (content hash version 2; version 1 took the session's zone).</param>
    internal static string PostgresExactText(bool local, bool utc = false)
    {
        // One statement: a command holds one (the connections send commands as written).
        var scope = local ? "true" : "false";
        return $"SELECT set_config('datestyle', 'ISO, MDY', {scope}), set_config('intervalstyle', 'postgres', {scope}), set_config('extra_float_digits', '3', {scope})"
            + (utc ? $", set_config('timezone', 'UTC', {scope})" : string.Empty);
    }

    public static async Task<IReadOnlyList<TableSnapshot>> SnapshotAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken, int version = CurrentVersion)
    {
        if (provider.Engine == Targets.DatabaseEngine.PostgreSql)
        {
            // Values of types without a binary reading here (arrays, ranges, intervals) are hashed as their text.
            await using var settings = connection.CreateCommand();
            settings.Transaction = transaction;
            // A timestamptz inside an array or range reads in the session's zone, which the role or server sets: a
            // verification run by another role read another text.
            settings.CommandText = PostgresExactText(local: transaction is not null, utc: version >= 2);
            await settings.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var result = new List<TableSnapshot>(tables.Count);
        foreach (var table in tables)
        {
            var order = table.PrimaryKey.Count > 0
                ? string.Join(", ", table.PrimaryKey.Select(provider.QuoteIdentifier))
                : string.Join(", ", Enumerable.Range(1, table.Columns.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)));
            var columns = string.Join(", ", table.Columns.Select(c => Projection(provider, c, version)));
            var sql = $"SELECT {columns} FROM {provider.QuoteTable(table.Name)} ORDER BY {order}";

            // Reading and hashing block for the whole table: a thread of its own keeps the pool free.
            var (rows, hash) = await DedicatedThread.Run(() => HashQuery(connection, transaction, sql, cancellationToken), cancellationToken).ConfigureAwait(false);
            result.Add(new TableSnapshot(table.Name.ToString(), rows, hash));
        }

        return result;
    }

    // PostgreSQL types Npgsql reads as a scalar whose invariant text is the value: read as they are.
    private static readonly string[] PostgreSqlNativeTypes =
    [
        "smallint", "integer", "bigint", "real", "double precision", "boolean", "uuid", "timestamp without time zone",
        "timestamp with time zone", "date",
        "time without time zone", "bytea", "text", "character varying", "character", "name", "json", "jsonb", "xml",
        "\"char\"", "oid",
    ];

    /// <summary>
    /// How one column is selected. PostgreSQL values of other types are read as the server's text of them:
    /// numeric NaN and values beyond System.Decimal, intervals with months, arrays and ranges either cannot be read
    /// as a .NET scalar or would hash as their type name. A numeric's text is exactly its decimal's.
    /// </summary>
    private static string Projection(IDatabaseProvider provider, ColumnSchema column, int version)
    {
        var name = provider.QuoteIdentifier(column.Name);
        if (provider.Engine == Targets.DatabaseEngine.MySql)
        {
            // From version 2: a FLOAT's text has six significant digits (23.456789 reads 23.4568), so its exact
            // value; a TINYINT(1) reads as a boolean (2 as true, like 1), so its number.
            return version < 2 ? name
                : IsMySqlFloat(column.DataType) ? $"CAST({name} AS DOUBLE)"
                : column.DataType.StartsWith("tinyint(1)", StringComparison.OrdinalIgnoreCase) ? $"({name} + 0)"
                : name;
        }

        if (provider.Engine != Targets.DatabaseEngine.PostgreSql)
        {
            return name;
        }

        // format_type's spelling without its modifiers: "numeric(12,2)" is numeric, "time(3) without time zone" a time.
        var type = TypeModifier().Replace(column.DataType, string.Empty);
        return PostgreSqlNativeTypes.Contains(type, StringComparer.Ordinal) ? name : name + "::text";
    }

    /// <summary>A MariaDB column type that is FLOAT (float, float(7,4), float unsigned), as information_schema spells it.</summary>
    internal static bool IsMySqlFloat(string columnType) =>
        columnType.Equals("float", StringComparison.OrdinalIgnoreCase) || columnType.StartsWith("float(", StringComparison.OrdinalIgnoreCase) || columnType.StartsWith("float ", StringComparison.OrdinalIgnoreCase);

    /// <summary>The canonical text of one value, type tag included; null for NULL. The definition of the hash.</summary>
    internal static string? Canonical(object? value) => value switch
    {
        null => null,
        byte[] bytes => "x" + Convert.ToHexString(bytes),
        DateTime dt => "d" + dt.ToString(DateTimeFormat, CultureInfo.InvariantCulture),
        DateTimeOffset dto => "o" + dto.UtcDateTime.ToString(DateTimeFormat, CultureInfo.InvariantCulture),
        double d => "f" + d.ToString("R", CultureInfo.InvariantCulture),
        float f => "f" + f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable formattable => "v" + formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => "v" + Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    [System.Text.RegularExpressions.GeneratedRegex(@"\(\d+(,\d+)?\)")]
    private static partial System.Text.RegularExpressions.Regex TypeModifier();

    private const string DateTimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff";

    private enum ValueKind
    {
        Other,
        String,
        Int64,
        Int32,
        Int16,
        Decimal,
        Double,
        Single,
        Boolean,
        Guid,
        DateTime,
        DateTimeOffset,
        Bytes,
    }

    private static ValueKind KindOf(Type type) =>
        type == typeof(string) ? ValueKind.String
        : type == typeof(long) ? ValueKind.Int64
        : type == typeof(int) ? ValueKind.Int32
        : type == typeof(short) ? ValueKind.Int16
        : type == typeof(decimal) ? ValueKind.Decimal
        : type == typeof(double) ? ValueKind.Double
        : type == typeof(float) ? ValueKind.Single
        : type == typeof(bool) ? ValueKind.Boolean
        : type == typeof(Guid) ? ValueKind.Guid
        : type == typeof(DateTime) ? ValueKind.DateTime
        : type == typeof(DateTimeOffset) ? ValueKind.DateTimeOffset
        : type == typeof(byte[]) ? ValueKind.Bytes
        : ValueKind.Other;

    private static (long Rows, string Hash) HashQuery(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandTimeout = 0;
        command.CommandText = sql;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var writer = new CanonicalWriter(hash);
        long rows;

        // A cancelled hash stops the query on the server rather than reading the rest of the table to close it.
        using (cancellationToken.Register(static c => ((DbCommand)c!).Cancel(), command))
        {
            try
            {
                using var reader = command.ExecuteReader();
                // Npgsql reads a value as its field type exactly as GetValue would, without boxing it. Other readers
                // may not (ours returns DBNull for a zero date it reports as DateTime), so they go through GetValue.
                var typed = reader is Npgsql.NpgsqlDataReader;
                var kinds = new ValueKind[reader.FieldCount];
                for (var i = 0; i < kinds.Length; i++)
                {
                    kinds[i] = typed ? KindOf(reader.GetFieldType(i)) : ValueKind.Other;
                }

                rows = HashRows(reader, kinds, writer, cancellationToken);
            }
            catch (Exception ex) when (cancellationToken.IsCancellationRequested && ex is not OperationCanceledException)
            {
                throw new OperationCanceledException("The content hash was cancelled.", ex, cancellationToken);
            }
        }

        writer.Flush();
        return (rows, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
    }

    // Called once per table and hot for all its rows: optimised at once rather than left at its first-tier code.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long HashRows(DbDataReader reader, ValueKind[] kinds, CanonicalWriter writer, CancellationToken cancellationToken)
    {
        long rows = 0;
        while (reader.Read())
        {
            for (var i = 0; i < kinds.Length; i++)
            {
                if (reader.IsDBNull(i))
                {
                    writer.WriteNull();
                    continue;
                }

                switch (kinds[i])
                {
                    case ValueKind.String: writer.Write(reader.GetFieldValue<string>(i)); break;
                    case ValueKind.Int64: writer.Write(reader.GetFieldValue<long>(i)); break;
                    case ValueKind.Int32: writer.Write(reader.GetFieldValue<int>(i)); break;
                    case ValueKind.Int16: writer.Write(reader.GetFieldValue<short>(i)); break;
                    case ValueKind.Decimal: writer.Write(reader.GetFieldValue<decimal>(i)); break;
                    case ValueKind.Double: writer.Write(reader.GetFieldValue<double>(i)); break;
                    case ValueKind.Single: writer.Write(reader.GetFieldValue<float>(i)); break;
                    case ValueKind.Boolean: writer.Write(reader.GetFieldValue<bool>(i)); break;
                    case ValueKind.Guid: writer.Write(reader.GetFieldValue<Guid>(i)); break;
                    case ValueKind.DateTime: writer.Write(reader.GetFieldValue<DateTime>(i)); break;
                    case ValueKind.DateTimeOffset: writer.Write(reader.GetFieldValue<DateTimeOffset>(i)); break;
                    case ValueKind.Bytes: writer.Write(reader.GetFieldValue<byte[]>(i)); break;
                    default: writer.WriteValue(reader.GetValue(i)); break;
                }
            }

            writer.EndRow();
            if ((++rows & 0xFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        return rows;
    }

    /// <summary>Writes canonical values as UTF-8 into a buffer that is hashed whenever it fills.</summary>
    private sealed class CanonicalWriter(IncrementalHash hash) : IDisposable
    {
        private const int BufferSize = 1 << 16;

        // Room for a length prefix, a tag and any formatted number, date or GUID.
        private const int SmallValue = 96;

        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        private int _used;

        public void WriteNull()
        {
            Reserve(3);
            "-1:"u8.CopyTo(_buffer.AsSpan(_used));
            _used += 3;
        }

        public void EndRow()
        {
            Reserve(1);
            _buffer[_used++] = (byte)'\n';
        }

        private void WriteFormatted<T>(char tag, T value, ReadOnlySpan<char> format)
            where T : IUtf8SpanFormattable
        {
            Reserve(SmallValue);
            Span<byte> body = stackalloc byte[64];
            if (!value.TryFormat(body, out var length, format, CultureInfo.InvariantCulture))
            {
                WriteCanonical(tag + ((IFormattable)value).ToString(format.IsEmpty ? null : format.ToString(), CultureInfo.InvariantCulture));
                return;
            }

            // Invariant numbers, dates and GUIDs are ASCII: one byte per UTF-16 unit.
            WritePrefix(length + 1, tag);
            body[..length].CopyTo(_buffer.AsSpan(_used));
            _used += length;
        }

        private void WriteText(char tag, string text)
        {
            var maxBytes = Encoding.UTF8.GetMaxByteCount(text.Length);
            if (maxBytes + SmallValue > _buffer.Length)
            {
                // Larger than the whole buffer: hash the encoded text on its own.
                Reserve(SmallValue);
                WritePrefix(text.Length + 1, tag);
                Flush();
                var encoded = ArrayPool<byte>.Shared.Rent(maxBytes);
                var count = Encoding.UTF8.GetBytes(text, encoded);
                hash.AppendData(encoded, 0, count);
                ArrayPool<byte>.Shared.Return(encoded);
                return;
            }

            Reserve(maxBytes + SmallValue);
            WritePrefix(text.Length + 1, tag);
            _used += Encoding.UTF8.GetBytes(text, _buffer.AsSpan(_used));
        }

        private void WriteHex(byte[] bytes)
        {
            Reserve(SmallValue);
            WritePrefix((bytes.Length * 2) + 1, 'x');
            const string digits = "0123456789ABCDEF";
            foreach (var b in bytes)
            {
                Reserve(2);
                _buffer[_used] = (byte)digits[b >> 4];
                _buffer[_used + 1] = (byte)digits[b & 0xF];
                _used += 2;
            }
        }

        /// <summary>Any value, as <see cref="Canonical"/> writes it.</summary>
        public void WriteValue(object value)
        {
            switch (value)
            {
                case string text: Write(text); break;
                case long number: Write(number); break;
                case int number: Write(number); break;
                case short number: Write(number); break;
                case decimal number: Write(number); break;
                case double number: Write(number); break;
                case float number: Write(number); break;
                case bool flag: Write(flag); break;
                case Guid guid: Write(guid); break;
                case DateTime dateTime: Write(dateTime); break;
                case DateTimeOffset offset: Write(offset); break;
                case byte[] bytes: Write(bytes); break;
                default: WriteCanonical(Canonical(value)); break;
            }
        }

        // One overload per type with a direct form: each writes what Canonical gives for that type.
        public void Write(string text) => WriteText('v', text);

        public void Write(long number) => WriteFormatted('v', number, default);

        public void Write(int number) => WriteFormatted('v', number, default);

        public void Write(short number) => WriteFormatted('v', number, default);

        public void Write(decimal number) => WriteFormatted('v', number, default);

        public void Write(double number) => WriteFormatted('f', number, "R");

        public void Write(float number) => WriteFormatted('f', number, "R");

        public void Write(bool flag) => WriteText('v', flag ? bool.TrueString : bool.FalseString);

        public void Write(Guid guid) => WriteFormatted('v', guid, default);

        public void Write(DateTime dateTime) => WriteFormatted('d', dateTime, DateTimeFormat);

        public void Write(DateTimeOffset offset) => WriteFormatted('o', offset.UtcDateTime, DateTimeFormat);

        public void Write(byte[] bytes) => WriteHex(bytes);

        public void WriteCanonical(string? text)
        {
            if (text is null)
            {
                WriteNull();
                return;
            }

            WriteText(text[0], text[1..]);
        }

        public void Flush()
        {
            hash.AppendData(_buffer, 0, _used);
            _used = 0;
        }

        public void Dispose()
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }

        private void WritePrefix(int length, char tag)
        {
            length.TryFormat(_buffer.AsSpan(_used), out var written, default, CultureInfo.InvariantCulture);
            _used += written;
            _buffer[_used++] = (byte)':';
            _buffer[_used++] = (byte)tag;
        }

        private void Reserve(int bytes)
        {
            if (_used + bytes > _buffer.Length)
            {
                Flush();
            }
        }
    }
}
