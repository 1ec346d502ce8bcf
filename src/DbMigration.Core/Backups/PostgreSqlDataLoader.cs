using System.Buffers;
using System.Text;
using System.Collections.Concurrent;
using DbMigration.Errors;
using DbMigration.Operations;
using Npgsql;

namespace DbMigration.Backups;

/// <summary>
/// Loads the COPY blocks of a pg_restore data script over several connections at once. pg_restore -j gives each
/// table one job, so a database that is mostly one large table loads on one core; here every table's rows are dealt
/// out in blocks of whole lines to every connection. A COPY text row never holds a raw newline (the format escapes
/// it), so a block boundary after a newline never splits a row.
/// </summary>
internal sealed class PostgreSqlDataLoader
{
    private static readonly byte[] EndOfData = "\\.\n"u8.ToArray();
    private static readonly byte[] NewlineEndOfData = "\n\\.\n"u8.ToArray();

    private readonly Stream _script;
    private readonly IReadOnlyList<NpgsqlConnection> _connections;
    private readonly IProgress<OperationUpdate>? _progress;
    private readonly long _expectedBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _endOfScript;
    private long _consumed;
    private int _reportedPercent = -1;

    // Rows per table, counted as the lines of each COPY block sent; null once a COPY names a table this cannot read.
    private Dictionary<string, long>? _rowsByTable = new(StringComparer.Ordinal);
    private string? _table;

    private PostgreSqlDataLoader(Stream script, IReadOnlyList<NpgsqlConnection> connections, IProgress<OperationUpdate>? progress, long expectedBytes)
    {
        _script = script;
        _connections = connections;
        _progress = progress;
        _expectedBytes = Math.Max(1, expectedBytes);
        _buffer = new byte[Math.Max(4096, BlockBytes * 2)];
    }

    /// <summary>How much of a table one connection is given at a time. Tests make it small, so rows cross many blocks.</summary>
    internal static int BlockBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Reads the script to its end, loading each COPY block. Returns <see cref="LoadedRows.Loaded"/> false, having
    /// loaded nothing, when the script's client encoding is not UTF-8 (DbMigration's connections speak UTF-8): the
    /// caller then lets pg_restore load it.
    /// </summary>
    /// <remarks>
    /// The reading and each connection's writing run as blocking loops on threads of their own: async methods called
    /// per 64 KiB read would be compiled, and then recompiled hot, at run time, which took half a second of CPU.
    /// </remarks>
    public static Task<LoadedRows> LoadAsync(Stream script, IReadOnlyList<NpgsqlConnection> connections, IProgress<OperationUpdate>? progress, long expectedBytes, CancellationToken cancellationToken) =>
        DedicatedThread.Run(() => new PostgreSqlDataLoader(script, connections, progress, expectedBytes).Run(cancellationToken), cancellationToken);

    private LoadedRows Run(CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var queues = _connections.Select(_ => new BlockingCollection<Job>()).ToArray();
        var pumps = _connections.Select((connection, i) => DedicatedThread.Run(() => Pump(connection, queues[i], failed), CancellationToken.None)).ToArray();
        try
        {
            var loaded = Read(queues, failed.Token);
            foreach (var queue in queues)
            {
                queue.CompleteAdding();
            }

            Task.WaitAll(pumps);
            if (_reportedPercent >= 0)
            {
                _progress?.Report(new ProgressUpdate(8, "Loading the backup's rows", $"{_consumed / (1 << 20)} MiB", 100, Completed: true));
            }

            return new LoadedRows(loaded, loaded ? _rowsByTable : null);
        }
        catch (Exception ex)
        {
            failed.Cancel();
            foreach (var queue in queues)
            {
                queue.CompleteAdding();
            }

            // A connection's failure is what stopped the reading, which then saw only the cancellation.
            var pumpFailure = FirstFailure(pumps);
            cancellationToken.ThrowIfCancellationRequested();
            var cause = ex is OperationCanceledException or AggregateException && pumpFailure is not null ? pumpFailure : ex;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
            throw;
        }
        finally
        {
            foreach (var queue in queues)
            {
                queue.Dispose();
            }
        }
    }

