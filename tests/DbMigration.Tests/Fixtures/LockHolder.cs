using System.Data.Common;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Tests.Fixtures;

/// <summary>
/// Another session that runs one statement inside a transaction it keeps open, holding the locks that statement took
/// (a read's table lock, a row FOR UPDATE) until it is released.
/// </summary>
public sealed class LockHolder
{
    private readonly DbConnection _connection;
    private readonly DbTransaction _transaction;

    private LockHolder(DbConnection connection, DbTransaction transaction)
    {
        _connection = connection;
        _transaction = transaction;
    }

    public static async Task<LockHolder> HoldAsync(DatabaseTarget target, string sql)
    {
        var connection = await DatabaseProviders.For(target).OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        var transaction = await connection.BeginTransactionAsync();
        await using var hold = connection.CreateCommand();
        hold.Transaction = transaction;
        hold.CommandText = sql;
        await hold.ExecuteNonQueryAsync();
        return new LockHolder(connection, transaction);
    }

    /// <summary>Ends the transaction after <paramref name="delay"/>, or at once when <paramref name="early"/> fires.</summary>
    public async Task ReleaseAsync(TimeSpan delay, CancellationToken early)
    {
        try
        {
            await Task.Delay(delay, early);
        }
        catch (OperationCanceledException)
        {
            // Released early: the test has what it waited for.
        }

        await _transaction.CommitAsync();
        await _connection.DisposeAsync();
    }
}
