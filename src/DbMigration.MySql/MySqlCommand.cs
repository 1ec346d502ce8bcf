using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using DbMigration.MySql.Protocol;

namespace DbMigration.MySql;

/// <summary>
/// A SQL statement or script, run with COM_QUERY. Parameters are substituted on the client (see
/// SqlParameterWriter). Cancellation and timeouts send KILL QUERY from a side connection.
/// </summary>
public sealed class MySqlCommand : DbCommand
{
    private readonly MySqlParameterCollection _parameters = new();
    private string _commandText = string.Empty;
    private int? _commandTimeout;
    private readonly object _cancelLock = new();
    private CancelReason _cancelReason;
    private uint? _executingOn;
    private CancellationTokenRegistration _tokenRegistration;
    private Timer? _timeoutTimer;

    public MySqlCommand()
    {
    }

    public MySqlCommand(string commandText, MySqlConnection? connection = null)
    {
        _commandText = commandText;
        Connection = connection;
    }

    internal enum CancelReason
    {
        None,
        Cancelled,
        TimedOut,
    }

    [AllowNull]
    public override string CommandText
    {
        get => _commandText;
        set => _commandText = value ?? string.Empty;
    }

    /// <summary>Seconds before the statement is killed; 0 waits forever. Defaults to the connection's Default Command Timeout.</summary>
    public override int CommandTimeout
    {
        get => _commandTimeout ?? Connection?.Settings.DefaultCommandTimeout ?? 30;
        set => _commandTimeout = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "The timeout cannot be negative.");
    }

    public override CommandType CommandType
    {
        get => CommandType.Text;
        set
        {
            if (value != CommandType.Text)
            {
                throw new NotSupportedException("Only CommandType.Text is supported.");
            }
        }
    }

    public override bool DesignTimeVisible { get; set; }

    public override UpdateRowSource UpdatedRowSource { get; set; }

    public new MySqlConnection? Connection { get; set; }

    protected override DbConnection? DbConnection
    {
        get => Connection;
        set => Connection = (MySqlConnection?)value;
    }

    public new MySqlParameterCollection Parameters => _parameters;

    protected override DbParameterCollection DbParameterCollection => _parameters;

    public new MySqlTransaction? Transaction { get; set; }

    protected override DbTransaction? DbTransaction
    {
        get => Transaction;
        set => Transaction = (MySqlTransaction?)value;
    }

    /// <summary>The AUTO_INCREMENT value the last statement generated.</summary>
    public long LastInsertedId { get; internal set; }

    /// <summary>How many warnings the last statement raised (SHOW WARNINGS lists them).</summary>
    public int WarningCount { get; internal set; }

    internal CancelReason CancelRequested => _cancelReason;

    public override void Cancel() => RequestCancel(CancelReason.Cancelled);

    public override void Prepare()
    {
        // The text protocol has nothing to prepare; parameters are substituted per execution.
    }

    protected override DbParameter CreateDbParameter() => new MySqlParameter();

    public new MySqlParameter CreateParameter() => new();

    public override int ExecuteNonQuery() => ExecuteNonQueryAsync(ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken) => ExecuteNonQueryAsync(ioAsync: true, cancellationToken).AsTask();

    private async ValueTask<int> ExecuteNonQueryAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        var reader = await ExecuteReaderAsync(CommandBehavior.Default, ioAsync, cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.NextResultAsync(ioAsync, cancellationToken).ConfigureAwait(false))
            {
            }

            return reader.RecordsAffected;
        }
    }

    public override object? ExecuteScalar() => ExecuteScalarAsync(ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken) => ExecuteScalarAsync(ioAsync: true, cancellationToken).AsTask();

    private async ValueTask<object?> ExecuteScalarAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        var reader = await ExecuteReaderAsync(CommandBehavior.Default, ioAsync, cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            object? result = null;
            if (reader.FieldCount > 0 && await reader.ReadAsync(ioAsync, cancellationToken).ConfigureAwait(false))
            {
                result = reader.GetValue(0);
            }

            while (await reader.NextResultAsync(ioAsync, cancellationToken).ConfigureAwait(false))
            {
            }

            return result;
        }
    }

    public new MySqlDataReader ExecuteReader() => ExecuteReaderAsync(CommandBehavior.Default, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior) =>
        ExecuteReaderAsync(behavior, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken) =>
        await ExecuteReaderAsync(behavior, ioAsync: true, cancellationToken).ConfigureAwait(false);

    internal async ValueTask<MySqlDataReader> ExecuteReaderAsync(CommandBehavior behavior, bool ioAsync, CancellationToken cancellationToken)
    {
        var connection = Connection ?? throw new InvalidOperationException("The command has no connection.");
        if (connection.State != ConnectionState.Open)
        {
            throw new InvalidOperationException("The connection is not open.");
        }

        if (connection.ActiveReader is not null)
        {
            throw new InvalidOperationException("This connection already has an open data reader; close it first.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var session = connection.Session;
        var sql = SqlParameterWriter.Substitute(_commandText, _parameters, session.NoBackslashEscapes);
        BeginExecution(session.ConnectionId, connection, cancellationToken);
        try
        {
            // Never abandon a half-written packet: the token acts through KILL QUERY, not the socket.
            await session.SendCommandAsync(CommandCode.Query, sql, ioAsync, CancellationToken.None).ConfigureAwait(false);
            return await MySqlDataReader.CreateAsync(this, connection, session, behavior, ioAsync, cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException ex)
        {
            EndExecution();
            if (ex.IsFatal)
            {
                session.IsBroken = true;
            }

            throw;
        }
        catch
        {
            EndExecution();
            throw;
        }
    }

    private void BeginExecution(uint connectionId, MySqlConnection connection, CancellationToken cancellationToken)
    {
        lock (_cancelLock)
        {
            _cancelReason = CancelReason.None;
            _executingOn = connectionId;
            _killConnection = connection;
        }

        if (cancellationToken.CanBeCanceled)
        {
            _tokenRegistration = cancellationToken.Register(static state => ((MySqlCommand)state!).RequestCancel(CancelReason.Cancelled), this);
        }

        if (CommandTimeout > 0)
        {
            _timeoutTimer = new Timer(static state => ((MySqlCommand)state!).RequestCancel(CancelReason.TimedOut), this, TimeSpan.FromSeconds(CommandTimeout), Timeout.InfiniteTimeSpan);
        }
    }

    private MySqlConnection? _killConnection;

    /// <summary>Called by the reader when every result has been read (or on failure).</summary>
    internal void EndExecution()
    {
        _tokenRegistration.Dispose();
        _timeoutTimer?.Dispose();
        _timeoutTimer = null;
        lock (_cancelLock)
        {
            _executingOn = null;
            _killConnection = null;
        }
    }

    private void RequestCancel(CancelReason reason)
    {
        uint id;
        MySqlConnection connection;
        lock (_cancelLock)
        {
            if (_executingOn is null || _killConnection is null || _cancelReason != CancelReason.None)
            {
                return;
            }

            _cancelReason = reason;
            id = _executingOn.Value;
            connection = _killConnection;
        }

        try
        {
            connection.KillRunningQuery(id);
        }
        catch (MySqlException)
        {
            // The statement may have finished meanwhile; the reader still reports the cancellation.
        }
    }

    /// <summary>The exception that ends an execution that was cancelled or timed out.</summary>
    internal Exception CancellationException(CancellationToken cancellationToken, Exception? inner = null) => _cancelReason == CancelReason.TimedOut
        ? new MySqlException($"The command timed out after {CommandTimeout} s and was killed (KILL QUERY).", MySqlClientError.CommandTimeout, "HY008", inner)
        : new OperationCanceledException("The command was cancelled (KILL QUERY).", inner, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            EndExecution();
        }

        base.Dispose(disposing);
    }
}
