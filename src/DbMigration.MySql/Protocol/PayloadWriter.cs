using System.Buffers.Binary;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>Builds one packet payload in a growable buffer.</summary>
internal sealed class PayloadWriter
{
    private byte[] _buffer;

    public PayloadWriter(int capacity = 256) => _buffer = new byte[capacity];

    public int Length { get; private set; }

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, Length);

    public void Clear() => Length = 0;

    public Span<byte> GetSpan(int size)
    {
        if (Length + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + size));
        }

        return _buffer.AsSpan(Length, size);
    }

    public void Advance(int count) => Length += count;

    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        Length++;
    }

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(GetSpan(2), value);
        Length += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(GetSpan(4), value);
        Length += 4;
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Length += bytes.Length;
    }

    public void WriteZeros(int count)
    {
        GetSpan(count).Clear();
        Length += count;
    }

    public void WriteLengthEncodedInteger(ulong value)
    {
        switch (value)
        {
            case < 0xFB:
                WriteByte((byte)value);
                break;
            case <= 0xFFFF:
                WriteByte(0xFC);
                WriteUInt16((ushort)value);
                break;
            case <= 0xFFFFFF:
                WriteByte(0xFD);
                WriteByte((byte)value);
                WriteByte((byte)(value >> 8));
                WriteByte((byte)(value >> 16));
                break;
            default:
                WriteByte(0xFE);
                BinaryPrimitives.WriteUInt64LittleEndian(GetSpan(8), value);
                Length += 8;
                break;
        }
    }

    public void WriteNullTerminatedString(string value)
    {
        WriteString(value);
        WriteByte(0);
    }

    public void WriteString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        Encoding.UTF8.GetBytes(value, GetSpan(count));
        Length += count;
    }

    public void WriteLengthEncodedBytes(ReadOnlySpan<byte> bytes)
    {
        WriteLengthEncodedInteger((ulong)bytes.Length);
        WriteBytes(bytes);
    }
}
