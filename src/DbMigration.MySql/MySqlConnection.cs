using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using DbMigration.MySql.Protocol;

namespace DbMigration.MySql;

/// <summary>A connection to a MySQL or MariaDB server, pooled by default.</summary>
public sealed class MySqlConnection : DbConnection
{
    private string _connectionString = string.Empty;
    private ConnectionSettings? _settings;
    private ServerSession? _session;
    private ConnectionState _state = ConnectionState.Closed;

    public MySqlConnection()
    {
    }

    public MySqlConnection(string connectionString) => ConnectionString = connectionString;

    [AllowNull]
    public override string ConnectionString
    {
        get => _connectionString;
        set
        {
            if (_state != ConnectionState.Closed)
            {
                throw new InvalidOperationException("Close the connection before changing its connection string.");
            }

            _connectionString = value ?? string.Empty;
            _settings = null;
        }
    }

    public override string Database => _session?.CurrentDatabase ?? Settings.Database;

    public override string DataSource => Settings.Server;

    public override string ServerVersion => Session.ServerVersion;

    /// <summary>The server's id for this session (what KILL and the processlist show).</summary>
    public int ServerThread => (int)Session.ConnectionId;

    public override ConnectionState State => _state;

    /// <summary>True when the session runs over TLS.</summary>
    public bool IsEncrypted => Session.IsTls;

    internal ConnectionSettings Settings => _settings ??= ConnectionSettings.Parse(_connectionString);

    internal ServerSession Session => _session ?? throw new InvalidOperationException("The connection is not open.");

    internal MySqlDataReader? ActiveReader { get; set; }

    internal MySqlTransaction? ActiveTransaction { get; set; }

    public override void Open() => OpenAsync(ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();

    public override Task OpenAsync(CancellationToken cancellationToken) => OpenAsync(ioAsync: true, cancellationToken).AsTask();

    private async ValueTask OpenAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        if (_state != ConnectionState.Closed)
        {
            throw new InvalidOperationException("The connection is already open.");
        }

        _state = ConnectionState.Connecting;
        try
        {
            _session = Settings.Pooling
                ? await ConnectionPool.For(Settings).RentAsync(ioAsync, cancellationToken).ConfigureAwait(false)
                : await ServerSession.ConnectAsync(Settings, ioAsync, cancellationToken).ConfigureAwait(false);
            _state = ConnectionState.Open;
        }
        catch
        {
            _state = ConnectionState.Closed;
            throw;
        }
    }

    public override void Close()
    {
        if (_session is null)
        {
            _state = ConnectionState.Closed;
            return;
        }

        try
        {
            ActiveReader?.Dispose();
        }
        catch (MySqlException)
        {
            _session.IsBroken = true;
        }

        if (ActiveTransaction is not null)
        {
            // Never leave a transaction open on a session that goes back to the pool.
            _session.IsBroken |= !TryRollback();
            ActiveTransaction = null;
        }

        var session = _session;
        _session = null;
        _state = ConnectionState.Closed;
        if (Settings.Pooling)
        {
            ConnectionPool.For(Settings).Return(session);
        }
        else
        {
            session.Quit();
        }
    }

    private bool TryRollback()
    {
        try
        {
            using var command = new MySqlCommand("ROLLBACK", this);
            command.ExecuteNonQuery();
            return true;
        }
        catch (MySqlException)
        {
            return false;
        }
    }

    public override Task CloseAsync()
    {
        Close();
        return Task.CompletedTask;
    }

