using System.Collections;
using System.Data;
using System.Data.Common;
using System.Globalization;
using DbMigration.MySql.Protocol;

namespace DbMigration.MySql;

/// <summary>
/// Streams the rows of one or more result sets. One row is held at a time: nothing is buffered beyond the
/// packet being read.
/// </summary>
public sealed class MySqlDataReader : DbDataReader
{
    private readonly MySqlCommand _command;
    private readonly MySqlConnection _connection;
    private readonly ServerSession _session;
    private readonly CommandBehavior _behavior;
    private ColumnDefinition[] _columns = [];
    private int[] _starts = [];
    private int[] _lengths = [];
    private ReadOnlyMemory<byte> _row;
    private bool _pendingRow;
    private bool _hasRows;
    private State _state;
    private long _recordsAffected = -1;
    private bool _closed;
    private Dictionary<string, int>? _ordinals;

    private enum State
    {
        Rows,
        ResultDone,
        Finished,
    }

    private MySqlDataReader(MySqlCommand command, MySqlConnection connection, ServerSession session, CommandBehavior behavior)
    {
        _command = command;
        _connection = connection;
        _session = session;
        _behavior = behavior;
    }

    internal static async ValueTask<MySqlDataReader> CreateAsync(MySqlCommand command, MySqlConnection connection, ServerSession session, CommandBehavior behavior, bool ioAsync, CancellationToken cancellationToken)
    {
        var reader = new MySqlDataReader(command, connection, session, behavior);
        connection.ActiveReader = reader;
        try
        {
            await reader.ReadResultHeaderAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            return reader;
        }
        catch
        {
            connection.ActiveReader = null;
            throw;
        }
    }

    public override int FieldCount => _columns.Length;

    public override bool HasRows => _hasRows;

    public override bool IsClosed => _closed;

    public override int RecordsAffected => (int)Math.Min(int.MaxValue, _recordsAffected);

    public override int Depth => 0;

    public override object this[int ordinal] => GetValue(ordinal);

    public override object this[string name] => GetValue(GetOrdinal(name));

    /// <summary>Reads the next result header, skipping OK-only results (their counts add to RecordsAffected).</summary>
    private async ValueTask ReadResultHeaderAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        _columns = [];
        _ordinals = null;
        _hasRows = false;
        while (true)
        {
            var payload = await ReadPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            var span = payload.Span;
            if (OkPacket.IsErr(span))
            {
                Fail(span, cancellationToken);
            }

            if (span[0] == 0x00)
            {
                var ok = OkPacket.Parse(span);
                _session.Status = ok.Status;
                _command.WarningCount = ok.Warnings;
                _recordsAffected = Math.Max(0, _recordsAffected) + (long)ok.AffectedRows;
                _command.LastInsertedId = (long)ok.LastInsertId;
                if ((ok.Status & ServerStatus.MoreResultsExist) != 0)
                {
                    continue;
                }

                Finish(cancellationToken);
                return;
            }

            if (span[0] == 0xFB)
            {
                await SendLocalFileAsync(System.Text.Encoding.UTF8.GetString(span[1..]), ioAsync, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var columnCount = checked((int)new PayloadReader(span).ReadLengthEncodedInteger());
            var columns = new ColumnDefinition[columnCount];
            for (var i = 0; i < columnCount; i++)
            {
                columns[i] = ColumnDefinition.Parse((await ReadPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false)).Span);
            }

            if (!_session.DeprecateEof)
            {
                await ReadPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            }

            _columns = columns;
            _starts = new int[columnCount];
            _lengths = new int[columnCount];
            _state = State.Rows;

            // Read ahead one row so HasRows is known; it is handed out by the first Read().
            _pendingRow = await ReadRowPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
            _hasRows = _pendingRow;
            return;
        }
    }

