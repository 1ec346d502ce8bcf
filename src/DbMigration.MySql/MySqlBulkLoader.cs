using System.Buffers;
using System.Data;
using System.Globalization;
using System.Text;
using DbMigration.MySql.Protocol;

namespace DbMigration.MySql;

/// <summary>What LOAD DATA does with a row whose key already exists.</summary>
public enum MySqlBulkLoaderConflictOption
{
    /// <summary>Fail on the duplicate (LOCAL loads then skip it with a warning, as MySQL does).</summary>
    None,
    Replace,
    Ignore,
}

/// <summary>
/// Streams rows into a table with LOAD DATA LOCAL INFILE, from an <see cref="IDataReader"/> or a
/// <see cref="Stream"/>. The client offers one stream under a random name per load and serves only that name:
/// a server asking for any other file gets nothing.
/// </summary>
public sealed class MySqlBulkLoader(MySqlConnection connection)
{
    private const int ChunkSize = 1 << 20;

    public string TableName { get; set; } = string.Empty;

    /// <summary>Target columns, in the order the data has them. Empty means all, in table order.</summary>
    public IList<string> Columns { get; } = new List<string>();

    public string FieldTerminator { get; set; } = "\t";

    public string LineTerminator { get; set; } = "\n";

    /// <summary>For a stream in CSV form: the quote character (ENCLOSED BY), e.g. '"'.</summary>
    public char? FieldQuotationCharacter { get; set; }

    public char EscapeCharacter { get; set; } = '\\';

    public int NumberOfLinesToSkip { get; set; }

    public string CharacterSet { get; set; } = "utf8mb4";

    public MySqlBulkLoaderConflictOption ConflictOption { get; set; }

    /// <summary>Seconds the load may run; 0 waits forever.</summary>
    public int Timeout { get; set; }