    public override void ChangeDatabase(string databaseName)
    {
        ArgumentException.ThrowIfNullOrEmpty(databaseName);
        Session.ExecuteSimpleAsync(CommandCode.InitDb, databaseName, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
        Session.CurrentDatabase = databaseName;
    }

    public override async Task ChangeDatabaseAsync(string databaseName, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(databaseName);
        await Session.ExecuteSimpleAsync(CommandCode.InitDb, databaseName, ioAsync: true, cancellationToken).ConfigureAwait(false);
        Session.CurrentDatabase = databaseName;
    }

    /// <summary>COM_PING: true when the server answers.</summary>
    public bool Ping()
    {
        try
        {
            Session.ExecuteSimpleAsync(CommandCode.Ping, string.Empty, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
            return true;
        }
        catch (MySqlException)
        {
            Session.IsBroken = true;
            return false;
        }
    }

    /// <summary>COM_RESET_CONNECTION: clears session variables, temporary tables and open transactions.</summary>
    public async Task ResetConnectionAsync(CancellationToken cancellationToken = default) =>
        await Session.ExecuteSimpleAsync(CommandCode.ResetConnection, string.Empty, ioAsync: true, cancellationToken).ConfigureAwait(false);

    /// <summary>Closes every idle pooled connection.</summary>
    public static void ClearAllPools() => ConnectionPool.ClearAll();

    /// <summary>Closes the idle pooled connections of this connection's pool.</summary>
    public static void ClearPool(MySqlConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ConnectionPool.For(connection.Settings).Clear();
    }

    public new MySqlCommand CreateCommand() => new(string.Empty, this);

    protected override DbCommand CreateDbCommand() => CreateCommand();

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel)
    {
        if (ActiveTransaction is not null)
        {
            throw new InvalidOperationException("A transaction is already active on this connection.");
        }

        var level = isolationLevel switch
        {
            IsolationLevel.ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel.ReadCommitted => "READ COMMITTED",
            IsolationLevel.RepeatableRead or IsolationLevel.Unspecified => "REPEATABLE READ",
            IsolationLevel.Serializable => "SERIALIZABLE",
            _ => throw new NotSupportedException($"Isolation level {isolationLevel} is not supported by MySQL."),
        };
        using (var command = new MySqlCommand($"SET TRANSACTION ISOLATION LEVEL {level}; START TRANSACTION", this))
        {
            command.ExecuteNonQuery();
        }

        ActiveTransaction = new MySqlTransaction(this, isolationLevel == IsolationLevel.Unspecified ? IsolationLevel.RepeatableRead : isolationLevel);
        return ActiveTransaction;
    }

    protected override DbProviderFactory DbProviderFactory => MySqlProviderFactory.Instance;

    /// <summary>Sends KILL QUERY for this session's running statement, from a separate connection.</summary>
    internal void KillRunningQuery(uint connectionId)
    {
        var settings = Settings with { Pooling = false };
        using var side = ServerSession.ConnectAsync(settings, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
        side.ExecuteSimpleAsync(CommandCode.Query, "KILL QUERY " + connectionId, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
        side.Quit();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A transaction begun with START TRANSACTION.</summary>
public sealed class MySqlTransaction : DbTransaction
{
    private MySqlConnection? _connection;

    internal MySqlTransaction(MySqlConnection connection, IsolationLevel isolationLevel)
    {
        _connection = connection;
        IsolationLevel = isolationLevel;
    }

    public override IsolationLevel IsolationLevel { get; }

    protected override DbConnection? DbConnection => _connection;

    public override void Commit() => Finish("COMMIT");

    public override void Rollback() => Finish("ROLLBACK");

    private void Finish(string sql)
    {
        var connection = _connection ?? throw new InvalidOperationException("The transaction has already been committed or rolled back.");
        using (var command = new MySqlCommand(sql, connection))
        {
            command.ExecuteNonQuery();
        }

        connection.ActiveTransaction = null;
        _connection = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _connection is { State: ConnectionState.Open })
        {
            Rollback();
        }

        base.Dispose(disposing);
    }
}

/// <summary>The ADO.NET provider factory, so tools that work from a factory can use this client.</summary>
public sealed class MySqlProviderFactory : DbProviderFactory
{
    public static readonly MySqlProviderFactory Instance = new();

    private MySqlProviderFactory()
    {
    }

    public override DbConnection CreateConnection() => new MySqlConnection();

    public override DbCommand CreateCommand() => new MySqlCommand();

    public override DbParameter CreateParameter() => new MySqlParameter();

    public override DbConnectionStringBuilder CreateConnectionStringBuilder() => new MySqlConnectionStringBuilder();
}
