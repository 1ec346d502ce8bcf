using System.Net.Security;

namespace DbMigration.MySql.Protocol;

/// <summary>
/// Frames packets (3-byte length, 1-byte sequence id) over a stream, with buffered reads and payloads larger than
/// 16 MB split and joined in both directions. Every method serves sync and async callers through one code path:
/// with <c>ioAsync == false</c> the returned ValueTask has already completed.
/// </summary>
internal sealed class PacketChannel(Stream stream) : IDisposable
{
    public const int MaxPacketPayload = 0xFFFFFF;
    private const int BufferSize = 256 * 1024;

    private readonly byte[] _readBuffer = new byte[BufferSize];
    private readonly byte[] _header = new byte[4];
    private Stream _stream = stream;
    private int _readStart;
    private int _readEnd;
    private byte[] _largePayload = [];
    private byte _sequence;

    public bool IsTls => _stream is SslStream;

    /// <summary>Every command starts a new sequence at 0.</summary>
    public void ResetSequence() => _sequence = 0;

    /// <summary>
    /// Reads one logical payload (joining 16 MB continuation packets). The memory is valid until the next read.
    /// </summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadPayloadAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        var length = await ReadHeaderAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        if (length < MaxPacketPayload && length <= _readBuffer.Length)
        {
            await FillAsync(length, ioAsync, cancellationToken).ConfigureAwait(false);
            var slice = _readBuffer.AsMemory(_readStart, length);
            _readStart += length;
            return slice;
        }

        // Large payload: gather into a separate buffer, across continuation packets.
        var total = 0;
        while (true)
        {
            EnsureLargeCapacity(total + length);
            await ReadExactIntoAsync(_largePayload.AsMemory(total, length), ioAsync, cancellationToken).ConfigureAwait(false);
            total += length;
            if (length < MaxPacketPayload)
            {
                return _largePayload.AsMemory(0, total);
            }

            length = await ReadHeaderAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes one logical payload, splitting it into 16 MB packets when it is larger.</summary>
    public async ValueTask WritePayloadAsync(ReadOnlyMemory<byte> payload, bool ioAsync, CancellationToken cancellationToken)
    {
        var offset = 0;
        while (true)
        {
            var chunk = Math.Min(MaxPacketPayload, payload.Length - offset);
            await WritePacketAsync(payload.Slice(offset, chunk), ioAsync, cancellationToken).ConfigureAwait(false);
            offset += chunk;
            if (chunk < MaxPacketPayload)
            {
                return;
            }
        }
    }

    /// <summary>Writes exactly one packet (at most 16 MB - 1 bytes; callers split).</summary>
    public async ValueTask WritePacketAsync(ReadOnlyMemory<byte> packet, bool ioAsync, CancellationToken cancellationToken)
    {
        if (packet.Length > MaxPacketPayload)
        {
            throw new ArgumentOutOfRangeException(nameof(packet));
        }

        var buffer = new byte[4 + Math.Min(packet.Length, 64 * 1024)];
        buffer[0] = (byte)packet.Length;
        buffer[1] = (byte)(packet.Length >> 8);
        buffer[2] = (byte)(packet.Length >> 16);
        buffer[3] = _sequence++;
        if (packet.Length <= buffer.Length - 4)
        {
            packet.Span.CopyTo(buffer.AsSpan(4));
            await WriteAsync(buffer.AsMemory(0, 4 + packet.Length), ioAsync, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await WriteAsync(buffer.AsMemory(0, 4), ioAsync, cancellationToken).ConfigureAwait(false);
            await WriteAsync(packet, ioAsync, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Switches the stream to TLS (after the SSL request packet).</summary>
    public async ValueTask UpgradeToTlsAsync(SslClientAuthenticationOptions options, bool ioAsync, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        if (ioAsync)
        {
            await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            ssl.AuthenticateAsClient(options);
        }

        _stream = ssl;
    }

    private async ValueTask<int> ReadHeaderAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        await FillAsync(4, ioAsync, cancellationToken).ConfigureAwait(false);
        var span = _readBuffer.AsSpan(_readStart, 4);
        var length = span[0] | span[1] << 8 | span[2] << 16;
        var sequence = span[3];
        _readStart += 4;
        if (sequence != _sequence)
        {
            throw new MySqlException($"Packets out of order: expected sequence {_sequence}, got {sequence}.", MySqlClientError.ProtocolError);
        }

        _sequence++;
        return length;
    }

    /// <summary>Makes at least <paramref name="count"/> unread bytes available in the read buffer.</summary>
    private async ValueTask FillAsync(int count, bool ioAsync, CancellationToken cancellationToken)
    {
        if (_readEnd - _readStart >= count)
        {
            return;
        }

        if (_readStart + count > _readBuffer.Length)
        {
            Buffer.BlockCopy(_readBuffer, _readStart, _readBuffer, 0, _readEnd - _readStart);
            _readEnd -= _readStart;
            _readStart = 0;
        }

        while (_readEnd - _readStart < count)
        {
            int read;
            try
            {
                read = ioAsync
                    ? await _stream.ReadAsync(_readBuffer.AsMemory(_readEnd), cancellationToken).ConfigureAwait(false)
                    : _stream.Read(_readBuffer, _readEnd, _readBuffer.Length - _readEnd);
            }
            catch (IOException ex)
            {
                throw MySqlException.ConnectionLost(ex);
            }

            if (read == 0)
            {
                throw MySqlException.ConnectionLost();
            }

            _readEnd += read;
        }
    }

    private async ValueTask ReadExactIntoAsync(Memory<byte> destination, bool ioAsync, CancellationToken cancellationToken)
    {
        var buffered = Math.Min(_readEnd - _readStart, destination.Length);
        _readBuffer.AsMemory(_readStart, buffered).CopyTo(destination);
        _readStart += buffered;
        var filled = buffered;
        while (filled < destination.Length)
        {
            int read;
            try
            {
                read = ioAsync
                    ? await _stream.ReadAsync(destination[filled..], cancellationToken).ConfigureAwait(false)
                    : _stream.Read(destination[filled..].Span);
            }
            catch (IOException ex)
            {
                throw MySqlException.ConnectionLost(ex);
            }

            if (read == 0)
            {
                throw MySqlException.ConnectionLost();
            }

            filled += read;
        }
    }

    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, bool ioAsync, CancellationToken cancellationToken)
    {
        try
        {
            if (ioAsync)
            {
                await _stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _stream.Write(data.Span);
            }
        }
        catch (IOException ex)
        {
            throw MySqlException.ConnectionLost(ex);
        }
    }

    private void EnsureLargeCapacity(int size)
    {
        if (_largePayload.Length < size)
        {
            Array.Resize(ref _largePayload, Math.Max(size, _largePayload.Length * 2));
        }
    }

    public void Dispose() => _stream.Dispose();
}
