using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using DbMigration.Operations;
using System.Text;
using DbMigration.Errors;

namespace DbMigration.Backups;

/// <summary>
/// The byte pipeline of a backup file: raw snapshot, then Zstandard or Brotli, then AES-256-GCM in authenticated chunks, hashed
/// with SHA-256 as it is written. Reading runs it backwards and detects a wrong passphrase, a flipped byte and a
/// truncated file.
/// </summary>
internal static class BackupStreams
{
    public const int ChunkSize = 1 << 20;
    public const int Iterations = 600_000;
    private static readonly byte[] Magic = "DBMENC1\n"u8.ToArray();
    private static readonly byte[] KeyCheckLabel = "dbmigration-key-check"u8.ToArray();

    public const string Zstd1 = "zstd-1";
    public const string Brotli0 = "brotli-0";
    public const string Brotli4 = "brotli-4";

    /// <summary>The codec and level a new backup is written with.</summary>
    public static string? MethodFor(BackupCompression compression) => compression switch
    {
        BackupCompression.Fast => Zstd1,
        BackupCompression.Small => Brotli4,
        _ => null,
    };

    /// <summary>The codec and level a backup's files were written with (older backup.json files name only the option).</summary>
    public static string? MethodOf(BackupInfo backup) => backup.CompressionMethod ?? backup.Compression switch
    {
        BackupCompression.Fast => Brotli0,
        BackupCompression.Small => Brotli4,
        _ => null,
    };

    public static string Extension(string? method, bool encrypted) =>
        (method is null ? string.Empty : Parse(method).Codec == "zstd" ? ".zst" : ".br") + (encrypted ? ".enc" : string.Empty);

    /// <summary>Zstandard uses both cores on the usual two-core server: compression is the backup's slowest stage.</summary>
    private static int ZstdWorkers => Math.Min(Environment.ProcessorCount, 4);