    /// <summary>Loads a stream already in the loader's format (terminators, escapes, \N for NULL).</summary>
    public long Load(Stream data) => LoadAsync(data, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public Task<long> LoadAsync(Stream data, CancellationToken cancellationToken = default) => LoadAsync(data, ioAsync: true, cancellationToken).AsTask();

    /// <summary>Loads every row of a reader, formatting values itself (tab-separated, escaped, \N for NULL).</summary>
    public long Load(IDataReader reader) => LoadAsync(reader, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public Task<long> LoadAsync(IDataReader reader, CancellationToken cancellationToken = default) => LoadAsync(reader, ioAsync: true, cancellationToken).AsTask();

    private ValueTask<long> LoadAsync(Stream data, bool ioAsync, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        return RunAsync((channel, io, ct) => SendStreamAsync(channel, data, io, ct), ioAsync, cancellationToken);
    }

    private ValueTask<long> LoadAsync(IDataReader reader, bool ioAsync, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reader);
        if (FieldQuotationCharacter is not null || FieldTerminator != "\t" || LineTerminator != "\n" || EscapeCharacter != '\\')
        {
            throw new InvalidOperationException("Loading from an IDataReader uses tab-separated lines with backslash escapes; leave the terminators at their defaults.");
        }

        return RunAsync((channel, io, ct) => SendReaderAsync(channel, reader, io, ct), ioAsync, cancellationToken);
    }

    private async ValueTask<long> RunAsync(Func<PacketChannel, bool, CancellationToken, ValueTask> send, bool ioAsync, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(TableName))
        {
            throw new InvalidOperationException("Set TableName before loading.");
        }

        var session = connection.Session;
        var name = ":dbmigration-stream:" + Guid.NewGuid().ToString("N");
        session.OfferedFile = (name, send);
        try
        {
            using var command = new MySqlCommand(BuildSql(name, session.NoBackslashEscapes), connection) { CommandTimeout = Timeout };
            var reader = await command.ExecuteReaderAsync(CommandBehavior.Default, ioAsync, cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.NextResultAsync(ioAsync, cancellationToken).ConfigureAwait(false))
                {
                }

                return reader.RecordsAffected;
            }
        }
        finally
        {
            session.OfferedFile = null;
        }
    }

    private string BuildSql(string fileName, bool noBackslashEscapes)
    {
        var sb = new StringBuilder("LOAD DATA LOCAL INFILE ");
        SqlParameterWriter.AppendString(sb, fileName, noBackslashEscapes);
        sb.Append(ConflictOption switch
        {
            MySqlBulkLoaderConflictOption.Replace => " REPLACE",
            MySqlBulkLoaderConflictOption.Ignore => " IGNORE",
            _ => string.Empty,
        });
        sb.Append(" INTO TABLE ").Append(QuoteTable(TableName));
        sb.Append(" CHARACTER SET ").Append(CharacterSet.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? CharacterSet : throw new InvalidOperationException("Invalid character set name."));
        sb.Append(" FIELDS TERMINATED BY ");
        SqlParameterWriter.AppendString(sb, FieldTerminator, noBackslashEscapes);
        if (FieldQuotationCharacter is { } quote)
        {
            sb.Append(" OPTIONALLY ENCLOSED BY ");
            SqlParameterWriter.AppendString(sb, quote.ToString(), noBackslashEscapes);
        }

        sb.Append(" ESCAPED BY ");
        SqlParameterWriter.AppendString(sb, EscapeCharacter.ToString(), noBackslashEscapes);
        sb.Append(" LINES TERMINATED BY ");
        SqlParameterWriter.AppendString(sb, LineTerminator, noBackslashEscapes);
        if (NumberOfLinesToSkip > 0)
        {
            sb.Append(" IGNORE ").Append(NumberOfLinesToSkip.ToString(CultureInfo.InvariantCulture)).Append(" LINES");
        }

        if (Columns.Count > 0)
        {
            sb.Append(" (").Append(string.Join(", ", Columns.Select(QuoteIdentifier))).Append(')');
        }

        return sb.ToString();
    }

    private static string QuoteIdentifier(string name) => "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";

    private static string QuoteTable(string name) =>
        string.Join('.', name.Split('.').Select(part => part.StartsWith('`') ? part : QuoteIdentifier(part)));

    private static async ValueTask SendStreamAsync(PacketChannel channel, Stream data, bool ioAsync, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            while (true)
            {
                var read = ioAsync
                    ? await data.ReadAsync(buffer.AsMemory(0, ChunkSize), cancellationToken).ConfigureAwait(false)
                    : data.Read(buffer, 0, ChunkSize);
                if (read == 0)
                {
                    break;
                }

                await channel.WritePacketAsync(buffer.AsMemory(0, read), ioAsync, cancellationToken).ConfigureAwait(false);
            }

            await channel.WritePacketAsync(ReadOnlyMemory<byte>.Empty, ioAsync, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async ValueTask SendReaderAsync(PacketChannel channel, IDataReader reader, bool ioAsync, CancellationToken cancellationToken)
    {
        var chunk = new byte[ChunkSize + 64 * 1024];
        var length = 0;
        var text = new StringBuilder(256);
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            text.Clear();
            for (var i = 0; i < reader.FieldCount; i++)
            {
                if (i > 0)
                {
                    text.Append('\t');
                }

                AppendField(text, reader.IsDBNull(i) ? null : reader.GetValue(i));
            }

            text.Append('\n');
            var needed = Encoding.UTF8.GetMaxByteCount(text.Length);
            if (length + needed > chunk.Length)
            {
                await channel.WritePacketAsync(chunk.AsMemory(0, length), ioAsync, cancellationToken).ConfigureAwait(false);
                length = 0;
                if (needed > chunk.Length)
                {
                    chunk = new byte[needed];
                }
            }

            foreach (var piece in text.GetChunks())
            {
                length += Encoding.UTF8.GetBytes(piece.Span, chunk.AsSpan(length));
            }

            if (length >= ChunkSize)
            {
                await channel.WritePacketAsync(chunk.AsMemory(0, length), ioAsync, cancellationToken).ConfigureAwait(false);
                length = 0;
            }
        }

        if (length > 0)
        {
            await channel.WritePacketAsync(chunk.AsMemory(0, length), ioAsync, cancellationToken).ConfigureAwait(false);
        }

        await channel.WritePacketAsync(ReadOnlyMemory<byte>.Empty, ioAsync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One field in LOAD DATA's escaped tab-separated form.</summary>
    internal static void AppendField(StringBuilder sb, object? value)
    {
        switch (value)
        {
            case null:
            case DBNull:
                sb.Append("\\N");
                return;
            case bool b:
                sb.Append(b ? '1' : '0');
                return;
            case string s:
                AppendEscaped(sb, s);
                return;
            case DateTime dt:
                sb.Append(dt.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture));
                return;
            case DateTimeOffset dto:
                sb.Append(dto.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture));
                return;
            case Guid g:
                sb.Append(g.ToString("D"));
                return;
            case byte[]:
                // The reader path encodes text as UTF-8, which would mangle arbitrary bytes.
                throw new NotSupportedException("Binary values cannot be bulk-loaded from an IDataReader; load them with INSERT parameters (hex literals).");
            case IFormattable formattable:
                AppendEscaped(sb, formattable.ToString(null, CultureInfo.InvariantCulture));
                return;
            default:
                AppendEscaped(sb, Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);
                return;
        }
    }

    private static void AppendEscaped(StringBuilder sb, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\0':
                    sb.Append("\\0");
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }
}
