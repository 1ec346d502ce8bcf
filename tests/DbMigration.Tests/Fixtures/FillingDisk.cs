namespace DbMigration.Tests.Fixtures;

/// <summary>A write-only stream that fails like a full disk once <c>full</c> says so, given the bytes written with this write.</summary>
internal sealed class FillingDisk(Stream inner, Func<long, bool> full) : Stream
{
    private long _written;

    public FillingDisk(Stream inner, long failAfterBytes)
        : this(inner, written => written > failAfterBytes)
    {
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => inner.Length;

    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _written += buffer.Length;
        if (full(_written))
        {
            throw new IOException("No space left on device", 28);
        }

        inner.Write(buffer);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