    private bool Read(BlockingCollection<Job>[] queues, CancellationToken cancellationToken)
    {
        var copied = false;
        while (ReadLine(cancellationToken) is { } line)
        {
            // \restrict and \unrestrict (pg_restore 15.14 and later) guard psql against a forged script; they load nothing.
            if (line.Length == 0 || line.StartsWith("--", StringComparison.Ordinal) || line.StartsWith("\\restrict ", StringComparison.Ordinal) || line.StartsWith("\\unrestrict ", StringComparison.Ordinal))
            {
                continue;
            }

            if (line.StartsWith("COPY ", StringComparison.Ordinal))
            {
                // A quoted name may hold a newline: the statement then runs on over the next lines.
                var header = line;
                while (!header.EndsWith(" FROM stdin;", StringComparison.Ordinal))
                {
                    header += "\n" + (ReadLine(cancellationToken) ?? throw Unexpected(line));
                }

                _table = TableOf(header);
                if (_table is null)
                {
                    _rowsByTable = null;
                }
                else if (_rowsByTable is not null)
                {
                    _rowsByTable.TryAdd(_table, 0);
                }

                Copy(header[..^"stdin;".Length] + "STDIN", queues, cancellationToken);
                copied = true;
                continue;
            }

            if (line.StartsWith("SET client_encoding = ", StringComparison.Ordinal))
            {
                if (line != "SET client_encoding = 'UTF8';")
                {
                    return copied ? throw Unexpected(line) : false;
                }

                continue;
            }

            // Session settings (search_path, row_security, …) apply to every connection.
            if ((line.StartsWith("SET ", StringComparison.Ordinal) || line.StartsWith("SELECT pg_catalog.set_config(", StringComparison.Ordinal)) && line.EndsWith(';'))
            {
                foreach (var queue in queues)
                {
                    queue.Add(new Job(line, null), cancellationToken);
                }

                continue;
            }

            throw Unexpected(line);
        }

        return true;
    }

    private static DbMigrationException Unexpected(string line) =>
        new(ErrorIds.RestoreFailed, ErrorKind.InvalidData, $"pg_restore's data script held a statement DbMigration does not load: {(line.Length > 200 ? line[..200] + "…" : line)}") { Sql = line };

    /// <summary>One table: every connection starts its COPY, then takes blocks of rows as it is ready for them.</summary>
    private void Copy(string copyFromStdin, BlockingCollection<Job>[] queues, CancellationToken cancellationToken)
    {
        var blocks = new BlockingCollection<Block>(queues.Length * 2);
        foreach (var queue in queues)
        {
            queue.Add(new Job(copyFromStdin, blocks), cancellationToken);
        }

        try
        {
            while (true)
            {
                var (block, done) = NextBlock(cancellationToken);
                if (block is not null)
                {
                    blocks.Add(block, cancellationToken);
                }

                if (done)
                {
                    break;
                }
            }
        }
        finally
        {
            blocks.CompleteAdding();
        }
    }

