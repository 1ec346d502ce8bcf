using System.Collections.Concurrent;

namespace DbMigration.MySql.Protocol;

/// <summary>
/// Idle sessions per connection string. A session goes back only after COM_RESET_CONNECTION and COM_INIT_DB succeed,
/// so no session state (variables, temporary tables, open transactions, the current database) leaks to the next user.
/// </summary>
internal sealed class ConnectionPool
{
    private static readonly ConcurrentDictionary<ConnectionSettings, ConnectionPool> Pools = new();
    private readonly ConcurrentStack<ServerSession> _idle = new();
    private readonly SemaphoreSlim _slots;
    private readonly ConnectionSettings _settings;

    private ConnectionPool(ConnectionSettings settings)
    {
        _settings = settings;
        _slots = new SemaphoreSlim(settings.MaximumPoolSize, settings.MaximumPoolSize);
    }

    public static ConnectionPool For(ConnectionSettings settings) => Pools.GetOrAdd(settings, s => new ConnectionPool(s));

    public int IdleCount => _idle.Count;

    public async ValueTask<ServerSession> RentAsync(bool ioAsync, CancellationToken cancellationToken)
    {
        var acquired = ioAsync
            ? await _slots.WaitAsync(_settings.ConnectTimeout, cancellationToken).ConfigureAwait(false)
            : _slots.Wait(_settings.ConnectTimeout, cancellationToken);
        if (!acquired)
        {
            throw new MySqlException($"All {_settings.MaximumPoolSize} pooled connections are in use; none came free within {_settings.ConnectTimeout.TotalSeconds:0.#} s.", MySqlClientError.PoolExhausted);
        }

        try
        {
            while (_idle.TryPop(out var session))
            {
                if (await session.SurvivedIdleAsync(ioAsync, cancellationToken).ConfigureAwait(false))
                {
                    return session;
                }

                session.Dispose();
            }

            return await ServerSession.ConnectAsync(_settings, ioAsync, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    public void Return(ServerSession session)
    {
        try
        {
            if (!session.IsBroken)
            {
                session.ExecuteSimpleAsync(CommandCode.ResetConnection, string.Empty, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
                // Always: a USE statement moves the session without the client seeing it, and the reset keeps it there.
                if (_settings.Database.Length > 0)
                {
                    session.ExecuteSimpleAsync(CommandCode.InitDb, _settings.Database, ioAsync: false, CancellationToken.None).GetAwaiter().GetResult();
                    session.CurrentDatabase = _settings.Database;
                }

                session.ReturnedUtc = DateTime.UtcNow;
                _idle.Push(session);
                return;
            }
        }
        catch (Exception ex) when (ex is MySqlException or IOException or ObjectDisposedException)
        {
            session.IsBroken = true;
        }
        finally
        {
            _slots.Release();
        }

        session.Dispose();
    }

    public void Clear()
    {
        while (_idle.TryPop(out var session))
        {
            session.Quit();
        }
    }

    public static void ClearAll()
    {
        foreach (var pool in Pools.Values)
        {
            pool.Clear();
        }
    }
}
