using System.Data.Common;
using System.Text.RegularExpressions;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// PostgreSQL through pg_dump's custom format, taken inside a snapshot that DbMigration exports: the dump and the
/// manifest's row counts and content hashes describe exactly the same state. Restores go into a new database, which
/// is renamed into place: pg_restore builds the schema, indexes and constraints, and DbMigration loads the rows.
/// Without a pg_dump as new as the server, DbMigration's built-in logical dump is taken in the same kind of snapshot
/// and loaded back by DbMigration itself.
/// </summary>
internal sealed partial class PostgreSqlBackupStrategy(IDatabaseProvider provider) : IBackupStrategy
{
    public const string Format = "pg_dump-custom";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Connections loading rows, and pg_restore's jobs for the indexes and constraints.</summary>
    private const int Jobs = 2;

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
        // -Compress decides that, with Zstandard or Brotli over the whole file, instead of zlib inside it taking the hashes' core.
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

    public async Task<RestoredDatabase> RestoreToNewAsync(string rawPath, string format, DatabaseTarget like, string name, RowsLoaded? rowsLoaded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        Task<PreparedRestore>? prepared = null;
        string? owner;
        var roles = new Dictionary<string, bool>(StringComparer.Ordinal);
        try
        {
            await using (var connection = await OpenMaintenanceAsync(like, cancellationToken).ConfigureAwait(false))
            {
                // pg_restore is found, and the archive's contents listed, while the server creates the database. The
                // server's version came with the connection.
                var major = ((Npgsql.NpgsqlConnection)connection).PostgreSqlVersion.Major;
                prepared = format == PostgreSqlLogicalDump.Format ? null : PrepareRestoreAsync(major, rawPath, cancellationToken);

                // The copy belongs to whoever owns the database it replaces, where this role may hand it over.
                await using (var ownerOf = connection.CreateCommand("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = @database AND pg_has_role(datdba, 'MEMBER') AND pg_has_role(datdba, 'USAGE')")
                    .AddParameter("@database", like.Database!))
                {
                    owner = await ownerOf.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
                }

                // Every role, and whether this one may act as it: the archive's owners and grantees are looked up here.
                await using (var allRoles = connection.CreateCommand("SELECT rolname, pg_has_role(oid, 'MEMBER') AND pg_has_role(oid, 'USAGE') FROM pg_roles"))
                await using (var reader = await allRoles.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        roles[reader.GetString(0)] = reader.GetBoolean(1);
                    }
                }

                try
                {
                    await connection.ExecuteAsync($"CREATE DATABASE {provider.QuoteIdentifier(name)}{(owner is null ? string.Empty : " OWNER " + provider.QuoteIdentifier(owner))} TEMPLATE template0", cancellationToken).ConfigureAwait(false);
                }
                catch (Npgsql.PostgresException ex) when (ex.SqlState == Npgsql.PostgresErrorCodes.InsufficientPrivilege)
                {
                    throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied,
                        $"A restore, and the one that verifies a backup, loads into a new database beside '{like.Database}' first, and role '{like.UserName ?? "(the connecting role)"}' may not create databases on {like.WithDatabase("postgres")}: {ex.MessageText}. Grant it CREATEDB (ALTER ROLE … CREATEDB), or, for Test-DatabaseBackup, name a server connection whose role may with -Server. Nothing was changed.", ex)
                    { Target = like.ToString(), SqlState = ex.SqlState };
                }
                catch (Npgsql.PostgresException ex) when (ex.SqlState == Npgsql.PostgresErrorCodes.ReadOnlySqlTransaction)
                {
                    // A hot standby, the usual place to take backups from without loading the primary.
                    throw new DbMigrationException(ErrorIds.RestoreFailed, ErrorKind.PermissionDenied,
                        $"A restore, and the one that verifies a backup, loads into a new database beside '{like.Database}' first, and {like.WithDatabase("postgres")} accepts no writes (a standby in recovery, or default_transaction_read_only): {ex.MessageText}. For Test-DatabaseBackup, name a writable server with -Server (the primary, or a scratch server); a restore goes to the primary. Nothing was changed.", ex)
                    { Target = like.ToString(), SqlState = ex.SqlState };
                }
            }
        }
        catch when (prepared is not null)
        {
            await Task.WhenAny(prepared).ConfigureAwait(false);
            _ = prepared.Exception;
            throw;
        }

        var scratch = like.WithDatabase(name);
        try
        {
            if (prepared is null)
            {
                progress.Verbose($"Loading DbMigration's built-in dump into database {name}.");
                await using var connection = await provider.OpenConnectionAsync(scratch, ConnectTimeout, cancellationToken).ConfigureAwait(false);
                var database = await PostgreSqlLogicalDump.RestoreAsync(connection, rawPath, progress, cancellationToken).ConfigureAwait(false);
                return new RestoredDatabase(scratch, DatabaseSettings(database, like, givenOwner: owner is not null));
            }

            var restore = await prepared.ConfigureAwait(false);
            progress.Verbose($"Restoring into database {name} with {restore.Tool}.");
            var ownership = OwnershipArguments(restore, roles, progress);
            await RestoreSectionsAsync(restore.Tool, restore.Toc, ownership, rawPath, scratch, rowsLoaded, progress, cancellationToken).ConfigureAwait(false);
            return new RestoredDatabase(scratch, DatabaseSettings(restore.Database, like, givenOwner: owner is not null));
        }
        catch
        {
            await DropAsync(scratch, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The backed-up database's statements, renamed to the target. Its owner is among them only where the copy was
    /// not created with the replaced database's owner: when that database is gone (the disaster-recovery restore), or
    /// this role may not act as its owner.
    /// </summary>
    private IReadOnlyList<string> DatabaseSettings(PostgreSqlDatabaseSettings.Script database, DatabaseTarget like, bool givenOwner)
    {
        if (database.Source is null)
        {
            return [];
        }

        IReadOnlyList<string> statements = givenOwner || database.Owner is null ? database.Settings : [database.Owner, .. database.Settings];
        return PostgreSqlDatabaseSettings.Rename(statements, database.Source, provider.QuoteIdentifier(like.Database!));
    }

    /// <summary>
    /// pg_restore, the archive's contents, the roles its objects are owned by and granted to, and the backed-up
    /// database's own statements (owner and settings).
    /// </summary>
    private sealed record PreparedRestore(string Tool, string[] Toc, IReadOnlySet<string> Owners, IReadOnlySet<string> Grantees, PostgreSqlDatabaseSettings.Script Database);

    private static async Task<PreparedRestore> PrepareRestoreAsync(int serverMajor, string rawPath, CancellationToken cancellationToken)
    {
        var pgRestore = await FindToolAsync("pg_restore", serverMajor, cancellationToken).ConfigureAwait(false);
        async Task<string> ReadAsync(string[] arguments) => await ExternalTool.RunReadingAsync(pgRestore, arguments, new Dictionary<string, string?>(),
            async output =>
            {
                using var reader = new StreamReader(output, leaveOpen: true);
                return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);

        var listing = ReadAsync(["--list", rawPath]);
        var database = PostgreSqlDatabaseSettings.Split(await ReadAsync(["--create", "--section=pre-data", "--file=-", rawPath]).ConfigureAwait(false));
        var schema = database.Objects;
        var owners = OwnerClause().Matches(schema).Select(m => RoleName(m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
        var grantees = GranteeClause().Matches(schema).Select(m => RoleName(m.Groups[1].Value)).Where(r => r != "PUBLIC").ToHashSet(StringComparer.Ordinal);
        return new PreparedRestore(pgRestore, (await listing.ConfigureAwait(false)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(';')).ToArray(), owners, grantees, database);
    }

    private const string RolePattern = @"(""(?:[^""]|"""")+""|[A-Za-z_][A-Za-z0-9_$]*)";

    /// <summary>"ALTER TABLE public.t OWNER TO app;" in pg_restore's schema script.</summary>
    [GeneratedRegex(@"\bOWNER TO " + RolePattern + ";", RegexOptions.CultureInvariant)]
    private static partial Regex OwnerClause();

    /// <summary>"GRANT SELECT ON TABLE public.t TO reader;", "REVOKE ALL ON SCHEMA public FROM PUBLIC;", "… FOR ROLE app …".</summary>
    [GeneratedRegex(@"^(?:GRANT|REVOKE|ALTER DEFAULT PRIVILEGES)\b.*?\b(?:TO|FROM|FOR ROLE) " + RolePattern, RegexOptions.CultureInvariant | RegexOptions.Multiline)]
    private static partial Regex GranteeClause();

    private static string RoleName(string identifier) =>
        identifier.StartsWith('"') ? identifier[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : identifier;

    /// <summary>
    /// Owners and privileges are restored as they were backed up where the server has every role they name, and this
    /// role may act as each owner (a superuser, or a member); otherwise the restoring role owns the objects, and a
    /// warning names what is not carried over.
    /// </summary>
    private static string[] OwnershipArguments(PreparedRestore restore, IReadOnlyDictionary<string, bool> roles, IProgress<OperationUpdate>? progress)
    {
        var arguments = new List<string>();
        var foreignOwners = restore.Owners.Where(o => !roles.GetValueOrDefault(o)).Order(StringComparer.Ordinal).ToList();
        if (foreignOwners.Count > 0)
        {
            arguments.Add("--no-owner");
            progress.Warning($"The restored objects are owned by the restoring role, not by {string.Join(", ", foreignOwners)}: {(foreignOwners.Any(o => !roles.ContainsKey(o)) ? "not every owner exists on this server" : "this role may not act as them")}. Reassign them (REASSIGN OWNED) if the application needs them.");
        }

        var missingGrantees = restore.Grantees.Where(g => !roles.ContainsKey(g)).Order(StringComparer.Ordinal).ToList();
        if (missingGrantees.Count > 0)
        {
            arguments.Add("--no-privileges");
            progress.Warning($"The backup's GRANTs were not restored: {string.Join(", ", missingGrantees)} do not exist on this server.");
        }

        return [.. arguments];
    }

    /// <summary>"3341; 0 16385 TABLE DATA public events postgres": a table's rows (dump id; table oid, oid, kind, …).</summary>
    private static bool IsTableData(string tocLine)
    {
        var fields = tocLine.Split(' ', 5);
        return fields.Length == 5 && fields[0].EndsWith(';') && fields[3] == "TABLE" && fields[4].StartsWith("DATA ", StringComparison.Ordinal);
    }

    /// <summary>
    /// pg_restore's three sections in turn. The rows are DbMigration's to load, spread over every connection
    /// (<see cref="PostgreSqlDataLoader"/>); sequence values and large objects load beside them through pg_restore, and
    /// the indexes and constraints are pg_restore's with its parallel jobs, while <paramref name="rowsLoaded"/> runs.
    /// </summary>
    private async Task RestoreSectionsAsync(string pgRestore, string[] toc, string[] ownership, string rawPath, DatabaseTarget scratch, RowsLoaded? rowsLoaded, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        string[] intoScratch = [.. ConnectionArguments(scratch), "--no-password", "--exit-on-error", .. ownership];
        var environment = Environment(scratch);
        if (!toc.Any(IsTableData))
        {
            await ExternalTool.RunAsync(pgRestore, [.. intoScratch, "--jobs=" + Jobs, rawPath], environment, null, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var lists = TempWorkFolder.Create("dbm-toc-");
        try
        {
            var rows = Path.Combine(lists.Path, "rows.list");
            var rest = Path.Combine(lists.Path, "rest.list");
            await File.WriteAllLinesAsync(rows, toc.Select(l => IsTableData(l) ? l : ";" + l), cancellationToken).ConfigureAwait(false);
            await File.WriteAllLinesAsync(rest, toc.Select(l => IsTableData(l) ? ";" + l : l), cancellationToken).ConfigureAwait(false);

            // The loading connections open while pg_restore creates the tables; the rows wait for the tables.
            var preData = ExternalTool.RunAsync(pgRestore, [.. intoScratch, "--section=pre-data", rawPath], environment, null, null, cancellationToken);
            var loading = LoadRowsAsync(pgRestore, rows, rawPath, scratch, intoScratch, preData, progress, cancellationToken);
            try
            {
                await preData.ConfigureAwait(false);
            }
            catch
            {
                // The same failure ends the loading, once its connections are closed.
                await Task.WhenAny(loading).ConfigureAwait(false);
                _ = loading.Exception;
                throw;
            }

            await Task.WhenAll(
                loading,
                ExternalTool.RunAsync(pgRestore, [.. intoScratch, "--section=data", "--use-list=" + rest, rawPath], environment, null, null, cancellationToken)).ConfigureAwait(false);

            // Every row is in: the checkpoint and the caller's work on the rows run while the indexes build.
            var checkpoint = CheckpointAsync(scratch, progress, cancellationToken);
            var onRows = rowsLoaded?.Invoke(scratch, await loading.ConfigureAwait(false), cancellationToken) ?? Task.CompletedTask;
            var postData = ExternalTool.RunAsync(pgRestore, [.. intoScratch, "--section=post-data", "--jobs=" + Jobs, rawPath], environment, null, null, cancellationToken);
            await Task.WhenAll(postData, checkpoint, onRows).ConfigureAwait(false);
        }
        finally
        {
            lists.Dispose();
        }
    }

    /// <summary>The rows loaded per table, or null where pg_restore loaded them.</summary>
    private async Task<IReadOnlyDictionary<string, long>?> LoadRowsAsync(string pgRestore, string rowsList, string rawPath, DatabaseTarget scratch, string[] intoScratch, Task tablesCreated, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var opening = Enumerable.Range(0, Jobs).Select(_ => provider.OpenConnectionAsync(scratch, ConnectTimeout, cancellationToken)).ToArray();
        var connections = new List<Npgsql.NpgsqlConnection>();
        try
        {
            try
            {
                await Task.WhenAll(opening).ConfigureAwait(false);
            }
            finally
            {
                connections.AddRange(opening.Where(t => t.IsCompletedSuccessfully).Select(t => (Npgsql.NpgsqlConnection)t.Result));
            }

            await tablesCreated.ConfigureAwait(false);

            var loaded = await ExternalTool.RunReadingAsync(pgRestore, ["--no-owner", "--no-privileges", "--use-list=" + rowsList, "--file=-", rawPath], new Dictionary<string, string?>(),
                script => PostgreSqlDataLoader.LoadAsync(script, connections, progress, new FileInfo(rawPath).Length, cancellationToken), cancellationToken).ConfigureAwait(false);
            if (!loaded.Loaded)
            {
                progress.Verbose("The backup's rows are not UTF-8 text: pg_restore loads them.");
                await ExternalTool.RunAsync(pgRestore, [.. intoScratch, "--jobs=" + Jobs, "--use-list=" + rowsList, rawPath], Environment(scratch), null, null, cancellationToken).ConfigureAwait(false);
            }

            return loaded.RowsByTable;
        }
        finally
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            // Idle pooled sessions on the new database would hold up its rename into place.
            provider.ReleasePooledConnections(scratch);
        }
    }

    /// <summary>
    /// Dropping the replaced database waits for a checkpoint, which would write out every row just loaded; one started
    /// now does that while the indexes build. It needs pg_checkpoint or superuser: without, the drop pays as before.
    /// </summary>
    private async Task CheckpointAsync(DatabaseTarget scratch, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenMaintenanceAsync(scratch, cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand("CHECKPOINT", timeoutSeconds: 0);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Npgsql.PostgresException ex) when (ex.SqlState == "42501")
        {
            progress.Verbose("No CHECKPOINT privilege (pg_checkpoint): the loaded rows are written out when the replaced database is dropped.");
        }
    }

    public Task<IReadOnlyList<TableSnapshot>> HashTablesAsync(DatabaseTarget database, int hashVersion, CancellationToken cancellationToken) =>
        ContentHasher.HashDatabaseAsync(provider, database, hashVersion, cancellationToken);

    public async Task DropAsync(DatabaseTarget scratch, CancellationToken cancellationToken)
    {
        await using var connection = await OpenMaintenanceAsync(scratch, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {provider.QuoteIdentifier(scratch.Database!)} WITH (FORCE)", cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<LeftoverCopy>> FindLeftoverCopiesAsync(DatabaseTarget target, DbConnection connection, CancellationToken cancellationToken)
    {
        // The size only where this user may connect to the copy, as pg_database_size requires.
        var copies = new List<LeftoverCopy>();
        await using var command = connection.CreateCommand("""
            SELECT d.datname,
                   CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END,
                   EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid())
            FROM pg_database d WHERE d.datname LIKE 'dbm%' ORDER BY d.datname
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (LeftoverCopies.KindOf(reader.GetString(0), target.Database!) is { } kind)
            {
                copies.Add(new LeftoverCopy(reader.GetString(0), kind, reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetBoolean(2)));
            }
        }

        return copies;
    }

    public async Task SwapAsync(DatabaseTarget target, RestoredDatabase copy, BackupInfo backup, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var restored = copy.Target;
        var old = ShortName(LeftoverCopies.ReplacedPrefix, target.Database!, LeftoverCopies.RunId(backup));
        await using var connection = await OpenMaintenanceAsync(target, cancellationToken).ConfigureAwait(false);
        bool exists;
        await using (var count = connection.CreateCommand("SELECT COUNT(*) FROM pg_database WHERE datname = @database").AddParameter("@database", target.Database!))
        {
            // Zero when the database was dropped: the restored copy then just takes its name.
            exists = Convert.ToInt64(await count.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) > 0;
        }

        if (exists)
        {
            await AwaitClosedSessionsAsync(connection, target.Database!, cancellationToken).ConfigureAwait(false);
        }

        // The renames and the database's settings commit together, so the application never sees the copy without
        // its settings (a revoked CONNECT, its search_path), and a failure leaves both databases as they were.
        var skipped = new List<string>();
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            if (exists)
            {
                await connection.ExecuteAsync($"ALTER DATABASE {provider.QuoteIdentifier(target.Database!)} RENAME TO {provider.QuoteIdentifier(old)}", cancellationToken, transaction).ConfigureAwait(false);
            }

            await connection.ExecuteAsync($"ALTER DATABASE {provider.QuoteIdentifier(restored.Database!)} RENAME TO {provider.QuoteIdentifier(target.Database!)}", cancellationToken, transaction).ConfigureAwait(false);
            foreach (var setting in copy.DatabaseSettings)
            {
                await connection.ExecuteAsync("SAVEPOINT dbm_setting", cancellationToken, transaction).ConfigureAwait(false);
                try
                {
                    await connection.ExecuteAsync(setting, cancellationToken, transaction).ConfigureAwait(false);
                }
                catch (Npgsql.PostgresException ex)
                {
                    await connection.ExecuteAsync("ROLLBACK TO SAVEPOINT dbm_setting", cancellationToken, transaction).ConfigureAwait(false);
                    skipped.Add($"{setting} ({ex.MessageText})");
                }
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (skipped.Count > 0)
        {
            progress.Warning($"{skipped.Count} of the backed-up database's settings were not restored: {string.Join("; ", skipped)}.");
        }

        if (exists)
        {
            await connection.ExecuteAsync($"DROP DATABASE {provider.QuoteIdentifier(old)} WITH (FORCE)", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// RENAME sleeps 100 ms whenever it sees another backend on the database: a session whose client has just closed
    /// (the sessions check's own), or an autovacuum worker, which RENAME stops. Stopping those workers here and
    /// watching both kinds leave costs a few ms. Only a superuser may stop them: for others RENAME does, as before.
    /// Client sessions still there after a second are left to RENAME, which reports them.
    /// </summary>
    private static async Task AwaitClosedSessionsAsync(DbConnection connection, string database, CancellationToken cancellationToken)
    {
        await using (var stop = connection.CreateCommand("""
            SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = @database AND backend_type = 'autovacuum worker' AND current_setting('is_superuser') = 'on'
            """).AddParameter("@database", database))
        {
            await stop.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }

        var deadline = DateTime.UtcNow.AddSeconds(1);
        while (DateTime.UtcNow < deadline)
        {
            await using var command = connection.CreateCommand("""
                SELECT COUNT(*) FROM pg_stat_activity
                WHERE datname = @database
                  AND (backend_type = 'client backend' OR (backend_type = 'autovacuum worker' AND current_setting('is_superuser') = 'on'))
                """).AddParameter("@database", database);
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

    /// <summary>The target's password and TLS settings for pg_dump and pg_restore, as libpq reads them.</summary>
    internal static Dictionary<string, string?> Environment(DatabaseTarget target)
    {
        var environment = new Dictionary<string, string?> { ["PGPASSWORD"] = target.ResolvePassword(), ["PGCONNECT_TIMEOUT"] = "30" };
        foreach (var (option, variable) in new[] { ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("application_name", "PGAPPNAME") })
        {
            if (target.Options.TryGetValue(option, out var value))
            {
                environment[variable] = value;
            }
        }

        return environment;
    }
}
