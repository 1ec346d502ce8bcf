using DbMigration.Backups;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>A backup copy that fails part-way reports why, even when its output then fails as well.</summary>
public sealed class BackupStreamFailureTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(null)]
    [InlineData(BackupStreams.Zstd1)]
    [InlineData(BackupStreams.Brotli0)]
    [InlineData(BackupStreams.Brotli4)]
    public async Task A_source_that_breaks_part_way_surfaces_its_own_error_when_the_disk_then_fills_up(string? method)
    {
        var source = new BreakingSource(3 << 20);
        var destination = _dir.File("copy.bin");

        // zstd used to end its frame while closing, write into the full disk and report that instead.
        var error = await Assert.ThrowsAsync<IOException>(() => BackupStreams.WriteAsync(
            source, destination, "primary", method, key: null, file => new FillingDisk(file, _ => source.Broken), progress: null, CancellationToken.None));

        Assert.Equal(BreakingSource.Message, error.Message);
        Assert.True(source.Broken);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(BackupStreams.Zstd1)]
    [InlineData(BackupStreams.Brotli4)]
    public async Task A_copy_that_completes_reads_back_byte_for_byte(string? method)
    {
        var content = new byte[(3 << 20) + 12_345];
        new Random(7).NextBytes(content.AsSpan(0, content.Length / 2));
        var destination = _dir.File("copy.bin");

        var written = await BackupStreams.WriteAsync(new MemoryStream(content), destination, "primary", method, key: null, wrapOutput: null, progress: null, CancellationToken.None);

        Assert.Equal(new FileInfo(destination).Length, written.Size);
        Assert.Equal(await BackupStreams.Sha256Async(destination, CancellationToken.None), written.Sha256);
        await using var read = BackupStreams.OpenRead(destination, method, key: null);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
    }

    /// <summary>Gives <c>length</c> bytes, then fails as a dropped connection or a bad sector would.</summary>
    private sealed class BreakingSource(int length) : Stream
    {
        public const string Message = "the source broke";
        private int _position;

        public bool Broken { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position >= length)
            {
                Broken = true;
                throw new IOException(Message);
            }

            var count = Math.Min(buffer.Length, length - _position);
            buffer[..count].Fill((byte)(_position % 251));
            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
