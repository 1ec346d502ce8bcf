using System.Buffers.Binary;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>Reads the protocol's basic types from one packet payload.</summary>
internal ref struct PayloadReader(ReadOnlySpan<byte> payload)
{
    private readonly ReadOnlySpan<byte> _payload = payload;

    public int Offset { get; set; }

    public readonly int Remaining => _payload.Length - Offset;

    public readonly ReadOnlySpan<byte> Span => _payload;

    public byte ReadByte() => _payload[Offset++];

    public byte PeekByte() => _payload[Offset];

    public ushort ReadUInt16()
    {
        var value = BinaryPrimitives.ReadUInt16LittleEndian(_payload[Offset..]);
        Offset += 2;
        return value;
    }

    public uint ReadUInt24()
    {
        var value = (uint)(_payload[Offset] | _payload[Offset + 1] << 8 | _payload[Offset + 2] << 16);
        Offset += 3;
        return value;
    }

    public uint ReadUInt32()
    {
        var value = BinaryPrimitives.ReadUInt32LittleEndian(_payload[Offset..]);
        Offset += 4;
        return value;
    }

    public ulong ReadUInt64()
    {
        var value = BinaryPrimitives.ReadUInt64LittleEndian(_payload[Offset..]);
        Offset += 8;
        return value;
    }

    /// <summary>Length-encoded integer. 0xFB (NULL) is returned as ulong.MaxValue.</summary>
    public ulong ReadLengthEncodedInteger()
    {
        var first = ReadByte();
        return first switch
        {
            < 0xFB => first,
            0xFB => ulong.MaxValue,
            0xFC => ReadUInt16(),
            0xFD => ReadUInt24(),
            0xFE => ReadUInt64(),
            _ => throw new MySqlProtocolException("Invalid length-encoded integer prefix 0xFF."),
        };
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        var slice = _payload.Slice(Offset, count);
        Offset += count;
        return slice;
    }

    public ReadOnlySpan<byte> ReadLengthEncodedBytes() => ReadBytes(checked((int)ReadLengthEncodedInteger()));

    public string ReadLengthEncodedString() => Encoding.UTF8.GetString(ReadLengthEncodedBytes());

    public ReadOnlySpan<byte> ReadNullTerminatedBytes()
    {
        var end = _payload[Offset..].IndexOf((byte)0);
        if (end < 0)
        {
            end = _payload.Length - Offset;
            var rest = _payload.Slice(Offset, end);
            Offset = _payload.Length;
            return rest;
        }

        var slice = _payload.Slice(Offset, end);
        Offset += end + 1;
        return slice;
    }

    public string ReadNullTerminatedString() => Encoding.UTF8.GetString(ReadNullTerminatedBytes());

    public ReadOnlySpan<byte> ReadToEnd()
    {
        var slice = _payload[Offset..];
        Offset = _payload.Length;
        return slice;
    }
}

/// <summary>The server sent something the protocol does not allow.</summary>
public sealed class MySqlProtocolException(string message) : Exception(message);
