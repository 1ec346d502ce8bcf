using System.Data.Common;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// PostgreSQL through pg_dump's custom format, taken inside a snapshot that DbMigration exports: the dump and the
/// manifest's row counts and content hashes describe exactly the same state. Restores use pg_restore into a new
/// database, which is renamed into place. Without a pg_dump as new as the server, DbMigration's built-in logical
/// dump is taken in the same kind of snapshot and loaded back by DbMigration itself.
/// </summary>
internal sealed class PostgreSqlBackupStrategy(IDatabaseProvider provider) : IBackupStrategy
{
    public const string Format = "pg_dump-custom";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    public async Task<SnapshotResult> SnapshotAsync(DatabaseTarget source, string rawPath, string? sqlDumpPath, bool hashInParallel, BackupDumpMethod dumpMethod, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        await using var connection = await provider.OpenConnectionAsync(source, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var server = await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false);
        string? pgDump = null;
        if (dumpMethod != BackupDumpMethod.BuiltIn)
        {
            try
            {
                pgDump = await FindToolAsync("pg_dump", server.Version.Major, cancellationToken).ConfigureAwait(false);
            }
            catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.BackupToolFailed && dumpMethod == BackupDumpMethod.Auto)
            {
                progress.Warning(ex.Message + " Using DbMigration's built-in logical dump instead.");
            }
        }

        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        if (pgDump is null)
        {
            progress.Verbose("Writing DbMigration's built-in logical dump in one REPEATABLE READ snapshot.");
            await PostgreSqlLogicalDump.WriteAsync(connection, transaction, rawPath, progress, cancellationToken).ConfigureAwait(false);
            var snapshotTables = await ContentHasher.SnapshotAsync(provider, connection, transaction, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            SecureFiles.RestrictFile(rawPath);
            if (sqlDumpPath is not null)
            {
                File.Copy(rawPath, sqlDumpPath);
                SecureFiles.RestrictFile(sqlDumpPath);
            }

            return new SnapshotResult(server.VersionText, Task.FromResult(snapshotTables), PostgreSqlLogicalDump.Format, "database.sql");
        }

        await using var export = connection.CreateCommand("SELECT pg_export_snapshot()", transaction);
        var snapshotId = (string)(await export.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        progress.Verbose($"Running {pgDump} in exported snapshot {snapshotId}.");

        // pg_dump and the content hashes read the same exported snapshot, in parallel. pg_dump does not compress:
        // -Compress decides that, with Brotli over the whole file, instead of zlib inside it taking the hashes' core.
        var dump = ExternalTool.RunAsync(pgDump, [.. ConnectionArguments(source), "--format=custom", "--compress=0", "--snapshot=" + snapshotId, "--no-password", "--file=" + rawPath], Environment(source), null, null, cancellationToken);
        var tables = await ContentHasher.SnapshotAsync(provider, connection, transaction, cancellationToken).ConfigureAwait(false);
        await dump.ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        SecureFiles.RestrictFile(rawPath);

        if (sqlDumpPath is not null)
        {
            var pgRestore = await FindToolAsync("pg_restore", server.Version.Major, cancellationToken).ConfigureAwait(false);
            await ExternalTool.RunAsync(pgRestore, ["--file=" + sqlDumpPath, rawPath], new Dictionary<string, string?>(), null, null, cancellationToken).ConfigureAwait(false);
            SecureFiles.RestrictFile(sqlDumpPath);
        }

        return new SnapshotResult(server.VersionText, Task.FromResult(tables), Format, "database.pgdump");
    }

    public async Task<DatabaseTarget> RestoreToNewAsync(string rawPath, string format, DatabaseTarget like, string name, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        int major;
        await using (var connection = await provider.OpenConnectionAsync(like, ConnectTimeout, cancellationToken).ConfigureAwait(false))
        {
            major = (await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false)).Version.Major;
            await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(name)} TEMPLATE template0", cancellationToken).ConfigureAwait(false);
        }

