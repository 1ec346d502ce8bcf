using System.Globalization;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// MySQL/MariaDB through mariadb-dump (or mysqldump) --single-transaction. Restores load the SQL into a new
/// database with the mariadb client, and the swap moves every table across in one atomic RENAME TABLE.
/// </summary>
internal sealed class MySqlBackupStrategy(IDatabaseProvider provider) : IBackupStrategy
{
    public string Format => "mariadb-dump-sql";

    public string PrimaryFileName => "database.sql";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    public async Task<SnapshotResult> SnapshotAsync(DatabaseTarget source, string rawPath, string? sqlDumpPath, bool hashInParallel, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var dumpTool = ExternalTool.Find("mariadb-dump", "mysqldump") ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
            "mariadb-dump (or mysqldump) was not found on PATH. Install the MariaDB client (mariadb-client).");
        await using var connection = await provider.OpenConnectionAsync(source, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var server = await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false);
        progress.Verbose($"Running {dumpTool} --single-transaction.");
        await ExternalTool.RunAsync(dumpTool,
            [.. ConnectionArguments(source), "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4", "--no-tablespaces", "--result-file=" + rawPath, source.Database!],
            Environment(source), null, null, cancellationToken).ConfigureAwait(false);
        SecureFiles.RestrictFile(rawPath);

        // The counts come from a consistent snapshot of their own; with concurrent writers they may differ from the
        // dump's, and verification then fails safe rather than passing a wrong backup.
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        var tables = await ContentHasher.SnapshotAsync(provider, connection, transaction, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        if (sqlDumpPath is not null)
        {
            File.Copy(rawPath, sqlDumpPath);
            SecureFiles.RestrictFile(sqlDumpPath);
        }

        return new SnapshotResult(server.VersionText, Task.FromResult(tables));
    }

    public async Task<DatabaseTarget> RestoreToNewAsync(string rawPath, DatabaseTarget like, string name, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var client = ExternalTool.Find("mariadb", "mysql") ?? throw new DbMigrationException(ErrorIds.BackupToolFailed, ErrorKind.NotInstalled,
            "The mariadb (or mysql) client was not found on PATH. Install mariadb-client.");
        await using (var connection = await provider.OpenConnectionAsync(like, ConnectTimeout, cancellationToken).ConfigureAwait(false))
        {
            await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(name)} CHARACTER SET utf8mb4", cancellationToken).ConfigureAwait(false);
        }

        var scratch = like.WithDatabase(name);
        try
        {
            progress.Verbose($"Loading the dump into {name} with {client}.");
            await ExternalTool.RunAsync(client, [.. ConnectionArguments(scratch), "--default-character-set=utf8mb4", "--binary-mode", name], Environment(scratch), rawPath, null, cancellationToken).ConfigureAwait(false);
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
        await using var connection = await provider.OpenConnectionAsync(scratch.WithDatabase("mysql"), ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {provider.QuoteIdentifier(scratch.Database!)}", cancellationToken).ConfigureAwait(false);
    }

    public async Task SwapAsync(DatabaseTarget target, DatabaseTarget restored, string backupId, CancellationToken cancellationToken)
    {
        var old = PostgreSqlBackupStrategy.ShortName("dbm_old", target.Database!, backupId);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var current = (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Select(t => t.Name.Name).ToList();
        await connection.ChangeDatabaseAsync(restored.Database!, cancellationToken).ConfigureAwait(false);
        var incoming = (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Select(t => t.Name.Name).ToList();

        // One RENAME TABLE moves every table at once: MySQL applies it atomically, so a failure changes nothing.
        await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(old)}", cancellationToken).ConfigureAwait(false);
        string Q(string db, string table) => provider.QuoteIdentifier(db) + "." + provider.QuoteIdentifier(table);
        var moves = current.Select(t => $"{Q(target.Database!, t)} TO {Q(old, t)}")
            .Concat(incoming.Select(t => $"{Q(restored.Database!, t)} TO {Q(target.Database!, t)}"));
        await connection.ExecuteAsync("SET FOREIGN_KEY_CHECKS = 0; RENAME TABLE " + string.Join(", ", moves) + "; SET FOREIGN_KEY_CHECKS = 1", cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"DROP DATABASE {provider.QuoteIdentifier(old)}; DROP DATABASE {provider.QuoteIdentifier(restored.Database!)}", cancellationToken).ConfigureAwait(false);
    }

    private static string[] ConnectionArguments(DatabaseTarget target) =>
    [
        "--no-defaults",
        "--host=" + (target.Host ?? "localhost"),
        "--port=" + (target.Port ?? 3306).ToString(CultureInfo.InvariantCulture),
        "--user=" + (target.UserName ?? System.Environment.UserName),
    ];

    private static Dictionary<string, string?> Environment(DatabaseTarget target) => new() { ["MYSQL_PWD"] = target.ResolvePassword() };
}