    private static (string Codec, int Level) Parse(string method)
    {
        var dash = method.LastIndexOf('-');
        if (dash > 0 && int.TryParse(method.AsSpan(dash + 1), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var level)
            && method[..dash] is "zstd" or "brotli")
        {
            return (method[..dash], level);
        }

        throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData,
            $"The backup was compressed with '{method}', which this version of DbMigration cannot read.");
    }

    /// <summary>Derives the key and describes it for backup.json (salt and a key check, never the key).</summary>
    public static (byte[] Key, BackupEncryption Description) DeriveNewKey(string passphrase)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var key = Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, Iterations, HashAlgorithmName.SHA256, 32);
        return (key, new BackupEncryption("AES-256-GCM", "PBKDF2-SHA256", Iterations, Convert.ToBase64String(salt), KeyCheck(key), ChunkSize));
    }

    public static byte[] DeriveKey(string passphrase, BackupEncryption encryption)
    {
        var key = Rfc2898DeriveBytes.Pbkdf2(passphrase, Convert.FromBase64String(encryption.Salt), encryption.Iterations, HashAlgorithmName.SHA256, 32);
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(KeyCheck(key)), Convert.FromBase64String(encryption.KeyCheck)))
        {
            throw new DbMigrationException(ErrorIds.BackupWrongPassphrase, ErrorKind.SecurityError, "The passphrase does not match the one this backup was encrypted with.");
        }

        return key;
    }

    private static string KeyCheck(byte[] key) => Convert.ToBase64String(HMACSHA256.HashData(key, KeyCheckLabel));

    /// <summary>Copies <paramref name="source"/> to a new file through compression and encryption; returns size and SHA-256.</summary>
    public static async Task<BackupFile> WriteAsync(
        Stream source, string destination, string kind, string? method, byte[]? key,
        Func<Stream, Stream>? wrapOutput, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        await using var file = SecureFiles.Create(destination, 1 << 20);
        Stream output = wrapOutput is null ? file : wrapOutput(file);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hashing = new HashingStream(output, sha);
        Stream sink = hashing;
        EncryptingStream? encrypting = null;
        if (key is not null)
        {
            encrypting = new EncryptingStream(hashing, key);
            sink = encrypting;
        }

        Stream? compressing = null;
        if (method is not null)
        {
            var (codec, level) = Parse(method);
            if (codec == "zstd")
            {
                var zstd = new ZstdSharp.CompressionStream(sink, level, 1 << 20, leaveOpen: true);
                zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_nbWorkers, ZstdWorkers);
                zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
                compressing = zstd;
            }
            else
            {
                compressing = new BrotliWriteStream(sink, level);
            }

            sink = compressing;
        }

        try
        {
            var buffer = new byte[1 << 20];
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                await sink.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
                progress?.Report(total);
            }

            if (compressing is BrotliWriteStream brotli)
            {
                await brotli.FinishAsync(cancellationToken).ConfigureAwait(false);
            }

            if (compressing is not null)
            {
                // zstd ends its frame here (its content checksum included) and writes what the workers still hold.
                await compressing.DisposeAsync().ConfigureAwait(false);
                compressing = null;
            }
        }
        finally
        {
            if (compressing is not null)
            {
                // The copy failed and its file is thrown away: closing must not hide the error that got us here.
                try
                {
                    compressing.Dispose();
                }
                catch (Exception ex) when (ex is IOException or ZstdSharp.ZstdException or ObjectDisposedException)
                {
                }
            }
        }

        if (encrypting is not null)
        {
            await encrypting.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        await hashing.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (!ReferenceEquals(output, file))
        {
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        file.Flush(flushToDisk: true);
        return new BackupFile(Path.GetFileName(destination), file.Length, Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant(), kind);
    }

    /// <summary>SHA-256 of a file, read with plain blocking reads on a thread of its own (it often runs beside other hashing).</summary>
    public static Task<string> Sha256Async(string path, CancellationToken cancellationToken) => DedicatedThread.Run(() =>
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.SequentialScan);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            hash.AppendData(buffer, 0, read);
        }

        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }, cancellationToken);

    /// <summary>Opens a backup file for reading its plain content: decrypting and decompressing as needed.</summary>
    public static Stream OpenRead(string path, string? method, byte[]? key)
    {
        var codec = method is null ? null : Parse(method).Codec;
        Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        if (key is not null)
        {
            stream = new DecryptingStream(stream, key);
        }

        return codec switch
        {
            "zstd" => new ZstdSharp.DecompressionStream(stream, 1 << 20, checkEndOfStream: true, leaveOpen: false),
            "brotli" => new BrotliStream(stream, CompressionMode.Decompress),
            _ => stream,
        };
    }

    /// <summary>
    /// Brotli at an explicit quality, into <paramref name="inner"/> (left open). .NET 8's BrotliStream offers only
    /// quality 1 and 4; quality 0, a standard Brotli stream like any other, compresses about 60% faster than 1.
    /// </summary>
    private sealed class BrotliWriteStream(Stream inner, int quality) : WriteOnlyStream(inner)
    {
        private const int Window = 22;
        private readonly byte[] _output = new byte[1 << 17];
        private BrotliEncoder _encoder = new(quality, Window);
        private bool _finished;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            OperationStatus status;
            do
            {
                status = Compress(buffer, final: false, out var consumed, out var written);
                buffer = buffer[consumed..];
                Inner.Write(_output, 0, written);
            }
            while (status != OperationStatus.Done);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            OperationStatus status;
            do
            {
                status = Compress(buffer.Span, final: false, out var consumed, out var written);
                buffer = buffer[consumed..];
                await Inner.WriteAsync(_output.AsMemory(0, written), cancellationToken).ConfigureAwait(false);
            }
            while (status != OperationStatus.Done);
        }

        /// <summary>Writes the end of the stream. Without it the file is truncated, and reading it fails.</summary>
        public async Task FinishAsync(CancellationToken cancellationToken)
        {
            OperationStatus status;
            do
            {
                status = Compress(ReadOnlySpan<byte>.Empty, final: true, out _, out var written);
                await Inner.WriteAsync(_output.AsMemory(0, written), cancellationToken).ConfigureAwait(false);
            }
            while (status != OperationStatus.Done);
            _finished = true;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _encoder.Dispose();
            }

            base.Dispose(disposing);
        }

        private OperationStatus Compress(ReadOnlySpan<byte> input, bool final, out int consumed, out int written)
        {
            ObjectDisposedException.ThrowIf(_finished && !input.IsEmpty, this);
            var status = _encoder.Compress(input, _output, out consumed, out written, final);
            if (status == OperationStatus.InvalidData)
            {
                throw new InvalidOperationException("The Brotli encoder rejected its input.");
            }

            return status;
        }
    }

    /// <summary>Hashes everything written through it.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : WriteOnlyStream(inner)
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            Inner.Write(buffer);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            hash.AppendData(buffer.Span);
            await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The parts every write-only stage of the pipeline shares: no reading or seeking, array writes routed to the
    /// span overloads, and flushes passed to the stream underneath.
    /// </summary>
    private abstract class WriteOnlyStream(Stream inner) : Stream
    {
        protected Stream Inner { get; } = inner;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public abstract override void Write(ReadOnlySpan<byte> buffer);

        public abstract override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => Inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>
    /// AES-256-GCM in chunks: header = magic + 4-byte nonce prefix; chunk = 4-byte length, ciphertext, 16-byte tag.
    /// The nonce is prefix + chunk index; the associated data binds the index and a final-chunk flag, so chunks
    /// cannot be reordered, dropped or cut off without detection.
    /// </summary>
    private sealed class EncryptingStream(Stream inner, byte[] key) : WriteOnlyStream(inner)
    {
        private readonly AesGcm _aes = new(key, 16);
        private readonly byte[] _prefix = RandomNumberGenerator.GetBytes(4);
        private readonly byte[] _plain = new byte[ChunkSize];
        private int _filled;
        private long _index;
        private bool _headerWritten;

        public override void Write(ReadOnlySpan<byte> buffer) => WriteAsync(buffer.ToArray()).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (buffer.Length > 0)
            {
                var take = Math.Min(buffer.Length, ChunkSize - _filled);
                buffer.Span[..take].CopyTo(_plain.AsSpan(_filled));
                _filled += take;
                buffer = buffer[take..];
                if (_filled == ChunkSize)
                {
                    await WriteChunkAsync(final: false, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        public async Task CompleteAsync(CancellationToken cancellationToken) => await WriteChunkAsync(final: true, cancellationToken).ConfigureAwait(false);

        private async Task WriteChunkAsync(bool final, CancellationToken cancellationToken)
        {
            if (!_headerWritten)
            {
                await Inner.WriteAsync(Magic, cancellationToken).ConfigureAwait(false);
                await Inner.WriteAsync(_prefix, cancellationToken).ConfigureAwait(false);
                _headerWritten = true;
            }

            var output = new byte[4 + _filled + 16];
            BinaryPrimitives.WriteInt32LittleEndian(output, _filled);
            _aes.Encrypt(Nonce(_prefix, _index), _plain.AsSpan(0, _filled), output.AsSpan(4, _filled), output.AsSpan(4 + _filled, 16), Aad(_index, final));
            await Inner.WriteAsync(output, cancellationToken).ConfigureAwait(false);
            _index++;
            _filled = 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _aes.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private static byte[] Nonce(byte[] prefix, long index)
    {
        var nonce = new byte[12];
        prefix.CopyTo(nonce, 0);
        BinaryPrimitives.WriteInt64BigEndian(nonce.AsSpan(4), index);
        return nonce;
    }

    private static byte[] Aad(long index, bool final)
    {
        var aad = new byte[9];
        BinaryPrimitives.WriteInt64BigEndian(aad, index);
        aad[8] = final ? (byte)1 : (byte)0;
        return aad;
    }

    private sealed class DecryptingStream(Stream inner, byte[] key) : Stream
    {
        private readonly AesGcm _aes = new(key, 16);
        private byte[]? _prefix;
        private byte[] _plain = [];
        private int _offset;
        private int _length;
        private long _index;
        private bool _finished;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            while (_offset == _length)
            {
                if (_finished || !NextChunk())
                {
                    return 0;
                }
            }

            var take = Math.Min(buffer.Length, _length - _offset);
            _plain.AsSpan(_offset, take).CopyTo(buffer);
            _offset += take;
            return take;
        }

        private bool NextChunk()
        {
            if (_prefix is null)
            {
                var header = new byte[Magic.Length + 4];
                if (inner.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !header.AsSpan(0, Magic.Length).SequenceEqual(Magic))
                {
                    throw Corrupt("the encrypted file has no valid header");
                }

                _prefix = header[Magic.Length..];
            }

            var lengthBytes = new byte[4];
            var got = inner.ReadAtLeast(lengthBytes, 4, throwOnEndOfStream: false);
            if (got < 4)
            {
                throw Corrupt("the encrypted file is truncated (its final chunk is missing)");
            }

            var length = BinaryPrimitives.ReadInt32LittleEndian(lengthBytes);
            if (length < 0 || length > ChunkSize)
            {
                throw Corrupt("a chunk length is invalid");
            }

            var cipher = new byte[length + 16];
            if (inner.ReadAtLeast(cipher, cipher.Length, throwOnEndOfStream: false) < cipher.Length)
            {
                throw Corrupt("the encrypted file is truncated mid-chunk");
            }

            if (_plain.Length < length)
            {
                _plain = new byte[ChunkSize];
            }

            // A chunk is final when nothing follows it; the tag proves the writer marked it so.
            var final = inner.CanSeek ? inner.Position == inner.Length : PeekEnd();
            try
            {
                _aes.Decrypt(Nonce(_prefix, _index), cipher.AsSpan(0, length), cipher.AsSpan(length, 16), _plain.AsSpan(0, length), Aad(_index, final));
            }
            catch (AuthenticationTagMismatchException ex)
            {
                throw Corrupt(final ? "a chunk failed authentication (altered data, or the file was cut short)" : "a chunk failed authentication (altered data)", ex);
            }

            _index++;
            _offset = 0;
            _length = length;
            _finished = final;
            return true;
        }

        private bool PeekEnd() => throw new NotSupportedException("Encrypted backups are read from files.");

        private static DbMigrationException Corrupt(string reason, Exception? inner = null) =>
            new(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"The backup is corrupt: {reason}.", inner);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _aes.Dispose();
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    internal static string Describe(string? method, bool encrypted)
    {
        var parts = new StringBuilder(method is null ? "uncompressed" : Parse(method) switch
        {
            ("zstd", var level) => $"Zstandard level {level}",
            (_, var level) => $"Brotli q{level}",
        });
        if (encrypted)
        {
            parts.Append(", AES-256-GCM");
        }

        return parts.ToString();
    }
}