    /// <summary>
    /// Reads the next packet. The caller's token is deliberately not passed to the socket: abandoning a read
    /// mid-reply would leave the rest of the reply for the next command. Cancellation kills the statement on the
    /// server instead (KILL QUERY), and the reply that follows is read to its end.
    /// </summary>
    private async ValueTask<ReadOnlyMemory<byte>> ReadPacketAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        try
        {
            return await _session.ReadPayloadAsync(ioAsync, CancellationToken.None).ConfigureAwait(false);
        }
        catch (MySqlException ex) when (ex.IsFatal)
        {
            _session.IsBroken = true;
            _state = State.Finished;
            _command.EndExecution();
            throw;
        }
        catch (IOException)
        {
            _session.IsBroken = true;
            _state = State.Finished;
            _command.EndExecution();
            throw;
        }
    }

    /// <summary>Reads the next packet of the current result set; false at its end.</summary>
    private async ValueTask<bool> ReadRowPacketAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        var payload = await ReadPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        var span = payload.Span;
        if (OkPacket.IsTerminator(span, _session.DeprecateEof))
        {
            var ok = OkPacket.ParseTerminator(span, _session.DeprecateEof);
            _session.Status = ok.Status;
            _command.WarningCount = ok.Warnings;
            _state = (ok.Status & ServerStatus.MoreResultsExist) != 0 ? State.ResultDone : State.Finished;
            if (_state == State.Finished)
            {
                Finish(cancellationToken);
            }

            return false;
        }

        if (OkPacket.IsErr(span))
        {
            Fail(span, cancellationToken);
        }

        if (_command.CancelRequested != MySqlCommand.CancelReason.None)
        {
            await DrainAfterCancelAsync(ioAsync).ConfigureAwait(false);
            throw _command.CancellationException(cancellationToken);
        }

        _row = payload;
        var reader = new PayloadReader(span);
        for (var i = 0; i < _columns.Length; i++)
        {
            if (reader.PeekByte() == 0xFB)
            {
                reader.ReadByte();
                _starts[i] = -1;
                _lengths[i] = 0;
                continue;
            }

            var length = checked((int)reader.ReadLengthEncodedInteger());
            _starts[i] = reader.Offset;
            _lengths[i] = length;
            reader.Offset += length;
        }

        return true;
    }

    public override bool Read() => ReadAsync(ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task<bool> ReadAsync(CancellationToken cancellationToken) => ReadAsync(ioAsync: true, cancellationToken).AsTask();

    internal async ValueTask<bool> ReadAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        if (_state != State.Rows)
        {
            return false;
        }

        if (_pendingRow)
        {
            _pendingRow = false;
            return true;
        }

        return await ReadRowPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
    }

    public override bool NextResult() => NextResultAsync(ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task<bool> NextResultAsync(CancellationToken cancellationToken) => NextResultAsync(ioAsync: true, cancellationToken).AsTask();

    internal async ValueTask<bool> NextResultAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        while (_state == State.Rows)
        {
            _pendingRow = false;
            await ReadRowPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        }

        if (_state == State.Finished)
        {
            _columns = [];
            return false;
        }

        await ReadResultHeaderAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        return _state == State.Rows;
    }

    private void Finish(CancellationToken cancellationToken)
    {
        _state = State.Finished;
        _command.EndExecution();
        if (_command.CancelRequested != MySqlCommand.CancelReason.None)
        {
            throw _command.CancellationException(cancellationToken);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(ReadOnlySpan<byte> payload, CancellationToken cancellationToken)
    {
        var error = ErrPacket.ToException(payload);
        error.CommandText = _command.CommandText;
        _state = State.Finished;
        _command.EndExecution();
        if (_command.CancelRequested != MySqlCommand.CancelReason.None && error.Number is 1317 or 1927 or 3024)
        {
            throw _command.CancellationException(cancellationToken, error);
        }

        throw error;
    }

    private async ValueTask DrainAfterCancelAsync(bool ioAsync)
    {
        try
        {
            while (_state != State.Finished)
            {
                var payload = await _session.ReadPayloadAsync(ioAsync, CancellationToken.None).ConfigureAwait(false);
                var span = payload.Span;
                if (OkPacket.IsErr(span))
                {
                    break;
                }

                if (_state == State.Rows && OkPacket.IsTerminator(span, _session.DeprecateEof))
                {
                    var status = OkPacket.ParseTerminator(span, _session.DeprecateEof).Status;
                    _session.Status = status;
                    if ((status & ServerStatus.MoreResultsExist) == 0)
                    {
                        break;
                    }

                    _state = State.ResultDone;
                }
                else if (_state == State.ResultDone)
                {
                    if (span[0] == 0x00)
                    {
                        if ((OkPacket.Parse(span).Status & ServerStatus.MoreResultsExist) == 0)
                        {
                            break;
                        }

                        continue;
                    }

                    // A new result set header: skip its column definitions, then its rows.
                    var count = (int)new PayloadReader(span).ReadLengthEncodedInteger();
                    for (var i = 0; i < count + (_session.DeprecateEof ? 0 : 1); i++)
                    {
                        await _session.ReadPayloadAsync(ioAsync, CancellationToken.None).ConfigureAwait(false);
                    }

                    _state = State.Rows;
                }
            }
        }
        catch (MySqlException)
        {
            _session.IsBroken = true;
        }

        _state = State.Finished;
        _command.EndExecution();
    }

    private async ValueTask SendLocalFileAsync(string fileName, bool ioAsync, CancellationToken cancellationToken)
    {
        var offered = _session.OfferedFile;
        if (offered is { } file && file.Name == fileName)
        {
            await file.Send(_session.Channel, ioAsync, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Refuse: an empty file, then report that the server asked for something we never offered.
        await _session.Channel.WritePacketAsync(ReadOnlyMemory<byte>.Empty, ioAsync, cancellationToken).ConfigureAwait(false);
        var reply = await ReadPacketAsync(ioAsync, cancellationToken).ConfigureAwait(false);
        if (!OkPacket.IsErr(reply.Span))
        {
            _session.Status = OkPacket.Parse(reply.Span).Status;
        }

        _state = State.Finished;
        _command.EndExecution();
        throw new MySqlException(
            $"The server asked to read the local file '{fileName}', which this client did not offer. Nothing was sent.",
            MySqlClientError.LocalInfileRefused, "HY000");
    }

    public override string GetName(int ordinal) => Column(ordinal).Name;

    public override int GetOrdinal(string name)
    {
        _ordinals ??= BuildOrdinals();
        return _ordinals.TryGetValue(name, out var ordinal)
            ? ordinal
            : throw new IndexOutOfRangeException($"The result has no column named '{name}'.");
    }

    private Dictionary<string, int> BuildOrdinals()
    {
        var map = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = _columns.Length - 1; i >= 0; i--)
        {
            map[_columns[i].Name] = i;
        }

        return map;
    }

    public override string GetDataTypeName(int ordinal) => TextValueParser.DataTypeName(Column(ordinal));

    public override Type GetFieldType(int ordinal) => TextValueParser.FieldType(Column(ordinal), _connection.Settings);

    public override bool IsDBNull(int ordinal)
    {
        CheckRow(ordinal);
        return _starts[ordinal] < 0;
    }

    public override object GetValue(int ordinal)
    {
        CheckRow(ordinal);
        var start = _starts[ordinal];
        return start < 0 ? DBNull.Value : TextValueParser.Parse(_columns[ordinal], _row.Span.Slice(start, _lengths[ordinal]), _connection.Settings);
    }

    public override int GetValues(object[] values)
    {
        var count = Math.Min(values.Length, _columns.Length);
        for (var i = 0; i < count; i++)
        {
            values[i] = GetValue(i);
        }

        return count;
    }

    /// <summary>The raw bytes of a value as the server sent them (text form, or binary for binary columns).</summary>
    public ReadOnlySpan<byte> GetRawValue(int ordinal)
    {
        CheckRow(ordinal);
        return _starts[ordinal] < 0 ? default : _row.Span.Slice(_starts[ordinal], _lengths[ordinal]);
    }

    public override T GetFieldValue<T>(int ordinal)
    {
        var value = GetValue(ordinal);
        if (value is T typed)
        {
            return typed;
        }

        if (value is DBNull)
        {
            throw new InvalidCastException($"Column {ordinal} ('{GetName(ordinal)}') is NULL.");
        }

        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        if (target == typeof(Guid))
        {
            return (T)(object)(value is byte[] bytes ? new Guid(bytes) : Guid.Parse((string)value));
        }

        if (target == typeof(decimal) && value is MySqlDecimal big)
        {
            return (T)(object)big.ToDecimal();
        }

        if (target == typeof(DateTimeOffset) && value is DateTime dateTime)
        {
            return (T)(object)new DateTimeOffset(DateTime.SpecifyKind(dateTime, DateTimeKind.Utc));
        }

        return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    public override bool GetBoolean(int ordinal) => GetFieldValue<bool>(ordinal);

    public override byte GetByte(int ordinal) => GetFieldValue<byte>(ordinal);

    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length)
    {
        var raw = GetRawValue(ordinal);
        if (buffer is null)
        {
            return raw.Length;
        }

        var count = (int)Math.Max(0, Math.Min(length, raw.Length - dataOffset));
        raw.Slice((int)dataOffset, count).CopyTo(buffer.AsSpan(bufferOffset));
        return count;
    }

    public override char GetChar(int ordinal) => GetString(ordinal)[0];

    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length)
    {
        var text = GetString(ordinal);
        if (buffer is null)
        {
            return text.Length;
        }

        var count = (int)Math.Max(0, Math.Min(length, text.Length - dataOffset));
        text.CopyTo((int)dataOffset, buffer, bufferOffset, count);
        return count;
    }

    public override DateTime GetDateTime(int ordinal) => GetFieldValue<DateTime>(ordinal);

    public override decimal GetDecimal(int ordinal) => GetFieldValue<decimal>(ordinal);

    public override double GetDouble(int ordinal) => GetFieldValue<double>(ordinal);

    public override float GetFloat(int ordinal) => GetFieldValue<float>(ordinal);

    public override Guid GetGuid(int ordinal) => GetFieldValue<Guid>(ordinal);

    public override short GetInt16(int ordinal) => GetFieldValue<short>(ordinal);

    public override int GetInt32(int ordinal) => GetFieldValue<int>(ordinal);

    public override long GetInt64(int ordinal) => GetFieldValue<long>(ordinal);

    public override string GetString(int ordinal) => GetValue(ordinal) switch
    {
        string s => s,
        DBNull => throw new InvalidCastException($"Column {ordinal} ('{GetName(ordinal)}') is NULL."),
        var other => Convert.ToString(other, CultureInfo.InvariantCulture)!,
    };

    public override IEnumerator GetEnumerator() => new DbEnumerator(this, closeReader: false);

    public override DataTable GetSchemaTable()
    {
        var table = new DataTable("SchemaTable");
        table.Columns.Add("ColumnName", typeof(string));
        table.Columns.Add("ColumnOrdinal", typeof(int));
        table.Columns.Add("ColumnSize", typeof(int));
        table.Columns.Add("DataType", typeof(Type));
        table.Columns.Add("DataTypeName", typeof(string));
        table.Columns.Add("AllowDBNull", typeof(bool));
        table.Columns.Add("BaseTableName", typeof(string));
        table.Columns.Add("BaseSchemaName", typeof(string));
        for (var i = 0; i < _columns.Length; i++)
        {
            var column = _columns[i];
            table.Rows.Add(column.Name, i, (int)Math.Min(int.MaxValue, column.Length), GetFieldType(i), GetDataTypeName(i),
                (column.Flags & ColumnFlags.NotNull) == 0, column.Table, column.Schema);
        }

        return table;
    }

    private ColumnDefinition Column(int ordinal) =>
        (uint)ordinal < (uint)_columns.Length ? _columns[ordinal] : throw new IndexOutOfRangeException($"Column {ordinal} does not exist; the result has {_columns.Length}.");

    private void CheckRow(int ordinal)
    {
        Column(ordinal);
        if (_state != State.Rows || _pendingRow)
        {
            throw new InvalidOperationException("There is no current row; call Read() first.");
        }
    }

    public override void Close() => CloseAsync(ioAsync: false).GetAwaiter().GetResult();

    public override Task CloseAsync() => CloseAsync(ioAsync: true).AsTask();

    private async ValueTask CloseAsync(bool ioAsync)
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        try
        {
            while (await NextResultAsync(ioAsync, CancellationToken.None).ConfigureAwait(false))
            {
            }
        }
        finally
        {
            _connection.ActiveReader = null;
            _command.EndExecution();
            if ((_behavior & CommandBehavior.CloseConnection) != 0)
            {
                _connection.Close();
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await CloseAsync(ioAsync: true).ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
