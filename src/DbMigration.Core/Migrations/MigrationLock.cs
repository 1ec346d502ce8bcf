using System.Data.Common;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Migrations;

/// <summary>
/// The migration lock: the engine's cross-process lock (a lock file on SQLite, an advisory lock on PostgreSQL,
/// GET_LOCK on MySQL) keeps a second migrator out, and a row in dbmigration_lock says who holds it, with a heartbeat
/// written on the connection whose session holds the engine lock.
/// The engine lock dies with its process; the row does not. A row found by the next holder is therefore a stale lock
/// from a killed run, reported and taken over only with -Force.
/// </summary>
internal sealed class MigrationLock : IAsyncDisposable
{
    public const string LockName = "migrations";
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);

    private readonly IDatabaseLock _engineLock;
    private readonly DbConnection _connection;
    private readonly MigrationJournal _journal;
    private readonly Timer _heartbeat;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private MigrationLock(IDatabaseLock engineLock, DbConnection connection, MigrationJournal journal)
    {
        _engineLock = engineLock;
        _connection = connection;
        _journal = journal;
        _heartbeat = new Timer(_ => _ = BeatAsync(), null, HeartbeatInterval, HeartbeatInterval);
    }

    public static async Task<MigrationLock> AcquireAsync(IDatabaseProvider provider, DatabaseTarget target, TimeSpan timeout, bool force, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var journal = new MigrationJournal(provider);
        // The engine lock lives in the heartbeat connection's session: one connection for both, and a lost
        // connection loses the lock along with the heartbeat.
        var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        IDatabaseLock? engineLock = null;
        try
        {
            try
            {
                engineLock = await provider.AcquireLockAsync(connection, target, LockName, timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
            {
                var holder = await InspectAsync(provider, target, cancellationToken).ConfigureAwait(false);
                throw new DbMigrationException(ErrorIds.MigrationLockHeld, ErrorKind.ResourceBusy,
                    $"Another migration holds the lock on {target}" + (holder.Owner is null ? string.Empty : $" ({holder.Owner}@{holder.Host}, pid {holder.ProcessId}, heartbeat {holder.HeartbeatUtc:u})") +
                    $"; gave up after {timeout.TotalSeconds:0.#} s. Wait for it to finish, then run again; Get-MigrationLock shows the holder.", ex) { Target = target.ToString() };
            }

            await journal.EnsureAsync(connection, cancellationToken).ConfigureAwait(false);
            if (await journal.WriteProblemAsync(connection, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                throw new DbMigrationException(ErrorIds.MigrationJournalNotWritable, ErrorKind.PermissionDenied, problem) { Target = target.ToString() };
            }

            var stale = await ReadRowAsync(connection, cancellationToken).ConfigureAwait(false);
            if (stale is not null)
            {
                if (!force)
                {
                    throw new DbMigrationException(ErrorIds.MigrationStaleLock, ErrorKind.ResourceBusy,
                        $"A stale migration lock remains on {target}: {stale.Owner}@{stale.Host}, pid {stale.ProcessId}, last heartbeat {stale.HeartbeatUtc:u}. " +
                        "That run ended without releasing it (killed?). Check the journal with Get-MigrationStatus, then pass -Force or run Unlock-Migration -Force.")
                    { Target = target.ToString() };
                }

                progress.Warning($"Taking over a stale migration lock from {stale.Owner}@{stale.Host} (pid {stale.ProcessId}, last heartbeat {stale.HeartbeatUtc:u}).");
                await connection.ExecuteAsync($"DELETE FROM {MigrationJournal.Lock}", cancellationToken).ConfigureAwait(false);
            }

            var now = DateTimeOffset.UtcNow;
            await using (var insert = connection.CreateCommand($"INSERT INTO {MigrationJournal.Lock} (id, owner, host, pid, acquired_utc, heartbeat_utc) VALUES (1, @owner, @host, @pid, @at, @at)"))
            {
                insert.AddParameter("@owner", Actor.User).AddParameter("@host", Actor.Host).AddParameter("@pid", Actor.ProcessId).AddParameter("@at", journal.WriteTime(now));
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new MigrationLock(engineLock, connection, journal);
        }
        catch
        {
            try
            {
                if (engineLock is not null)
                {
                    await engineLock.DisposeAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// The lock's holder when a live run holds it, else null; takes nothing. Where the holder's row cannot be read
    /// (a SQLite migration's write locks readers out), the holder is returned without its details.
    /// </summary>
    public static async Task<MigrationLockInfo?> FindLiveHolderAsync(IDatabaseProvider provider, DatabaseTarget target, CancellationToken cancellationToken)
    {
        try
        {
            await using (await provider.AcquireLockAsync(target, LockName, TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }
        }
        catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
        {
        }

        try
        {
            // Briefly: the caller is already explaining a failure, and a SQLite writer would keep it waiting.
            var info = await InspectAsync(provider, target, cancellationToken, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            return info with { IsHeld = true, IsStale = false };
        }
        catch (DbMigrationException)
        {
            return new MigrationLockInfo { Target = target.ToString(), IsHeld = true, IsStale = false };
        }
    }

    /// <summary>Who holds the lock, or whether a stale row remains; takes nothing.</summary>
    public static async Task<MigrationLockInfo> InspectAsync(IDatabaseProvider provider, DatabaseTarget target, CancellationToken cancellationToken, TimeSpan? connectTimeout = null)
    {
        bool held;
        try
        {
            await using (await provider.AcquireLockAsync(target, LockName, TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
            {
                held = false;
            }
        }
        catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
        {
            held = true;
        }

        await using var connection = await provider.OpenConnectionAsync(target, connectTimeout ?? TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        var hasTable = (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Any(t => t.Name.Name == MigrationJournal.Lock);
        var row = hasTable ? await ReadRowAsync(connection, cancellationToken).ConfigureAwait(false) : null;
        return (row ?? new MigrationLockInfo { Target = target.ToString(), IsHeld = false, IsStale = false }) with
        {
            Target = target.ToString(),
            IsHeld = held,
            IsStale = !held && row is not null,
        };
    }

    /// <summary>Removes a stale lock row. Refuses while a live process holds the lock.</summary>
    public static async Task<MigrationLockInfo> BreakAsync(IDatabaseProvider provider, DatabaseTarget target, CancellationToken cancellationToken)
    {
        var info = await InspectAsync(provider, target, cancellationToken).ConfigureAwait(false);
        if (info.IsHeld)
        {
            throw new DbMigrationException(ErrorIds.MigrationLockHeld, ErrorKind.ResourceBusy,
                $"The migration lock on {target} is held by a live process ({info.Owner}@{info.Host}, pid {info.ProcessId}); it is not stale and was not removed.")
            { Target = target.ToString() };
        }

        if (info.IsStale)
        {
            await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            await connection.ExecuteAsync($"DELETE FROM {MigrationJournal.Lock}", cancellationToken).ConfigureAwait(false);
        }

        return info;
    }

    private static async Task<MigrationLockInfo?> ReadRowAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand($"SELECT owner, host, pid, acquired_utc, heartbeat_utc FROM {MigrationJournal.Lock} WHERE id = 1");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return new MigrationLockInfo
        {
            Target = string.Empty,
            IsHeld = false,
            IsStale = false,
            Owner = reader.GetString(0),
            Host = reader.GetString(1),
            ProcessId = Convert.ToInt32(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture),
            AcquiredUtc = MigrationJournal.ReadTime(reader.GetValue(3)),
            HeartbeatUtc = MigrationJournal.ReadTime(reader.GetValue(4)),
        };
    }

    private async Task BeatAsync()
    {
        if (!await _gate.WaitAsync(0).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            await using var update = _connection.CreateCommand($"UPDATE {MigrationJournal.Lock} SET heartbeat_utc = @at WHERE id = 1");
            update.AddParameter("@at", _journal.WriteTime(DateTimeOffset.UtcNow));
            await update.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or ObjectDisposedException)
        {
            // A missed heartbeat is harmless: the engine lock, not the row, keeps others out.
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _heartbeat.DisposeAsync().ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await _connection.ExecuteAsync($"DELETE FROM {MigrationJournal.Lock}", CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                // The lock first: it is released through the connection.
                await _engineLock.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                _gate.Release();
                _gate.Dispose();
            }
        }
    }
}
