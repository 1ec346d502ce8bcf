using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>An OK packet (or the EOF/OK terminator of a result set).</summary>
internal readonly record struct OkPacket(ulong AffectedRows, ulong LastInsertId, ServerStatus Status, ushort Warnings)
{
    public static bool IsOk(ReadOnlySpan<byte> payload) => payload.Length >= 7 && payload[0] == 0x00;

    public static bool IsErr(ReadOnlySpan<byte> payload) => payload.Length > 0 && payload[0] == 0xFF;

    /// <summary>A row-stream terminator: an EOF packet, or with DEPRECATE_EOF an OK packet with a 0xFE header.</summary>
    public static bool IsTerminator(ReadOnlySpan<byte> payload, bool deprecateEof) =>
        payload.Length > 0 && payload[0] == 0xFE && (deprecateEof ? payload.Length < PacketChannel.MaxPacketPayload : payload.Length < 9);

    public static OkPacket Parse(ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload) { Offset = 1 };
        var affected = reader.ReadLengthEncodedInteger();
        var insertId = reader.ReadLengthEncodedInteger();
        var status = (ServerStatus)reader.ReadUInt16();
        var warnings = reader.ReadUInt16();
        return new OkPacket(affected, insertId, status, warnings);
    }

    /// <summary>Parses a terminator: the old EOF layout (warnings, status) or an OK layout.</summary>
    public static OkPacket ParseTerminator(ReadOnlySpan<byte> payload, bool deprecateEof)
    {
        if (deprecateEof)
        {
            return Parse(payload);
        }

        var reader = new PayloadReader(payload) { Offset = 1 };
        var warnings = payload.Length >= 3 ? reader.ReadUInt16() : (ushort)0;
        var status = payload.Length >= 5 ? (ServerStatus)reader.ReadUInt16() : ServerStatus.None;
        return new OkPacket(0, 0, status, warnings);
    }
}

internal static class ErrPacket
{
    public static MySqlException ToException(ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload) { Offset = 1 };
        var code = reader.ReadUInt16();
        string? sqlState = null;
        if (reader.Remaining > 0 && reader.PeekByte() == (byte)'#')
        {
            reader.ReadByte();
            sqlState = Encoding.ASCII.GetString(reader.ReadBytes(5));
        }

        var message = Encoding.UTF8.GetString(reader.ReadToEnd());
        return new MySqlException(message, code, sqlState);
    }
}

/// <summary>One column of a result set (Protocol::ColumnDefinition41).</summary>
internal sealed class ColumnDefinition
{
    public required string Name { get; init; }

    public required string Table { get; init; }

    public required string Schema { get; init; }

    public required int Collation { get; init; }

    public required uint Length { get; init; }

    public required ColumnType Type { get; init; }

    public required ColumnFlags Flags { get; init; }

    public required byte Decimals { get; init; }

    public bool IsUnsigned => (Flags & ColumnFlags.Unsigned) != 0;

    public bool IsBinary => Collation == CharacterSets.Binary;

    public static ColumnDefinition Parse(ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload);
        reader.ReadLengthEncodedBytes(); // catalog, always "def"
        var schema = reader.ReadLengthEncodedString();
        var table = reader.ReadLengthEncodedString();
        reader.ReadLengthEncodedBytes(); // original table
        var name = reader.ReadLengthEncodedString();
        reader.ReadLengthEncodedBytes(); // original name
        reader.ReadLengthEncodedInteger(); // length of the fixed fields (0x0c)
        var collation = reader.ReadUInt16();
        var length = reader.ReadUInt32();
        var type = (ColumnType)reader.ReadByte();
        var flags = (ColumnFlags)reader.ReadUInt16();
        var decimals = reader.ReadByte();
        return new ColumnDefinition
        {
            Name = name,
            Table = table,
            Schema = schema,
            Collation = collation,
            Length = length,
            Type = type,
            Flags = flags,
            Decimals = decimals,
        };
    }
}