        var scratch = like.WithDatabase(name);
        try
        {
            if (format == PostgreSqlLogicalDump.Format)
            {
                progress.Verbose($"Loading DbMigration's built-in dump into database {name}.");
                await using var connection = await provider.OpenConnectionAsync(scratch, ConnectTimeout, cancellationToken).ConfigureAwait(false);
                await PostgreSqlLogicalDump.RestoreAsync(connection, rawPath, progress, cancellationToken).ConfigureAwait(false);
                return scratch;
            }

            var pgRestore = await FindToolAsync("pg_restore", major, cancellationToken).ConfigureAwait(false);
            progress.Verbose($"Restoring into database {name} with {pgRestore}.");
            await ExternalTool.RunAsync(pgRestore,
                [.. ConnectionArguments(scratch), "--no-password", "--exit-on-error", "--no-owner", "--no-privileges", "--jobs=2", rawPath],
                Environment(scratch), null, null, cancellationToken).ConfigureAwait(false);
            return scratch;
        }
        catch
        {
            await DropAsync(scratch, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    public Task<IReadOnlyList<TableSnapshot>> HashTablesAsync(DatabaseTarget database, CancellationToken cancellationToken) =>
        ContentHasher.HashDatabaseAsync(provider, database, cancellationToken);

    public async Task DropAsync(DatabaseTarget scratch, CancellationToken cancellationToken)
    {
        await using var connection = await OpenMaintenanceAsync(scratch, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {provider.QuoteIdentifier(scratch.Database!)} WITH (FORCE)", cancellationToken).ConfigureAwait(false);
    }

    public async Task SwapAsync(DatabaseTarget target, DatabaseTarget restored, string backupId, CancellationToken cancellationToken)
    {
        var old = ShortName("dbm_old", target.Database!, backupId);
        await using var connection = await OpenMaintenanceAsync(target, cancellationToken).ConfigureAwait(false);
        await AwaitClosedSessionsAsync(connection, target.Database!, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"ALTER DATABASE {provider.QuoteIdentifier(target.Database!)} RENAME TO {provider.QuoteIdentifier(old)}", cancellationToken).ConfigureAwait(false);
        try
        {
            await connection.ExecuteAsync($"ALTER DATABASE {provider.QuoteIdentifier(restored.Database!)} RENAME TO {provider.QuoteIdentifier(target.Database!)}", cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.ExecuteAsync($"ALTER DATABASE {provider.QuoteIdentifier(old)} RENAME TO {provider.QuoteIdentifier(target.Database!)}", CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        await connection.ExecuteAsync($"DROP DATABASE {provider.QuoteIdentifier(old)} WITH (FORCE)", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The sessions check just before closed its connection, but a backend leaves pg_stat_activity a moment after
    /// its client: RENAME would see it and sleep 100 ms before looking again. Watching it go costs a few ms.
    /// Client sessions still there after a second are left to RENAME, which reports them (it stops autovacuum itself).
    /// </summary>
    private static async Task AwaitClosedSessionsAsync(DbConnection connection, string database, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(1);
        while (DateTime.UtcNow < deadline)
        {
            await using var command = connection.CreateCommand("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = @database AND backend_type = 'client backend'").AddParameter("@database", database);
            if (Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                return;
            }

            await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Identifiers stop at 63 bytes: a prefix, the start of the name and a hash of the id.</summary>
    internal static string ShortName(string prefix, string database, string backupId)
    {
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(database + backupId)))[..8].ToLowerInvariant();
        var stem = database.Length > 40 ? database[..40] : database;
        return $"{prefix}_{stem}_{hash}";
    }

    private async Task<DbConnection> OpenMaintenanceAsync(DatabaseTarget target, CancellationToken cancellationToken)
    {
        try
        {
            return await provider.OpenConnectionAsync(target.WithDatabase("postgres"), ConnectTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.TargetDatabaseNotFound)
        {
            return await provider.OpenConnectionAsync(target.WithDatabase("template1"), ConnectTimeout, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<string> FindToolAsync(string name, int serverMajor, CancellationToken cancellationToken)
    {
        var tool = ExternalTool.Find(name) ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
            $"{name} was not found on PATH or under /usr/lib/postgresql. Install the PostgreSQL client tools (postgresql-client-{serverMajor}).");
        var major = await ExternalTool.MajorVersionAsync(tool, cancellationToken).ConfigureAwait(false);
        if (major < serverMajor)
        {
            throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
                $"{tool} is version {major}, older than the server ({serverMajor}); it cannot dump this server. Install postgresql-client-{serverMajor}.");
        }

        return tool;
    }

    private static string[] ConnectionArguments(DatabaseTarget target) =>
    [
        "--host=" + (target.Host ?? "localhost"),
        "--port=" + (target.Port ?? 5432).ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--username=" + (target.UserName ?? System.Environment.UserName),
        "--dbname=" + target.Database,
    ];

    private static Dictionary<string, string?> Environment(DatabaseTarget target)
    {
        var environment = new Dictionary<string, string?> { ["PGPASSWORD"] = target.ResolvePassword(), ["PGCONNECT_TIMEOUT"] = "30" };
        if (target.Options.TryGetValue("sslmode", out var sslMode))
        {
            environment["PGSSLMODE"] = sslMode;
        }

        return environment;
    }
}
