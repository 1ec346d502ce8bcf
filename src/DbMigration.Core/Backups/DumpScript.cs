using System.Text;
using DbMigration.Errors;

namespace DbMigration.Backups;

/// <summary>
/// The file format of DbMigration's built-in logical dumps: plain SQL that the engine's own client can also run,
/// with a marker comment line before each statement so the reader never has to parse SQL to split it. PostgreSQL
/// data travels as COPY … FROM stdin blocks in COPY's text format, whose escaping keeps every row on one line.
/// </summary>
internal sealed class DumpScriptWriter : IDisposable
{
    public const string Marker = "-- dbm:step";

    /// <summary>Marks a step that gives an owner or a privilege: the restore may skip it when the server lacks the role.</summary>
    public const string PrivilegeMarker = Marker + " privilege";

    /// <summary>
    /// Header lines that carry the dumped database's own statements (name, owner, settings, grants), base64-encoded
    /// inside a comment: they name the backed-up database, so psql running the file must not execute them.
    /// </summary>
    public const string DatabaseMarker = "-- dbm:database ";

    private readonly StreamWriter _writer;

    public DumpScriptWriter(string path, string header)
    {
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" };
        _writer.WriteLine(header);
    }

    /// <summary>A database-level line (kind: name, owner or setting); all come before the first statement.</summary>
    public void Database(string kind, string sql) =>
        _writer.WriteLine(DatabaseMarker + kind + " " + Convert.ToBase64String(Encoding.UTF8.GetBytes(sql)));

    public void Statement(string sql) => Write(Marker, sql);

    /// <summary>An ALTER … OWNER TO, GRANT, REVOKE or ALTER DEFAULT PRIVILEGES step.</summary>
    public void Privilege(string sql) => Write(PrivilegeMarker, sql);

    private void Write(string marker, string sql)
    {
        // A statement must not contain a marker line of its own, or the reader would split it there.
        if (sql.Contains("\n" + Marker, StringComparison.Ordinal))
        {
            throw new DbMigrationException(ErrorIds.BackupFailed, ErrorKind.InvalidData, "A schema object's definition contains the dump's step marker; it cannot be dumped safely.") { Sql = sql };
        }

        _writer.WriteLine(marker);
        _writer.Write(sql.TrimEnd().TrimEnd(';'));
        _writer.WriteLine(';');
    }

    /// <summary>Starts a COPY block; write its lines to the returned writer, then call <see cref="EndCopy"/>.</summary>
    public TextWriter BeginCopy(string copyFromStdin)
    {
        _writer.WriteLine(Marker);
        _writer.WriteLine(copyFromStdin.TrimEnd().TrimEnd(';') + ";");
        return _writer;
    }

    public void EndCopy() => _writer.WriteLine("\\.");

    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (_writer.BaseStream is FileStream file)
        {
            file.Flush(flushToDisk: true);
        }
    }

    public void Dispose() => _writer.Dispose();
}

/// <summary>Reads a built-in logical dump back step by step; COPY data is streamed, never held whole.</summary>
internal sealed class DumpScriptReader : IDisposable
{
    private readonly StreamReader _reader;
    private string? _pending;

    public DumpScriptReader(string path)
    {
        _reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan), Encoding.UTF8, false, 1 << 16);
        _pending = _reader.ReadLine();
        while (_pending is not null && !IsMarker(_pending))
        {
            if (_pending.StartsWith(DumpScriptWriter.DatabaseMarker, StringComparison.Ordinal))
            {
                var parts = _pending[DumpScriptWriter.DatabaseMarker.Length..].Split(' ', 2);
                var sql = parts.Length == 2 ? Decode(parts[1]) : throw Truncated();
                switch (parts[0])
                {
                    case "name":
                        DatabaseName = sql;
                        break;
                    case "owner":
                        DatabaseOwner = sql;
                        break;
                    default:
                        DatabaseSettings.Add(sql);
                        break;
                }
            }

            _pending = _reader.ReadLine();
        }
    }

    /// <summary>The backed-up database's name as an identifier, when the dump recorded it.</summary>
    public string? DatabaseName { get; private set; }

    /// <summary>ALTER DATABASE … OWNER TO, naming the backed-up database.</summary>
    public string? DatabaseOwner { get; private set; }

    /// <summary>The backed-up database's settings, comment and grants, naming it.</summary>
    public List<string> DatabaseSettings { get; } = [];

    private static string Decode(string base64)
    {
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            throw Truncated();
        }
    }

    /// <summary>The next statement, or null at the end. For a COPY step, read its data with <see cref="CopyLines"/> before the next call.</summary>
    public string? NextStatement(out bool isCopy) => NextStatement(out isCopy, out _);

    /// <param name="isPrivilege">Whether the step gives an owner or a privilege (<see cref="DumpScriptWriter.Privilege"/>).</param>
    public string? NextStatement(out bool isCopy, out bool isPrivilege)
    {
        isCopy = false;
        isPrivilege = _pending == DumpScriptWriter.PrivilegeMarker;
        if (_pending is null)
        {
            return null;
        }

        var first = _reader.ReadLine() ?? throw Truncated();
        if (first.StartsWith("COPY ", StringComparison.Ordinal) && first.EndsWith("FROM stdin;", StringComparison.Ordinal))
        {
            isCopy = true;
            _pending = null;
            return first;
        }

        var sql = new StringBuilder(first);
        string? line;
        while ((line = _reader.ReadLine()) is not null && !IsMarker(line))
        {
            sql.Append('\n').Append(line);
        }

        _pending = line;
        var text = sql.ToString();
        if (!text.EndsWith(';'))
        {
            throw Truncated();
        }

        return text;
    }

    /// <summary>The data lines of the current COPY step, up to its terminating <c>\.</c> line.</summary>
    public IEnumerable<string> CopyLines()
    {
        string? line;
        while ((line = _reader.ReadLine()) != "\\.")
        {
            yield return line ?? throw Truncated();
        }

        _pending = _reader.ReadLine();
        if (_pending is not null && !IsMarker(_pending))
        {
            throw Truncated();
        }
    }

    private static bool IsMarker(string line) => line is DumpScriptWriter.Marker or DumpScriptWriter.PrivilegeMarker;

    private static DbMigrationException Truncated() =>
        new(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, "The logical dump ends in the middle of a statement or COPY block; it is truncated or damaged.");

    public void Dispose() => _reader.Dispose();
}
