using DbMigration.Operations;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// What a snapshot produced: the server version, and the tables as they were in that snapshot. The tables may
/// still be being hashed when the snapshot file is ready, so the file's own checksum can run alongside.
/// </summary>
/// <param name="Format">How the primary copy was taken, recorded in backup.json (for example "sqlite-backup-api").</param>
/// <param name="PrimaryFileName">The primary copy's file name before compression and encryption suffixes.</param>
/// <param name="SourceFileMode">SQLite on Unix: the database file's permission bits, kept in the manifest.</param>
internal sealed record SnapshotResult(string ServerVersion, Task<IReadOnlyList<TableSnapshot>> Tables, string Format, string PrimaryFileName, string? SourceFileMode = null);

/// <summary>
/// A backup restored into a new database, and the backed-up database's own settings (PostgreSQL: ALTER DATABASE … SET,
/// its GRANTs and comment), as statements naming the target. The swap applies them in its own transaction: applied
/// sooner, a revoked CONNECT or a read-only default would stop the restore's own connections to the copy.
/// </summary>
internal sealed record RestoredDatabase(DatabaseTarget Target, IReadOnlyList<string> DatabaseSettings)
{
    public static RestoredDatabase WithoutSettings(DatabaseTarget target) => new(target, []);
}

/// <summary>
/// Called by a restore once every row of <paramref name="copy"/> is in, with the rows the server accepted per table
/// ("schema.name") where the strategy loaded and counted them itself, otherwise null.
/// </summary>
internal delegate Task RowsLoaded(DatabaseTarget copy, IReadOnlyDictionary<string, long>? loadedRows, CancellationToken cancellationToken);

/// <summary>
/// How one engine takes, restores and swaps in backups. The backup service handles files, compression,
/// encryption, checksums and the catalog; the strategy handles only the database side.
/// </summary>
internal interface IBackupStrategy
{
    /// <summary>
    /// Writes a consistent snapshot of <paramref name="source"/> to <paramref name="rawPath"/>, and optionally a
    /// human-readable SQL dump, with row counts and content hashes taken from the same state.
    /// </summary>
    /// <param name="hashInParallel">False when compression or encryption will keep another core busy meanwhile.</param>
    /// <param name="dumpMethod">The engine's dump tool, DbMigration's built-in logical dump, or the tool with the built-in dump as fallback.</param>
    Task<SnapshotResult> SnapshotAsync(DatabaseTarget source, string rawPath, string? sqlDumpPath, bool hashInParallel, BackupDumpMethod dumpMethod, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// Restores a raw snapshot, taken in <paramref name="format"/>, into a new, empty database named
    /// <paramref name="name"/> beside <paramref name="like"/>.
    /// </summary>
    /// <param name="rowsLoaded">
    /// Called with the new database once every row is in, where the engine still builds indexes and constraints after
    /// that, so that work on the rows runs meanwhile; it is done when the restore returns. A strategy may not call it.
    /// </param>
    Task<RestoredDatabase> RestoreToNewAsync(string rawPath, string format, DatabaseTarget like, string name, RowsLoaded? rowsLoaded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken);

    Task DropAsync(DatabaseTarget scratch, CancellationToken cancellationToken);

    /// <summary>Row counts and content hashes of a restored copy, computed exactly as at backup time.</summary>
    Task<IReadOnlyList<TableSnapshot>> HashTablesAsync(DatabaseTarget database, int hashVersion, CancellationToken cancellationToken);

    /// <summary>
    /// Puts <paramref name="restored"/> in place of <paramref name="target"/> with its database settings. Until the
    /// final step the original is untouched. A setting that cannot be applied (a role it names is gone) is a warning.
    /// A SQLite file that no longer exists gets the permissions recorded in <paramref name="backup"/>.
    /// </summary>
    Task SwapAsync(DatabaseTarget target, RestoredDatabase restored, BackupInfo backup, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// Copies of <paramref name="target"/> that restores or verifications stopped before they cleaned up left behind,
    /// looked up through <paramref name="connection"/> (a connection to the target).
    /// </summary>
    Task<IReadOnlyList<LeftoverCopy>> FindLeftoverCopiesAsync(DatabaseTarget target, System.Data.Common.DbConnection connection, CancellationToken cancellationToken);
}
