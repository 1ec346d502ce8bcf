using System.Data.Common;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>
/// The contract each engine implements. Everything engine-specific lives behind it; services above it never
/// switch on the engine. Every provider passes the same conformance suite (tests/…/Conformance).
/// </summary>
public interface IDatabaseProvider
{
    DatabaseEngine Engine { get; }

    /// <summary>Quotes an identifier for this engine's SQL.</summary>
    string QuoteIdentifier(string identifier);

    /// <summary>Quotes a possibly schema-qualified table name.</summary>
    string QuoteTable(TableName table);

    /// <summary>Capabilities for a given server version.</summary>
    ProviderCapabilities GetCapabilities(ServerInfo server);

    /// <summary>
    /// Opens a connection. Never creates a missing SQLite file. Failures are translated into
    /// <see cref="Errors.DbMigrationException"/> with a connection or target error id and a redacted target.
    /// </summary>
    Task<DbConnection> OpenConnectionAsync(DatabaseTarget target, TimeSpan connectTimeout, CancellationToken cancellationToken);

    /// <summary>Turns a driver exception into a <see cref="Errors.DbMigrationException"/>, or returns null if it is not the driver's.</summary>
    Errors.DbMigrationException? TranslateException(Exception exception, DatabaseTarget target, string? sql);

    /// <summary>
    /// Makes <paramref name="cancellationToken"/> interrupt whatever runs on the connection, for drivers that do
    /// not honour tokens mid-statement (SQLite's sqlite3_interrupt). Dispose to detach.
    /// </summary>
    IDisposable InterruptOn(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// Readies a command holding one statement that DbMigration split from a script, and no parameters, to go to the
    /// server as written: a driver that splits commands at semicolons itself must not cut a body that keeps them.
    /// </summary>
    void SendAsWritten(DbCommand command);

    /// <summary>
    /// How to read a result column whose values the driver's own conversion would refuse or change; null to take the
    /// driver's value. Asked once per column of a result, and the reader is called for non-NULL values only.
    /// </summary>
    Func<DbDataReader, int, object>? ColumnReader(DbDataReader reader, int ordinal);

    Task<ServerInfo> GetServerInfoAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// What a script can change about its session that DbMigration's own statements on that connection depend on:
    /// PostgreSQL's search_path, role and session authorization, MySQL's current database. Read as an opaque value
    /// so that <see cref="RestoreSessionStateAsync"/> can put it back. Null on SQLite, where nothing can move.
    /// </summary>
    Task<string?> ReadSessionStateAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Puts back, for the session and not only the transaction, a state read by <see cref="ReadSessionStateAsync"/>.</summary>
    Task RestoreSessionStateAsync(DbConnection connection, DbTransaction? transaction, string? state, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a transaction that a script opened itself and left open (BEGIN without COMMIT, MySQL's autocommit = 0):
    /// commits it after a step that succeeded, rolls it back after one that failed. Nothing happens when none is open.
    /// </summary>
    Task EndOpenTransactionAsync(DbConnection connection, bool commit, CancellationToken cancellationToken);

    /// <summary>
    /// For a migration whose script switches foreign keys off to rebuild a table (SQLite's documented procedure):
    /// switches them off for the connection before the step's transaction begins, where SQLite honours it, and
    /// returns what switches them back on. Null where nothing needs doing.
    /// </summary>
    Task<IAsyncDisposable?> SuspendForeignKeysAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Rows whose foreign key names a missing parent, described for an error; checked before such a step commits.</summary>
    Task<IReadOnlyList<string>> ForeignKeyViolationsAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken);

    /// <summary>User tables with columns, keys, indexes and foreign keys; DbMigration's own tables included.</summary>
    Task<IReadOnlyList<TableSchema>> GetTablesAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>The user's views, triggers and routines with their definitions (DbMigration's own left out).</summary>
    Task<IReadOnlyList<ObjectDefinition>> GetDefinitionsAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Exact row count of one table.</summary>
    Task<long> CountRowsAsync(DbConnection connection, TableName table, CancellationToken cancellationToken);

    /// <summary>The database's size on disk in bytes.</summary>
    Task<long> GetDatabaseSizeAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken);

    /// <summary>The engine's own integrity check (SQLite integrity_check, PostgreSQL amcheck, MySQL CHECK TABLE).</summary>
    Task<IntegrityReport> CheckIntegrityAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Other sessions on the same database, and whether they hold transactions or write locks.</summary>
    Task<IReadOnlyList<SessionInfo>> GetOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// Ends the other sessions on the target's database, and returns once they are gone, so that their locks no longer
    /// hold up a restore's swap (Restore-MigrationBackup -Force). Returns how many it ended; SQLite has none to end.
    /// </summary>
    Task<int> EndOtherSessionsAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Findings that must be read before the first connection changes them (a SQLite hot journal).</summary>
    IReadOnlyList<ProviderFinding> InspectBeforeConnect(DatabaseTarget target);

    /// <summary>
    /// Proves the connection may create and alter tables, leaving nothing behind (a rolled-back transaction where
    /// DDL is transactional). Throws a <see cref="Errors.DbMigrationException"/> when it may not.
    /// </summary>
    Task ProbeSchemaPrivilegesAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// Why a restore onto this database as the connecting user would be refused by the server (it loads into a new
    /// database and swaps it in): read from the catalog, or (MariaDB, whose catalog does not show a role's grants)
    /// tried with an empty database created and dropped; null when it would not, or when the engine cannot tell
    /// beforehand.
    /// </summary>
    Task<string?> RestoreBlockerAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>
    /// Bounds how long each statement of the session waits for a table or row lock another session holds, so a
    /// migration stuck behind a long transaction fails instead of queueing every later query on the table behind it.
    /// <see cref="TimeSpan.Zero"/> leaves the server's own limit. SQLite has nothing to set: a waiting writer holds
    /// up no reader.
    /// </summary>
    Task LimitLockWaitAsync(DbConnection connection, TimeSpan wait, CancellationToken cancellationToken);

    /// <summary>True for the error of a statement that gave up waiting for a lock (<see cref="LimitLockWaitAsync"/>).</summary>
    bool IsLockWaitTimeout(Exception error);

    /// <summary>
    /// Closes DbMigration's own idle pooled connections to the target (one in use closes when it is handed back), so
    /// they neither block nor count as other sessions. Every cmdlet calls it as it returns: an idle session left
    /// behind would stop a DROP DATABASE and show in the DBA's session list long after.
    /// </summary>
    void ReleasePooledConnections(DatabaseTarget target);

    /// <summary>How this engine takes, restores and swaps in backups.</summary>
    internal Backups.IBackupStrategy BackupStrategy { get; }

    /// <summary>
    /// Takes a named lock that excludes other processes (not only other threads) until disposed.
    /// Throws <see cref="Errors.ErrorIds.LockTimeout"/> when the timeout passes.
    /// </summary>
    Task<IDatabaseLock> AcquireLockAsync(DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the same lock in the session of a connection the caller keeps open, so a run needs one connection, not
    /// two. Disposing releases the lock and leaves the connection open; closing the connection releases it too.
    /// SQLite's lock is a file beside the database, whatever the connection.
    /// </summary>
    Task<IDatabaseLock> AcquireLockAsync(DbConnection connection, DatabaseTarget target, string name, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>A held lock. Dispose to release it.</summary>
public interface IDatabaseLock : IAsyncDisposable
{
    string Name { get; }

    /// <summary>Where the lock lives: a lock file, or an advisory lock key.</summary>
    string Resource { get; }
}