    /// <summary>One connection's work, in order: settings to apply and tables to load.</summary>
    private static void Pump(NpgsqlConnection connection, BlockingCollection<Job> jobs, CancellationTokenSource failed)
    {
        NpgsqlCopyTextWriter? writer = null;
        var sql = string.Empty;
        try
        {
            foreach (var job in jobs.GetConsumingEnumerable(failed.Token))
            {
                sql = job.Sql;
                if (job.Blocks is null)
                {
                    using var command = new NpgsqlCommand(job.Sql, connection);
                    command.ExecuteNonQuery();
                    continue;
                }

                writer = (NpgsqlCopyTextWriter)connection.BeginTextImport(job.Sql);

                // The rows are already COPY text in UTF-8: they go to the raw stream under the writer.
                var stream = writer.BaseStream;
                foreach (var block in job.Blocks.GetConsumingEnumerable(failed.Token))
                {
                    try
                    {
                        stream.Write(block.Bytes, 0, block.Length);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(block.Bytes);
                    }
                }

                writer.Dispose();
                writer = null;
            }
        }
        catch (Exception ex)
        {
            failed.Cancel();
            try
            {
                writer?.Cancel();
            }
            catch (Exception)
            {
                // Cancelling a COPY the server already failed reports that failure again; the first report stands.
            }

            if (ex is PostgresException server)
            {
                throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.InvalidData,
                    $"Loading the backup's rows failed: {server.MessageText}{(server.Where is null ? string.Empty : " (" + server.Where + ")")}", server)
                { Sql = sql, SqlState = server.SqlState };
            }

            throw;
        }
    }

    private static Exception? FirstFailure(Task[] pumps)
    {
        try
        {
            Task.WaitAll(pumps);
        }
        catch (AggregateException)
        {
        }

        var failures = pumps.Where(p => p.IsFaulted).Select(p => p.Exception!.InnerException!).ToList();
        return failures.Find(f => f is DbMigrationException) ?? failures.Find(f => f is not OperationCanceledException);
    }

    /// <summary>
    /// The next run of whole rows, about <see cref="BlockBytes"/> long, and whether the COPY's end line followed it.
    /// A row longer than a block is one block of its own.
    /// </summary>
    private (Block? Block, bool Done) NextBlock(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_end - _start < BlockBytes && !_endOfScript)
            {
                Fill(cancellationToken);
                continue;
            }

            var available = _buffer.AsSpan(_start, _end - _start);
            if (available.StartsWith(EndOfData))
            {
                Consume(EndOfData.Length);
                return (null, true);
            }

            var window = available[..Math.Min(available.Length, BlockBytes)];
            var end = window.IndexOf(NewlineEndOfData);
            var done = end >= 0;
            var length = done ? end + 1 : window.LastIndexOf((byte)'\n') + 1;
            if (length == 0)
            {
                // One row longer than a block: it goes whole, once its newline is in.
                length = available.IndexOf((byte)'\n') + 1;
                if (length == 0)
                {
                    if (_endOfScript)
                    {
                        throw new EndOfStreamException("pg_restore's data script ended inside a COPY block.");
                    }

                    Fill(cancellationToken);
                    continue;
                }
            }

            var block = new Block(ArrayPool<byte>.Shared.Rent(length), length);
            available[..length].CopyTo(block.Bytes);
            if (_rowsByTable is not null)
            {
                // A COPY text row is one line: the format escapes newlines inside values.
                _rowsByTable[_table!] += available[..length].Count((byte)'\n');
            }

            Consume(length + (done ? EndOfData.Length : 0));
            ReportRows();
            return (block, done);
        }
    }

    private void Consume(int count)
    {
        _start += count;
        _consumed += count;
    }

    /// <summary>Progress by the script's bytes read, which are mostly rows: the archive's size is the total.</summary>
    private void ReportRows()
    {
        var percent = (int)Math.Min(99, 100 * _consumed / _expectedBytes);
        if (percent > _reportedPercent)
        {
            _reportedPercent = percent;
            _progress?.Report(new ProgressUpdate(8, "Loading the backup's rows", $"{_consumed / (1 << 20)} MiB", percent));
        }
    }

    /// <summary>A script line (settings, comments, COPY headers), or null at the end.</summary>
    private string? ReadLine(CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = Encoding.UTF8.GetString(_buffer, _start, newline);
                Consume(newline + 1);
                return line;
            }

            if (_endOfScript)
            {
                if (_end == _start)
                {
                    return null;
                }

                var last = Encoding.UTF8.GetString(_buffer, _start, _end - _start);
                Consume(_end - _start);
                return last;
            }

            Fill(cancellationToken);
        }
    }

    private void Fill(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        var read = _script.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0)
        {
            // Cancelling kills pg_restore, which ends its output: that end is the cancellation.
            cancellationToken.ThrowIfCancellationRequested();
            _endOfScript = true;
        }

        _end += read;
    }

    /// <summary>
    /// "public.events" from "COPY public.events (id, …) FROM stdin;", as the manifest names tables: pg_dump quotes
    /// each name where it must, doubling any quote inside. Null for a header of another shape.
    /// </summary>
    internal static string? TableOf(string copyHeader)
    {
        var parts = new List<string>(2);
        var i = "COPY ".Length;
        while (true)
        {
            var name = new StringBuilder();
            if (i < copyHeader.Length && copyHeader[i] == '"')
            {
                i++;
                while (true)
                {
                    var quote = copyHeader.IndexOf('"', i);
                    if (quote < 0)
                    {
                        return null;
                    }

                    name.Append(copyHeader, i, quote - i);
                    i = quote + 1;
                    if (i < copyHeader.Length && copyHeader[i] == '"')
                    {
                        name.Append('"');
                        i++;
                        continue;
                    }

                    break;
                }
            }
            else
            {
                var start = i;
                while (i < copyHeader.Length && (char.IsAsciiLetterLower(copyHeader[i]) || char.IsAsciiDigit(copyHeader[i]) || copyHeader[i] is '_' or '$'))
                {
                    i++;
                }

                if (i == start)
                {
                    return null;
                }

                name.Append(copyHeader, start, i - start);
            }

            parts.Add(name.ToString());
            if (i < copyHeader.Length && copyHeader[i] == '.')
            {
                i++;
                continue;
            }

            return parts.Count == 2 && i < copyHeader.Length && copyHeader[i] == ' ' ? parts[0] + "." + parts[1] : null;
        }
    }

    private sealed record Block(byte[] Bytes, int Length);

    /// <summary>A statement for one connection, or with <see cref="Blocks"/> a table to load: its COPY and its rows.</summary>
    private sealed record Job(string Sql, BlockingCollection<Block>? Blocks);
}

/// <summary>
/// Whether the loader loaded the script, and the rows it loaded per table ("schema.name"): the lines of every COPY
/// the server accepted. Null where a COPY named a table in a way the loader does not read.
/// </summary>
internal sealed record LoadedRows(bool Loaded, IReadOnlyDictionary<string, long>? RowsByTable);
