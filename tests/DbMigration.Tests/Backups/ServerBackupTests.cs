using System.Globalization;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.Providers;
using DbMigration.Query;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>Backup, verification and restore on the server engines, through the cmdlets.</summary>
public abstract class ServerBackupTests(IEngineUnderTest engine) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    protected string Folder => _dir.Path;

    protected IEngineUnderTest Engine { get; } = engine;

    protected string Repository => _dir.File("backups");

    protected abstract string CountDatabasesLike(string prefix);

    protected static List<QueryRow> Query(DatabaseTarget target, string sql)
    {
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<QueryRow>().ToList();
    }

    private static long Scalar(DatabaseTarget target, string sql) => Convert.ToInt64(Query(target, sql).Single()[0], CultureInfo.InvariantCulture);

    /// <summary>
    /// A Backup-Database -Verify run against a server that accepts no writes: the backup comes out, unverified, with a
    /// non-terminating error pointing to a writable server, and verified against <paramref name="writable"/> it passes.
    /// </summary>
    private protected void AssertKeptAndVerifiableOnAWritableServer(RecordingHost host, DatabaseTarget writable)
    {
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        var error = Assert.Single(host.Errors);
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (error.ErrorId, error.Kind));
        Assert.Contains("could not be verified", error.Message, StringComparison.Ordinal);
        Assert.Contains("accepts no writes", error.Message, StringComparison.Ordinal);
        Assert.Contains("-Server", error.Message, StringComparison.Ordinal);
        Assert.Equal(VerificationStatus.NotVerified, backup.Verification.Status);

        var verify = new RecordingHost(Folder);
        new TestDatabaseBackupCommand { InputObject = backup, Server = writable }.Invoke(verify, CancellationToken.None);
        Assert.Equal(VerificationStatus.Passed, Assert.Single(verify.ObjectsOf<BackupVerification>()).Status);
    }

    protected async Task<DatabaseTarget> SeededAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);
            CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, note VARCHAR(100), FOREIGN KEY (parent_id) REFERENCES parent (id));
            CREATE INDEX ix_child_parent ON child (parent_id);
            INSERT INTO parent (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'it''s');
            INSERT INTO child (id, parent_id, note) VALUES (10, 1, 'x'), (11, 1, NULL), (12, 3, 'é🦀');
            """);
        return target;
    }

    protected BackupInfo Backup(DatabaseTarget target, BackupCompression compression = BackupCompression.Fast)
    {
        var host = new RecordingHost(_dir.Path);
        new BackupDatabaseCommand { Database = target, Path = Repository, Compress = compression, IncludeSqlDumpMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        return Assert.Single(host.ObjectsOf<BackupInfo>());
    }

    [Fact]
    public async Task A_backup_verifies_by_restoring_into_a_scratch_database_that_is_dropped()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        Assert.Equal(Engine.Engine, backup.Engine);
        Assert.Equal(2, backup.Tables.Count);
        Assert.Equal(3, backup.Tables.Single(t => t.Table.EndsWith("child", StringComparison.Ordinal)).Rows);
        Assert.DoesNotContain("pw-", backup.Source, StringComparison.Ordinal);

        var host = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(host, CancellationToken.None);
        var verification = Assert.Single(host.ObjectsOf<BackupVerification>());
        Assert.True(verification.Status == VerificationStatus.Passed, verification.Message + "\n" + string.Join("\n", verification.Checks));
        Assert.Contains(verification.Checks, c => c.Name == "Integrity" && c.Passed);
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_verify")));
    }

    [Fact]
    public async Task Piped_from_Backup_Database_a_backup_verifies_without_naming_the_server_or_password_again()
    {
        var target = await SeededAsync();
        Assert.True(target.HasExplicitPassword, "the fixture's target carries its password in the URI");
        var password = target.ResolvePassword()!;
        var backup = Backup(target);

        var host = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup }.Invoke(host, CancellationToken.None);

        var verification = Assert.Single(host.ObjectsOf<BackupVerification>());
        Assert.True(verification.Status == VerificationStatus.Passed, verification.Message);
        Assert.DoesNotContain(password, File.ReadAllText(Path.Combine(backup.Path, "backup.json")), StringComparison.Ordinal);
        Assert.DoesNotContain(password, backup.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A restore stopped midway (killed, or its server connection lost) leaves its copy, or after the swap the
    /// replaced database, on the server. Their names came from the backup's id alone, so restoring the same backup
    /// again, the obvious next step in an emergency, failed on "database exists". Pre-flight names what was left.
    /// </summary>
    [Fact]
    public async Task Restoring_a_backup_again_after_a_stopped_restore_works_and_preflight_names_what_that_left()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        Query(target, "DELETE FROM child");
        var provider = DatabaseProviders.For(Engine.Engine);
        string[] left = [PostgreSqlBackupStrategy.ShortName("dbm_restore", target.Database!, backup.Id), PostgreSqlBackupStrategy.ShortName("dbm_old", target.Database!, backup.Id)];
        foreach (var name in left)
        {
            Query(target, $"CREATE DATABASE {provider.QuoteIdentifier(name)}");
        }

        try
        {
            var host = new RecordingHost(_dir.Path);
            new RestoreMigrationBackupCommand { Database = target, BackupPath = backup.Path, SkipSafetyBackupMode = true }.Invoke(host, CancellationToken.None);

            Assert.True(host.Errors.Count == 0, string.Join("\n", host.Errors.Select(e => e.Message)));
            Assert.True(Assert.Single(host.ObjectsOf<RestoreResult>()).RowCountsMatch);
            Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
            Assert.Equal(2, Scalar(target, CountDatabasesLike("dbm_")));
            var check = Preflight.PreflightRun.Checks(target).Single(c => c.Code == DbMigration.Preflight.PreflightCodes.LeftoverCopies);
            Assert.Equal(DbMigration.Preflight.PreflightStatus.Warning, check.Status);
            Assert.All(left, name => Assert.Contains($"DROP DATABASE {provider.QuoteIdentifier(name)};", check.Message, StringComparison.Ordinal));
        }
        finally
        {
            foreach (var name in left)
            {
                Query(target, $"DROP DATABASE IF EXISTS {provider.QuoteIdentifier(name)}");
            }
        }
    }

    [Fact]
    public async Task Restore_replaces_the_database_with_the_backup_and_keeps_a_safety_backup()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        Query(target, "DELETE FROM child; UPDATE parent SET name = 'migrated'");

        var host = new RecordingHost(_dir.Path);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(host, CancellationToken.None);

        var result = Assert.Single(host.ObjectsOf<RestoreResult>());
        Assert.True(result.RowCountsMatch);
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Equal(0, Scalar(target, "SELECT COUNT(*) FROM parent WHERE name = 'migrated'"));
        Assert.Equal("é🦀", Query(target, "SELECT note FROM child WHERE id = 12").Single()["note"]);
        var safety = new BackupRepository(Repository).Get(result.SafetyBackupId!);
        Assert.Equal(0, safety.Tables.Single(t => t.Table.EndsWith("child", StringComparison.Ordinal)).Rows);
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
    }

    [Fact]
    public async Task A_backup_verified_as_it_is_restores_with_row_counts_and_a_changed_one_is_verified_in_full()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        var verifyHost = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(verifyHost, CancellationToken.None);
        Assert.Equal(VerificationStatus.Passed, Assert.Single(verifyHost.ObjectsOf<BackupVerification>()).Status);
        Assert.NotNull(BackupManifest.Read(backup.Path).Verification.FilesDigest);

        RestoreResult Restore(bool reverify = false)
        {
            Query(target, "DELETE FROM child; UPDATE parent SET name = 'migrated'");
            var host = new RecordingHost(_dir.Path);
            new RestoreMigrationBackupCommand { Database = target, BackupPath = backup.Path, SkipSafetyBackupMode = true, ReverifyMode = reverify }.Invoke(host, CancellationToken.None);
            Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
            Assert.Equal(0, Scalar(target, "SELECT COUNT(*) FROM parent WHERE name = 'migrated'"));
            Assert.Equal("é🦀", Query(target, "SELECT note FROM child WHERE id = 12").Single()["note"]);
            Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
            return Assert.Single(host.ObjectsOf<RestoreResult>());
        }

        // Verified with exactly these files: checksums before, row counts after, no second full verification.
        var trusted = Restore();
        Assert.False(trusted.Reverified);
        Assert.True(trusted.RowCountsMatch);
        Assert.Contains("verified in full", trusted.Verification, StringComparison.Ordinal);
        Assert.Equal(3, trusted.Tables.Single(t => t.Table.EndsWith("child", StringComparison.Ordinal)).Rows);

        Assert.True(Restore(reverify: true).Reverified);

        // A file changed after the verification, its checksum re-recorded: the old verdict no longer covers it.
        var dump = backup.Files.Single(f => f.Kind == "sql-dump");
        var dumpPath = Path.Combine(backup.Path, dump.Name);
        await File.AppendAllTextAsync(dumpPath, "-- edited after verification\n");
        var current = BackupManifest.Read(backup.Path);
        var rehashed = current with
        {
            Files = current.Files.Select(f => f.Name == dump.Name ? f with { Size = new FileInfo(dumpPath).Length, Sha256 = Sha256Of(dumpPath) } : f).ToList(),
        };
        BackupManifest.Write(backup.Path, rehashed);
        Assert.True(Restore().Reverified);
    }

    [Fact]
    public async Task A_trusted_restore_whose_row_counts_differ_from_the_manifest_leaves_the_original_in_place()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(new RecordingHost(), CancellationToken.None);

        // The manifest now promises a row the files do not hold; the verdict still covers the files as they are.
        var verified = BackupManifest.Read(backup.Path);
        BackupManifest.Write(backup.Path, verified with
        {
            Tables = verified.Tables.Select(t => t.Table.EndsWith("child", StringComparison.Ordinal) ? t with { Rows = t.Rows + 1 } : t).ToList(),
        });
        Query(target, "DELETE FROM child");

        var ex = Assert.Throws<DbMigrationException>(() =>
            new RestoreMigrationBackupCommand { Database = target, BackupPath = backup.Path, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        Assert.Equal(ErrorIds.BackupVerificationFailed, ex.ErrorId);
        Assert.Contains("-Reverify", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM parent"));
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
    }

    [Fact]
    public async Task A_backup_taken_while_the_application_writes_verifies()
    {
        var target = await SeededAsync();
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        using var stop = new CancellationTokenSource();
        var written = 0;
        var writer = Task.Run(async () =>
        {
            await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
            for (var id = 1000; !stop.IsCancellationRequested; id++)
            {
                await connection.ExecuteAsync($"INSERT INTO parent (id, name) VALUES ({id}, 'written during the backup')", CancellationToken.None);
                Interlocked.Increment(ref written);
            }
        });
        while (Volatile.Read(ref written) < 20 && !writer.IsCompleted)
        {
            await Task.Delay(5);
        }

        var before = Volatile.Read(ref written);
        var host = new RecordingHost(_dir.Path);
        try
        {
            new BackupDatabaseCommand { Database = target, Path = Repository, Compress = BackupCompression.None }.Invoke(host, CancellationToken.None);
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }

        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Empty(host.Errors);
        Assert.Empty(host.Warnings);
        Assert.DoesNotContain("logical", backup.Format, StringComparison.Ordinal);
        Assert.True(written > before, "The application wrote while the backup ran.");
        var parents = backup.Tables.Single(t => t.Table.EndsWith("parent", StringComparison.Ordinal)).Rows;
        Assert.InRange(parents, 3 + before, 3 + written);

        // The manifest describes the dump exactly: restored, its counts and content hashes match.
        var verifyHost = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(verifyHost, CancellationToken.None);
        var verification = Assert.Single(verifyHost.ObjectsOf<BackupVerification>());
        Assert.True(verification.Status == VerificationStatus.Passed, string.Join("; ", verification.Checks.Where(c => !c.Passed).Select(c => c.Message)));
    }

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream)).ToLowerInvariant();
    }

    [Fact]
    public async Task Restore_refuses_while_other_sessions_are_connected_and_names_them()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using var other = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);

        var ex = Assert.Throws<DbMigrationException>(() =>
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.RestoreSessionsConnected, ex.ErrorId);
        Assert.Contains("connected", ex.Message, StringComparison.Ordinal);

        // The restore into a new database, begun beside the sessions check, was stopped and dropped.
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
    }

    /// <summary>-Force ends the application's sessions, never a DbMigration run's: a running migration is refused.</summary>
    [Fact]
    public async Task Restore_with_Force_still_refuses_while_a_migration_holds_its_lock()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        Query(target, "DELETE FROM child");
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (await DbMigration.Migrations.MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(5), force: false, null, CancellationToken.None))
        {
            var ex = Assert.Throws<DbMigrationException>(() =>
                new RestoreMigrationBackupCommand { Database = target, InputObject = backup, ForceMode = true, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(), CancellationToken.None));

            Assert.Equal(ErrorIds.MigrationLockHeld, ex.ErrorId);
            Assert.Contains($"pid {Environment.ProcessId}", ex.Message, StringComparison.Ordinal);
            Assert.Equal(0, Scalar(target, "SELECT COUNT(*) FROM child"));
            Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
        }

        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, ForceMode = true, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
    }

    [Fact]
    public async Task Restore_with_Force_replaces_the_database_while_another_session_holds_a_transaction_open()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        Query(target, "DELETE FROM child");
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        var other = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        var open = await other.BeginTransactionAsync();
        await using (var read = other.CreateCommand("SELECT COUNT(*) FROM parent", open))
        {
            await read.ExecuteScalarAsync();
        }

        var host = new RecordingHost(_dir.Path);
        var restore = Task.Run(() => new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(host, CancellationToken.None));
        Assert.Same(restore, await Task.WhenAny(restore, Task.Delay(TimeSpan.FromSeconds(60))));
        await restore;

        // -Force ended that session: its connection fails on its next use, disposing included.
        try
        {
            await open.DisposeAsync();
            await other.DisposeAsync();
        }
        catch (System.Data.Common.DbException)
        {
        }

        Assert.Single(host.ObjectsOf<RestoreResult>());
        Assert.Contains(host.Warnings, w => w.Contains("-Force", StringComparison.Ordinal));
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
    }

    [Fact]
    public async Task A_dropped_database_is_restored_from_its_backup()
    {
        var target = await SeededAsync();
        var backup = Backup(target);
        DbMigration.Providers.DatabaseProviders.For(target).ReleasePooledConnections(target);
        Query(target.WithDatabase(Engine.Engine == DatabaseEngine.PostgreSql ? "postgres" : "mysql"), Engine.Engine == DatabaseEngine.PostgreSql
            ? $"DROP DATABASE \"{target.Database}\" WITH (FORCE)"
            : $"DROP DATABASE `{target.Database}`");

        var host = new RecordingHost(_dir.Path);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(host, CancellationToken.None);

        var result = Assert.Single(host.ObjectsOf<RestoreResult>());
        Assert.Null(result.SafetyBackupId);
        Assert.Contains(host.Warnings, w => w.Contains("does not exist", StringComparison.Ordinal));
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Equal("é🦀", Query(target, "SELECT note FROM child WHERE id = 12").Single()["note"]);
        Assert.Equal(0, Scalar(target, CountDatabasesLike("dbm_")));
        Assert.Single(new BackupRepository(Repository).List());
    }

    /// <summary>
    /// The first migration's safety backup is of an empty database, and rolling back to it is the emergency path.
    /// On MariaDB the swap sent an empty RENAME TABLE and failed with a syntax error.
    /// </summary>
    [Theory]
    [InlineData(BackupDumpMethod.EngineTool)]
    [InlineData(BackupDumpMethod.BuiltIn)]
    public async Task A_backup_of_an_empty_database_restores_and_removes_what_was_created_since(BackupDumpMethod method)
    {
        var target = await Engine.CreateDatabaseAsync();
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = method, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Empty(backup.Tables);
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        Query(target, "CREATE TABLE half_done (id INTEGER PRIMARY KEY)");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);
        Assert.Empty(await TablesAsync(target));

        // And an empty database restored over an empty one.
        var again = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(again, CancellationToken.None);
        Assert.Empty(again.Errors);
        Assert.Empty(await TablesAsync(target));
    }

    private static async Task<IReadOnlyList<string>> TablesAsync(DatabaseTarget target)
    {
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        return (await provider.GetTablesAsync(connection, CancellationToken.None)).Select(t => t.Name.Name).ToList();
    }

    [Fact]
    public async Task A_backup_of_another_engine_is_refused()
    {
        using var sqlite = new SqliteEngine();
        var file = await sqlite.CreateDatabaseAsync();
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = file, Path = Repository }, null, CancellationToken.None);
        var target = await SeededAsync();

        var host = new RecordingHost();
        var ex = Assert.Throws<DbMigrationException>(() =>
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(host, CancellationToken.None));
        Assert.Equal(ErrorIds.RestoreEngineMismatch, ex.ErrorId);
        Assert.Equal(3, Scalar(target, "SELECT COUNT(*) FROM parent"));
        // Refused before -Confirm asks, and without a warning about another database's data first.
        Assert.Empty(host.ShouldProcessCalls);
        Assert.Empty(host.Warnings);
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlBackupTests(PostgresServer server) : ServerBackupTests(server)
{
    protected override string CountDatabasesLike(string prefix) => $"SELECT COUNT(*) FROM pg_database WHERE datname LIKE '{prefix}%'";

    [Theory]
    [InlineData(BackupDumpMethod.EngineTool)]
    [InlineData(BackupDumpMethod.BuiltIn)]
    public async Task A_backup_verification_and_restore_work_through_the_servers_socket_named_as_libpq_names_it(BackupDumpMethod method)
    {
        var seeded = await SeededAsync();
        Assert.NotNull(server.SocketFolder);
        var viaSocket = DatabaseTarget.Parse($"postgres://postgres@/{seeded.Database}?host={Uri.EscapeDataString(server.SocketFolder)}&port={server.Port}");
        Assert.Equal(seeded.Identity, viaSocket.Identity);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = viaSocket, Path = Repository, DumpMethod = method, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        // The emergency rollback by -Latest finds it from either name of the same server.
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = viaSocket, Path = Repository, LatestMode = true, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(restore, CancellationToken.None);
        Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);
    }

    [Fact]
    public void Pg_dump_and_pg_restore_get_the_targets_TLS_settings()
    {
        // libpq reads them from the environment; without PGSSLROOTCERT, verify-full looks in ~/.postgresql instead.
        var environment = PostgreSqlBackupStrategy.Environment(DatabaseTarget.Parse("postgres://deploy@db1/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fdb-ca.pem&application_name=nightly"));
        Assert.Equal("verify-full", environment["PGSSLMODE"]);
        Assert.Equal("/etc/ssl/db-ca.pem", environment["PGSSLROOTCERT"]);
        Assert.Equal("nightly", environment["PGAPPNAME"]);
        Assert.False(PostgreSqlBackupStrategy.Environment(DatabaseTarget.Parse("postgres://deploy@db1/app")).ContainsKey("PGSSLROOTCERT"));
    }

    private static string One(DatabaseTarget target, string sql)
    {
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(host, CancellationToken.None);
        return Convert.ToString(host.ObjectsOf<QueryRow>().Single()[0], CultureInfo.InvariantCulture)!;
    }

    private static void Run(DatabaseTarget target, string sql) =>
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(new RecordingHost(), CancellationToken.None);

    [Fact]
    public async Task A_role_that_may_not_create_databases_gets_a_clear_error_and_the_backups_verdict_is_kept()
    {
        // Verifying and restoring load into a new database; an application role often lacks CREATEDB.
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var app = "dbm_nocreate_" + suffix;
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; ALTER DATABASE \"{target.Database}\" OWNER TO {app}");
        var asApp = target.WithCredential(app, "app-pw");
        Run(asApp, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2)");

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = asApp, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        new TestDatabaseBackupCommand { InputObject = backup, Server = server.Admin }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(VerificationStatus.Passed, BackupManifest.Read(backup.Path).Verification.Status);

        var verify = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = asApp }.Invoke(verify, CancellationToken.None);
        var verification = Assert.Single(verify.ObjectsOf<BackupVerification>());
        Assert.Equal(VerificationStatus.NotVerified, verification.Status);
        var error = Assert.Single(verify.Errors);
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (error.ErrorId, error.Kind));
        Assert.Contains("CREATEDB", error.Message, StringComparison.Ordinal);
        Assert.Contains("could not be verified", error.Message, StringComparison.Ordinal);
        Assert.Equal(VerificationStatus.Passed, BackupManifest.Read(backup.Path).Verification.Status);

        Run(asApp, "DELETE FROM orders");
        var restore = Assert.Throws<DbMigrationException>(() => new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(Folder), CancellationToken.None));
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (restore.ErrorId, restore.Kind));
        Assert.Contains("Nothing was changed", restore.Message, StringComparison.Ordinal);
        Assert.Equal("0", One(asApp, "SELECT COUNT(*) FROM orders"));
    }

    [Fact]
    public async Task A_role_that_may_not_read_every_table_gets_a_backup_error_saying_what_a_backup_needs()
    {
        var app = "dbm_partial_" + Guid.NewGuid().ToString("N")[..8];
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; ALTER DATABASE \"{target.Database}\" OWNER TO {app}");
        Run(target, "CREATE TABLE payroll (id int PRIMARY KEY); INSERT INTO payroll VALUES (1)");
        var asApp = target.WithCredential(app, "app-pw");
        Run(asApp, "CREATE TABLE orders (id int PRIMARY KEY)");

        var error = Assert.Throws<DbMigrationException>(() => new BackupDatabaseCommand { Database = asApp, Path = Repository }.Invoke(new RecordingHost(Folder), CancellationToken.None));
        Assert.Equal((ErrorIds.BackupFailed, ErrorKind.PermissionDenied), (error.ErrorId, error.Kind));
        Assert.Contains("payroll", error.Message, StringComparison.Ordinal);
        Assert.Contains("A backup reads everything", error.Message, StringComparison.Ordinal);
        Assert.Empty(new BackupRepository(Repository).List());
    }

    /// <summary>
    /// A backup taken from a server that accepts no writes (a hot standby; here a role whose transactions are read-only)
    /// is fine, but its verification creates a scratch database there. That failed the whole Backup-Database -Verify
    /// with a bare "cannot execute CREATE DATABASE in a read-only transaction", and no BackupInfo, though the backup
    /// was in the catalog. It now comes out with a non-terminating error saying to verify on a writable server, which
    /// then passes.
    /// </summary>
    [Fact]
    public async Task A_backup_from_a_read_only_server_is_kept_and_its_verification_points_to_a_writable_one()
    {
        var reader = "dbm_standby_" + Guid.NewGuid().ToString("N")[..8];
        var target = await SeededAsync();
        Run(server.Admin, $"CREATE ROLE {reader} LOGIN SUPERUSER PASSWORD 'ro-pw'; ALTER ROLE {reader} SET default_transaction_read_only = on");
        var readOnly = target.WithCredential(reader, "ro-pw");

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = readOnly, Path = Repository, VerifyMode = true }.Invoke(host, CancellationToken.None);
        AssertKeptAndVerifiableOnAWritableServer(host, target);
    }

    [Fact]
    public async Task A_role_that_may_create_databases_but_does_not_own_the_target_is_refused_before_the_load()
    {
        // The swap renames the target away, which only its owner may: the restore failed there, after the whole load,
        // with a bare "must be owner of database".
        var app = "dbm_notowner_" + Guid.NewGuid().ToString("N")[..8];
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {app} LOGIN CREATEDB PASSWORD 'app-pw'");
        Run(target, $"GRANT CREATE ON SCHEMA public TO {app}");
        var asApp = target.WithCredential(app, "app-pw");
        Run(asApp, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2)");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = asApp, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        Run(asApp, "DELETE FROM orders");
        var restore = Assert.Throws<DbMigrationException>(() => new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(Folder), CancellationToken.None));
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (restore.ErrorId, restore.Kind));
        Assert.Contains($"does not own database '{target.Database}'", restore.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", restore.Message, StringComparison.Ordinal);
        Assert.Equal("0", One(asApp, "SELECT COUNT(*) FROM orders"));
        // No new database was left behind either.
        var stem = target.Database!;
        Assert.Equal("0", One(server.Admin, $"SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'dbm\\_restore\\_%' AND position('{stem[..Math.Min(40, stem.Length)]}' in datname) > 0"));
    }

    [Fact]
    public async Task A_restore_by_a_superuser_keeps_the_owners_grants_and_database_owner_the_application_needs()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string app = "dbm_app_" + suffix, reader = "dbm_reader_" + suffix;
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; CREATE ROLE {reader}; ALTER DATABASE \"{target.Database}\" OWNER TO {app}");
        var asApp = target.WithCredential(app, "app-pw");
        Run(asApp, $"CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, 'a'); GRANT SELECT ON orders TO {reader}");

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Run(asApp, "DELETE FROM orders");
        var restoreHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restoreHost, CancellationToken.None);

        Assert.Empty(restoreHost.Warnings);
        Assert.Equal(app, One(target, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"));
        Assert.Equal(app, One(target, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"));
        Assert.Equal("True", One(target, $"SELECT has_table_privilege('{reader}', 'orders', 'SELECT')"));
        Run(asApp, "INSERT INTO orders VALUES (2, 'written by the application after the restore')");
        Assert.Equal("2", One(target, "SELECT COUNT(*) FROM orders"));
    }

    [Fact]
    public async Task A_restore_brings_back_the_databases_own_settings_grants_and_comment()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string app = "dbm_app_" + suffix, gone = "dbm_gone_" + suffix, outsider = "dbm_outsider_" + suffix;
        var target = await server.CreateDatabaseAsync();
        var db = target.Database;
        Run(server.Admin, $"""
            CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; CREATE ROLE {gone}; CREATE ROLE {outsider} LOGIN PASSWORD 'out-pw';
            ALTER DATABASE "{db}" SET search_path TO app_schema, public;
            ALTER DATABASE "{db}" CONNECTION LIMIT 40;
            ALTER ROLE {app} IN DATABASE "{db}" SET statement_timeout = '7s';
            REVOKE CONNECT, TEMPORARY ON DATABASE "{db}" FROM PUBLIC;
            GRANT CONNECT ON DATABASE "{db}" TO {app};
            GRANT CONNECT ON DATABASE "{db}" TO {gone};
            COMMENT ON DATABASE "{db}" IS 'orders of ''shop''';
            """);
        Run(target, $"CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1); GRANT SELECT ON orders TO {app}");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        // The change being rolled back undid them all, and one role the backup names is gone.
        Run(server.Admin, $"""
            ALTER DATABASE "{db}" RESET search_path;
            ALTER DATABASE "{db}" CONNECTION LIMIT -1;
            ALTER ROLE {app} IN DATABASE "{db}" RESET statement_timeout;
            GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO PUBLIC;
            REVOKE CONNECT ON DATABASE "{db}" FROM {gone};
            DROP ROLE {gone};
            COMMENT ON DATABASE "{db}" IS NULL;
            """);
        var restoreHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restoreHost, CancellationToken.None);

        var warning = Assert.Single(restoreHost.Warnings);
        Assert.Contains("1 of the backed-up database's settings were not restored", warning, StringComparison.Ordinal);
        Assert.Contains($"GRANT CONNECT ON DATABASE \"{db}\" TO {gone}", warning, StringComparison.Ordinal);
        Assert.Equal("40", One(target, "SELECT datconnlimit FROM pg_database WHERE datname = current_database()"));
        Assert.Equal("orders of 'shop'", One(target, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"));
        Assert.Equal("False", One(target, $"SELECT has_database_privilege('{outsider}', current_database(), 'CONNECT')"));
        Assert.Equal("True", One(target, $"SELECT has_database_privilege('{app}', current_database(), 'CONNECT')"));

        // The application's sessions get the database's search_path and their own role's timeout again.
        var asApp = target.WithCredential(app, "app-pw");
        Assert.Equal("app_schema, public", One(asApp, "SHOW search_path"));
        Assert.Equal("7s", One(asApp, "SHOW statement_timeout"));
        Assert.Equal("1", One(asApp, "SELECT COUNT(*) FROM public.orders"));
        var refused = Assert.ThrowsAny<Exception>(() => One(target.WithCredential(outsider, "out-pw"), "SELECT 1"));
        Assert.Contains($"permission denied for database \"{db}\"", refused.Message, StringComparison.Ordinal);

        // Restored under another name, the settings follow the copy, renamed; the original keeps its own.
        var other = target.WithDatabase(db + " copy");
        var copyHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = other, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(copyHost, CancellationToken.None);
        Assert.Equal("orders of 'shop'", One(other, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"));
        Assert.Equal("40", One(other, "SELECT datconnlimit FROM pg_database WHERE datname = current_database()"));
        Assert.Equal("app_schema, public", One(other.WithCredential(app, "app-pw"), "SHOW search_path"));
        Assert.Equal("orders of 'shop'", One(target, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"));
        Run(server.Admin, $"DROP DATABASE \"{other.Database}\" WITH (FORCE)");
    }

    [Fact]
    public async Task A_dropped_database_comes_back_owned_by_its_owner()
    {
        var app = "dbm_app_" + Guid.NewGuid().ToString("N")[..8];
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; ALTER DATABASE \"{target.Database}\" OWNER TO {app}");
        var asApp = target.WithCredential(app, "app-pw");
        Run(asApp, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1)");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        DatabaseProviders.For(target).ReleasePooledConnections(target);
        DatabaseProviders.For(asApp).ReleasePooledConnections(asApp);
        Run(server.Admin, $"DROP DATABASE \"{target.Database}\" WITH (FORCE)");

        var restoreHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(restoreHost, CancellationToken.None);

        Assert.Contains(restoreHost.Warnings, w => w.Contains("does not exist", StringComparison.Ordinal));
        Assert.DoesNotContain(restoreHost.Warnings, w => w.Contains("not restored", StringComparison.Ordinal));
        Assert.Equal(app, One(target, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"));
        Assert.Equal(app, One(target, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"));

        // As the database's owner again, the application may create tables in public (owned by pg_database_owner).
        Run(asApp, "CREATE TABLE added_after_the_restore (id int)");
        Assert.Equal("1", One(asApp, "SELECT COUNT(*) FROM orders"));
    }

    [Fact]
    public async Task A_restore_onto_a_server_without_the_backups_roles_says_what_it_does_not_carry_over()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string owner = "dbm_gone_owner_" + suffix, reader = "dbm_gone_reader_" + suffix;
        var target = await server.CreateDatabaseAsync();
        Run(server.Admin, $"CREATE ROLE {owner}; CREATE ROLE {reader}");
        Run(target, $"CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1); ALTER TABLE orders OWNER TO {owner}; GRANT SELECT ON orders TO {reader}");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        // The roles are gone, as on another server.
        Run(target, "DROP TABLE orders");
        Run(server.Admin, $"DROP ROLE {owner}; DROP ROLE {reader}");
        var restoreHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restoreHost, CancellationToken.None);

        Assert.Contains(restoreHost.Warnings, w => w.Contains(owner, StringComparison.Ordinal) && w.Contains("not every owner exists", StringComparison.Ordinal));
        Assert.Contains(restoreHost.Warnings, w => w.Contains(reader, StringComparison.Ordinal) && w.Contains("GRANTs were not restored", StringComparison.Ordinal));
        Assert.Equal("postgres", One(target, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"));
        Assert.Equal("1", One(target, "SELECT COUNT(*) FROM orders"));
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbBackupTests(MariaDbServer server) : ServerBackupTests(server)
{
    protected override string CountDatabasesLike(string prefix) => $"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{prefix}%'";

    private static string Defaults(DatabaseTarget target)
    {
        var row = Query(target, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()").Single();
        return $"{row[0]} {row[1]}";
    }

    [Fact]
    public async Task A_user_that_may_not_read_every_object_gets_a_backup_error_saying_what_a_backup_needs_from_either_dump()
    {
        // SELECT alone: mariadb-dump is refused SHOW VIEW on the view, the built-in dump the same.
        var target = await server.CreateDatabaseAsync();
        var user = "dbm_sel_" + Guid.NewGuid().ToString("N")[..8];
        Query(target, "CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (1); CREATE VIEW recent AS SELECT id FROM orders");
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'sel-pass'; GRANT SELECT ON `{target.Database}`.* TO '{user}'@'%';");
        foreach (var method in new[] { BackupDumpMethod.EngineTool, BackupDumpMethod.BuiltIn })
        {
            var error = Assert.Throws<DbMigrationException>(() => new BackupDatabaseCommand { Database = target.WithCredential(user, "sel-pass"), Path = Repository, DumpMethod = method }.Invoke(new RecordingHost(Folder), CancellationToken.None));
            Assert.Equal((ErrorIds.BackupFailed, ErrorKind.PermissionDenied), (error.ErrorId, error.Kind));
            Assert.Contains("A backup reads everything", error.Message, StringComparison.Ordinal);
            Assert.Contains("SHOW VIEW command denied", error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(new BackupRepository(Repository).List());
    }

    [Fact]
    public async Task The_dump_and_load_tools_reach_the_server_the_way_the_target_says_through_its_socket_or_over_TLS()
    {
        var seeded = await SeededAsync();
        // root through the server's socket, as Debian's root logs in (unix_socket).
        var viaSocket = DatabaseTarget.Parse($"mysql://root@localhost/{seeded.Database}?socket={Uri.EscapeDataString(server.Socket!)}");
        // A user the server lets in over TLS only.
        var user = "tls_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-tls-only' REQUIRE SSL; GRANT ALL ON *.* TO '{user}'@'%';");
        var overTls = DatabaseTarget.Parse($"mysql://{user}:pw-tls-only@127.0.0.1:{server.Port}/{seeded.Database}?sslmode=verifyca&sslca={Uri.EscapeDataString(server.CertificateAuthorityFile!)}");

        foreach (var target in new[] { viaSocket, overTls })
        {
            var host = new RecordingHost(Folder);
            new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(host, CancellationToken.None);
            Assert.Empty(host.Errors);
            var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
            Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

            var restore = new RecordingHost(Folder);
            new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(restore, CancellationToken.None);
            Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);
        }
    }

    /// <summary>
    /// A replica set read_only refused the backup itself: the write lock that holds the tables still while the two
    /// snapshots start is refused there (error 1290), as is the scratch database a verification creates. The backup
    /// now goes ahead without the hold, with the warning given when the lock is not allowed, and the verification
    /// comes out as a non-terminating error saying to verify on a writable server, which then passes.
    /// </summary>
    [Fact]
    public async Task A_backup_from_a_read_only_replica_is_kept_and_its_verification_points_to_a_writable_server()
    {
        var target = await SeededAsync();
        var user = "dbm_replica_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pw'; GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, CREATE, DROP, INSERT, ALTER, INDEX ON *.* TO '{user}'@'%';");
        var readOnly = target.WithCredential(user, "ro-pw");
        var host = new RecordingHost(Folder);
        try
        {
            await server.RunSqlAsync("SET GLOBAL read_only = ON;");
            new BackupDatabaseCommand { Database = readOnly, Path = Repository, VerifyMode = true }.Invoke(host, CancellationToken.None);
        }
        finally
        {
            await server.RunSqlAsync("SET GLOBAL read_only = OFF;");
        }

        Assert.Contains(host.Warnings, w => w.Contains("could not be held still", StringComparison.Ordinal) && w.Contains("read-only", StringComparison.Ordinal));
        AssertKeptAndVerifiableOnAWritableServer(host, target);
    }

    /// <summary>
    /// mariadb-dump writes a FLOAT as six significant digits of text: 23.456789 came back as 23.4568 and 1234567 as
    /// 1234570, and the verification, which hashed that same text, passed. FLOATs are now hashed exactly, the default
    /// dump is the built-in one where there are FLOAT columns (it writes them exactly), and a mariadb-dump backup,
    /// asked for by name, fails verification instead of passing.
    /// </summary>
    [Fact]
    public async Task FLOAT_values_restore_exactly_and_a_dump_that_rounds_them_fails_verification()
    {
        var target = await server.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE readings (id INT PRIMARY KEY, celsius FLOAT, scaled FLOAT(7,4), tally FLOAT UNSIGNED);
            INSERT INTO readings VALUES (1, 23.456789, 1.2345, 1234567), (2, 1.17549435e-38, -999.9999, 16777216), (3, NULL, NULL, NULL);
            """);
        string Exact() => string.Join("|", Query(target, "SELECT id, CAST(celsius AS DOUBLE), CAST(scaled AS DOUBLE), CAST(tally AS DOUBLE) FROM readings ORDER BY id").Select(r => string.Join(",", r.Values)));
        var before = Exact();
        Assert.Contains("23.456789016723633", before, StringComparison.Ordinal);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal((MySqlLogicalDump.Format, VerificationStatus.Passed, ContentHasher.CurrentVersion), (backup.Format, backup.Verification.Status, backup.ContentHashVersion));
        Assert.Contains(host.Verbose, m => m.Contains("FLOAT columns, which mariadb-dump writes with six significant digits", StringComparison.Ordinal));
        Assert.Equal(ContentHasher.CurrentVersion, new BackupRepository(Repository).Get(backup.Id).ContentHashVersion);

        Query(target, "UPDATE readings SET celsius = 0, scaled = 0, tally = 0");
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(new RecordingHost(Folder), CancellationToken.None);
        Assert.Equal(before, Exact());

        var tool = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(tool, CancellationToken.None);
        var rounded = Assert.Single(tool.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Failed, new BackupRepository(Repository).Get(rounded.Id).Verification.Status);
        var failed = Assert.Single(tool.Errors);
        Assert.Equal(ErrorIds.BackupVerificationFailed, failed.ErrorId);
        Assert.Contains("readings: expected 3 row(s)", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_tools_get_the_targets_socket_and_TLS_settings_in_their_own_dialect()
    {
        var socket = MySqlBackupStrategy.ConnectionArguments("/usr/bin/mariadb-dump", DatabaseTarget.Parse("mysql://root@localhost/app?socket=%2Frun%2Fmysqld%2Fmysqld.sock"));
        Assert.Equal(["--no-defaults", "--protocol=SOCKET", "--socket=/run/mysqld/mysqld.sock", "--user=root"], socket);

        var tls = DatabaseTarget.Parse("mysql://deploy@db1:3307/app?sslmode=verify-full&sslca=%2Fetc%2Fca.pem");
        Assert.Equal(["--no-defaults", "--protocol=TCP", "--host=db1", "--port=3307", "--ssl", "--ssl-verify-server-cert", "--ssl-ca=/etc/ca.pem", "--user=deploy"], MySqlBackupStrategy.ConnectionArguments("/opt/mariadb/bin/mariadb-dump", tls));
        Assert.Equal(["--no-defaults", "--protocol=TCP", "--host=db1", "--port=3307", "--ssl-mode=VERIFY_IDENTITY", "--ssl-ca=/etc/ca.pem", "--user=deploy"], MySqlBackupStrategy.ConnectionArguments("/opt/mysql/bin/mysqldump", tls));
        Assert.Contains("--skip-ssl", MySqlBackupStrategy.ConnectionArguments("mariadb", DatabaseTarget.Parse("mysql://deploy@db1/app?sslmode=none")));
    }

    [Theory]
    [InlineData(BackupDumpMethod.EngineTool)]
    [InlineData(BackupDumpMethod.BuiltIn)]
    public async Task A_restore_brings_back_the_databases_default_character_set_and_collation(BackupDumpMethod method)
    {
        var target = await SeededAsync();
        await server.RunSqlAsync($"ALTER DATABASE `{target.Database}` CHARACTER SET latin1 COLLATE latin1_general_cs;");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = method }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        // The change being rolled back set other defaults: the restore brings the backed-up ones back.
        await server.RunSqlAsync($"ALTER DATABASE `{target.Database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;");
        var restoreHost = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restoreHost, CancellationToken.None);
        Assert.Empty(restoreHost.Warnings);
        Assert.Equal("latin1 latin1_general_cs", Defaults(target));

        // A dropped database comes back with them, not with the server's.
        DatabaseProviders.For(target).ReleasePooledConnections(target);
        await server.RunSqlAsync($"DROP DATABASE `{target.Database}`;");
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(new RecordingHost(Folder), CancellationToken.None);
        Assert.Equal("latin1 latin1_general_cs", Defaults(target));
        Assert.Equal("3", Convert.ToString(Query(target, "SELECT COUNT(*) FROM child").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_restore_brings_back_the_backups_sequences_at_their_values_and_tables_drawing_on_them_still_insert()
    {
        // The swap moved base tables only: a sequence in the backup was dropped with the scratch database.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE SEQUENCE order_numbers START WITH 100 NOCACHE;
            CREATE TABLE orders (id INT PRIMARY KEY DEFAULT NEXTVAL(order_numbers), item VARCHAR(20) NOT NULL);
            INSERT INTO orders (item) VALUES ('a'), ('b');
            """);
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        // What the change being rolled back did: rows drew numbers, the sequence moved on, another one appeared.
        Query(target, "INSERT INTO orders (item) VALUES ('c'), ('d'); CREATE SEQUENCE scratch_numbers");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);

        Assert.Equal("order_numbers", string.Join(",", Query(target, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE' ORDER BY 1").Select(r => r[0])));
        Query(target, "INSERT INTO orders (item) VALUES ('e')");
        Assert.Equal("100:a|101:b|102:e", string.Join("|", Query(target, "SELECT id, item FROM orders ORDER BY id").Select(r => $"{r[0]}:{r[1]}")));
        // The default names the sequence in this database, not the scratch database it was restored into.
        string Default() => Convert.ToString(Query(target, "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'id'").Single()[0], CultureInfo.InvariantCulture)!;
        Assert.Equal($"nextval(`{target.Database}`.`order_numbers`)", Default());

        // A change that dropped the sequence (MariaDB qualifies the default with the backed-up database's name, so
        // loading the copy needed that sequence to exist), and a database dropped altogether.
        Query(target, "DROP TABLE orders; DROP SEQUENCE order_numbers");
        var again = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(again, CancellationToken.None);
        Assert.Empty(again.Errors);
        Assert.Equal($"nextval(`{target.Database}`.`order_numbers`)", Default());
        DatabaseProviders.For(target).ReleasePooledConnections(target);
        await server.RunSqlAsync($"DROP DATABASE `{target.Database}`;");
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup }.Invoke(new RecordingHost(Folder), CancellationToken.None);
        Query(target, "INSERT INTO orders (item) VALUES ('f')");
        Assert.Equal("100:a|101:b|102:f", string.Join("|", Query(target, "SELECT id, item FROM orders ORDER BY id").Select(r => $"{r[0]}:{r[1]}")));
    }

    [Fact]
    public async Task A_system_versioned_tables_history_is_backed_up_and_restored_with_its_current_rows()
    {
        // mariadb-dump writes current rows only unless told otherwise: the restore lost every earlier version.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE price (id INT PRIMARY KEY, amount INT NOT NULL) WITH SYSTEM VERSIONING");
        Query(target, "INSERT INTO price VALUES (1, 10), (2, 20)");
        Query(target, "UPDATE price SET amount = 11 WHERE id = 1");
        Query(target, "DELETE FROM price WHERE id = 2");
        const string history = "SELECT id, amount, CAST(row_start AS CHAR), CAST(row_end AS CHAR) FROM price FOR SYSTEM_TIME ALL ORDER BY row_start, id";
        string History() => string.Join("|", Query(target, history).Select(r => string.Join(",", r.Values)));
        var before = History();
        Assert.Equal(3, before.Split('|').Length);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Empty(host.Warnings);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        Query(target, "UPDATE price SET amount = 12 WHERE id = 1");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.Equal(before, History());
    }

    [Fact]
    public async Task A_transaction_precise_history_that_mariadb_dump_cannot_carry_is_named_in_a_warning()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE ledger (id INT PRIMARY KEY, amount INT NOT NULL,
                trx_start BIGINT UNSIGNED GENERATED ALWAYS AS ROW START INVISIBLE, trx_end BIGINT UNSIGNED GENERATED ALWAYS AS ROW END INVISIBLE,
                PERIOD FOR SYSTEM_TIME (trx_start, trx_end)) ENGINE = InnoDB WITH SYSTEM VERSIONING;
            CREATE TABLE price (id INT PRIMARY KEY, amount INT NOT NULL) WITH SYSTEM VERSIONING;
            INSERT INTO ledger VALUES (1, 5); INSERT INTO price VALUES (1, 10);
            """);
        Query(target, "UPDATE ledger SET amount = 6");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var warning = Assert.Single(host.Warnings);
        Assert.Contains("ledger", warning, StringComparison.Ordinal);
        Assert.Contains("price", warning, StringComparison.Ordinal);
        Assert.Contains("current rows only", warning, StringComparison.Ordinal);
        Assert.Equal(VerificationStatus.Passed, Assert.Single(host.ObjectsOf<BackupInfo>()).Verification.Status);
    }

    [Theory]
    [InlineData(BackupDumpMethod.EngineTool)]
    [InlineData(BackupDumpMethod.BuiltIn)]
    public async Task Views_routines_and_triggers_come_back_with_the_character_set_and_collation_they_were_created_under(BackupDumpMethod method)
    {
        // The restore recreated every one under its own utf8mb4 session, so SHOW CREATE and the catalog differed.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL);
            CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40));
            SET SESSION character_set_client = utf8mb3, collation_connection = utf8mb3_general_ci;
            CREATE VIEW named AS SELECT id, CONCAT('item ', name) AS label FROM item;
            CREATE FUNCTION label_of(n VARCHAR(20)) RETURNS VARCHAR(40) DETERMINISTIC RETURN CONCAT('é ', n);
            SET SESSION character_set_client = latin1, collation_connection = latin1_swedish_ci;
            CREATE TRIGGER item_added AFTER INSERT ON item FOR EACH ROW INSERT INTO audit (note) VALUES (CONCAT('added ', NEW.name));
            CREATE PROCEDURE count_items() SELECT COUNT(*) FROM item;
            """);
        const string catalog = """
            SELECT CONCAT('view ', TABLE_NAME, ' ', CHARACTER_SET_CLIENT, ' ', COLLATION_CONNECTION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
            UNION ALL SELECT CONCAT('routine ', ROUTINE_NAME, ' ', CHARACTER_SET_CLIENT, ' ', COLLATION_CONNECTION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
            UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME, ' ', CHARACTER_SET_CLIENT, ' ', COLLATION_CONNECTION) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
            ORDER BY 1
            """;
        string Catalog() => string.Join("|", Query(target, catalog).Select(r => r[0]));
        var before = Catalog();
        Assert.Equal("routine count_items latin1 latin1_swedish_ci|routine label_of utf8mb3 utf8mb3_general_ci|trigger item_added latin1 latin1_swedish_ci|view named utf8mb3 utf8mb3_general_ci", before);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = method }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.Equal(before, Catalog());
        // The non-ASCII literal reads as it was written.
        Assert.Equal("é x", Query(target, "SELECT label_of('x')").Single()[0]);
    }

    [Fact]
    public void An_objects_own_character_set_is_named_only_where_its_UTF_8_text_reads_the_same_in_it()
    {
        Assert.Equal("SET SESSION character_set_client = latin1, collation_connection = latin1_swedish_ci", MySqlLogicalDump.ClientSettingFor("latin1", "latin1_swedish_ci", "SELECT 'plain'"));
        Assert.Null(MySqlLogicalDump.ClientSettingFor("latin1", "latin1_swedish_ci", "SELECT 'café'"));
        Assert.NotNull(MySqlLogicalDump.ClientSettingFor("utf8mb3", "utf8mb3_general_ci", "SELECT 'café'"));
        Assert.Null(MySqlLogicalDump.ClientSettingFor("utf8mb3", "utf8mb3_general_ci", "SELECT '🦀'"));
        Assert.NotNull(MySqlLogicalDump.ClientSettingFor("utf8mb4", "utf8mb4_unicode_ci", "SELECT '🦀'"));
        Assert.Null(MySqlLogicalDump.ClientSettingFor("latin1; DROP", "latin1_swedish_ci", "SELECT 1"));
        Assert.Null(MySqlLogicalDump.ClientSettingFor(null, null, "SELECT 1"));
    }

    [Fact]
    public async Task A_restore_brings_back_the_backups_events_as_they_were_and_removes_events_created_since()
    {
        // Events were left out of the swap: the backup's were dropped with the restored copy, and the current ones stayed.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE audit (id INT PRIMARY KEY, at DATETIME NOT NULL);
            CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'nightly' DO DELETE FROM audit WHERE at < NOW() - INTERVAL 30 DAY;
            CREATE EVENT rotate_audit ON SCHEDULE EVERY 1 WEEK STARTS '2030-01-06 04:00:00' DISABLE DO DELETE FROM audit WHERE id < 0;
            """);
        const string events = "SELECT EVENT_NAME, INTERVAL_VALUE, INTERVAL_FIELD, CAST(STARTS AS CHAR), STATUS, ON_COMPLETION, EVENT_COMMENT, TIME_ZONE, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME";
        string Events() => string.Join("\n", Query(target, events).Select(r => string.Join("|", r.Values)));
        var before = Events();
        Assert.Contains("purge_audit|1|DAY|2030-01-01 03:00:00|DISABLED|PRESERVE|nightly", before, StringComparison.Ordinal);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        Query(target, "DROP EVENT purge_audit; ALTER EVENT rotate_audit ON SCHEDULE EVERY 2 HOUR; CREATE EVENT added_since ON SCHEDULE EVERY 1 HOUR DISABLE DO DELETE FROM audit WHERE id < 0");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.Equal(before, Events());
    }

    [Theory]
    [InlineData(BackupDumpMethod.EngineTool)]
    [InlineData(BackupDumpMethod.BuiltIn)]
    public async Task A_legacy_databases_zero_and_partial_dates_are_backed_up_verified_and_restored_as_they_are(BackupDumpMethod method)
    {
        // Allowed by MariaDB's default sql_mode. Reading them failed every backup of such a database.
        var target = await Engine.CreateDatabaseAsync();
        await server.RunSqlAsync($"""
            SET SESSION sql_mode = '';
            CREATE TABLE `{target.Database}`.legacy (id INT PRIMARY KEY, at DATETIME NULL, day DATE NULL);
            INSERT INTO `{target.Database}`.legacy VALUES (1, '0000-00-00 00:00:00', '2024-05-00'), (2, '2024-00-01 10:00:00', '0000-00-00'), (3, '2024-07-01 12:00:00', '2024-07-01');
            """);
        string Rows() => string.Join("|", Query(target, "SELECT id, CAST(at AS CHAR), CAST(day AS CHAR) FROM legacy ORDER BY id").Select(r => string.Join(",", r.Values)));
        var before = Rows();
        Assert.Equal("1,0000-00-00 00:00:00,2024-05-00|2,2024-00-01 10:00:00,0000-00-00|3,2024-07-01 12:00:00,2024-07-01", before);

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = method, VerifyMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);

        // A change to roll back, then the restore, verified in full: the dates come back as they were, not as NULL.
        await server.RunSqlAsync($"UPDATE `{target.Database}`.legacy SET at = NULL, day = NULL");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true, ReverifyMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.True(Assert.Single(restore.ObjectsOf<RestoreResult>()).RowCountsMatch);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task A_user_with_rights_on_its_own_database_only_gets_clear_errors_and_the_backups_verdict_is_kept()
    {
        // An application user: everything on its database, nothing on the server (no CREATE elsewhere, no PROCESS).
        var target = await SeededAsync();
        var user = "dbm_appuser_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT ALL PRIVILEGES ON `{target.Database}`.* TO '{user}'@'%';");
        var asApp = target.WithCredential(user, "pw");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = asApp, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        var verify = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = asApp }.Invoke(verify, CancellationToken.None);
        Assert.Equal(VerificationStatus.NotVerified, Assert.Single(verify.ObjectsOf<BackupVerification>()).Status);
        var error = Assert.Single(verify.Errors);
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (error.ErrorId, error.Kind));
        Assert.Contains("-Server", error.Message, StringComparison.Ordinal);
        Assert.Equal(VerificationStatus.NotVerified, BackupManifest.Read(backup.Path).Verification.Status);

        // The restore loads into a new database, which this user may not create: known from the grants, it refuses
        // before anything is done, -Force or not, naming the grant.
        string Rows() => string.Join("|", Query(target, "SELECT id, note FROM child ORDER BY id").Select(r => string.Join(",", r.Values)));
        Query(target, "DELETE FROM child WHERE id = 10");
        var before = Rows();
        foreach (var force in new[] { false, true })
        {
            var refused = Assert.Throws<DbMigrationException>(() => new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = force }.Invoke(new RecordingHost(Folder), CancellationToken.None));
            Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (refused.ErrorId, refused.Kind));
            Assert.Contains("may not create databases such as dbm_restore_", refused.Message, StringComparison.Ordinal);
            Assert.Contains("GRANT ALL ON `dbm\\_%`.*", refused.Message, StringComparison.Ordinal);
            Assert.Equal(before, Rows());
        }

        // Granted that, it cannot see other users' sessions without PROCESS: it says so instead of restoring blind,
        // and -Force restores anyway, with a warning.
        await server.RunSqlAsync($"GRANT ALL ON `dbm\\_%`.* TO '{user}'@'%';");
        var blind = Assert.Throws<DbMigrationException>(() => new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(Folder), CancellationToken.None));
        Assert.Equal((ErrorIds.RestoreFailed, ErrorKind.PermissionDenied), (blind.ErrorId, blind.Kind));
        Assert.Contains("PROCESS", blind.Message, StringComparison.Ordinal);
        Assert.Equal(before, Rows());
        var forced = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, SkipSafetyBackupMode = true, ForceMode = true }.Invoke(forced, CancellationToken.None);
        Assert.Contains(forced.Warnings, w => w.Contains("without knowing who else is connected", StringComparison.Ordinal));
        Assert.True(Assert.Single(forced.ObjectsOf<RestoreResult>()).RowCountsMatch);
        Assert.NotEqual(before, Rows());

        // With a server connection that may, the same backup verifies.
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(VerificationStatus.Passed, BackupManifest.Read(backup.Path).Verification.Status);
    }

    /// <summary>
    /// mariadb-dump's own packet limit is 24 MiB unless told otherwise: a database with a 30 MiB BLOB, which the
    /// server (allowing 64 MiB) stores and serves, could not be backed up ("Lost connection to server during query").
    /// </summary>
    [Fact]
    public async Task A_row_larger_than_the_dump_clients_default_packet_backs_up_verifies_and_restores()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE files (id INT PRIMARY KEY, data LONGBLOB NOT NULL); INSERT INTO files VALUES (1, REPEAT('x', 30 * 1024 * 1024)), (2, 'small')");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = BackupDumpMethod.EngineTool, VerifyMode = true }.Invoke(host, CancellationToken.None);

        Assert.Empty(host.Errors);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal(VerificationStatus.Passed, backup.Verification.Status);
        Query(target, "DELETE FROM files WHERE id = 1");
        var restore = new RecordingHost(Folder);
        new RestoreMigrationBackupCommand { Database = target, InputObject = backup, SkipSafetyBackupMode = true }.Invoke(restore, CancellationToken.None);
        Assert.Empty(restore.Errors);
        Assert.Equal(30L * 1024 * 1024, System.Convert.ToInt64(Query(target, "SELECT LENGTH(data) FROM files WHERE id = 1").Single()[0], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Both dumps write binary values in hex, so one row with a BLOB over half the server's max_allowed_packet becomes
    /// a statement the server refuses by dropping the connection: the verification said only that the connection
    /// was lost (and, through the mariadb client, held the whole statement). It now names the limit and the setting.
    /// </summary>
    [Theory]
    [InlineData(BackupDumpMethod.BuiltIn)]
    [InlineData(BackupDumpMethod.EngineTool)]
    public async Task A_row_too_large_for_max_allowed_packet_in_the_dump_is_named_with_the_setting_to_raise(BackupDumpMethod method)
    {
        var target = await Engine.CreateDatabaseAsync();
        // 33 MiB of bytes is 66 MiB of hex; the test server allows 64 MiB.
        Query(target, "CREATE TABLE files (id INT PRIMARY KEY, data LONGBLOB NOT NULL); INSERT INTO files VALUES (1, REPEAT('x', 33 * 1024 * 1024)), (2, 'small')");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository, DumpMethod = method }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());

        var verify = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup }.Invoke(verify, CancellationToken.None);
        var verdict = Assert.Single(verify.ObjectsOf<BackupVerification>());
        Assert.Equal(VerificationStatus.Failed, verdict.Status);
        Assert.Contains("the server's max_allowed_packet of 64 MiB", verdict.Message, StringComparison.Ordinal);
        Assert.Contains("SET GLOBAL max_allowed_packet", verdict.Message, StringComparison.Ordinal);
        // mariadb echoes the 66 MiB statement it failed on; the error keeps a readable part of it.
        Assert.True(verdict.Message.Length < 60_000, $"the message is {verdict.Message.Length:N0} characters");
    }

    /// <summary>
    /// A user granted what the restore's error asks for (its own database, and `dbm\_%`.* for the scratch copies)
    /// but not the rest of the server: the scratch copy was dropped over a connection to the `mysql` database, which
    /// such a user may not open, so every verification and every failed restore left a dbm_restore_… database behind.
    /// </summary>
    [Fact]
    public async Task A_user_granted_the_scratch_databases_only_leaves_none_behind_after_a_verification_or_a_failed_restore()
    {
        var target = await SeededAsync();
        var user = "dbm_scratch_" + Guid.NewGuid().ToString("N")[..8];
        // No EVENT, SHOW VIEW or LOCK TABLES on its database: its own safety backup fails after the copy is loaded.
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `{target.Database}`.* TO '{user}'@'%'; GRANT ALL PRIVILEGES ON `dbm\\_%`.* TO '{user}'@'%';");
        var asApp = target.WithCredential(user, "pw");
        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target, Path = Repository }.Invoke(host, CancellationToken.None);
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        var scratch = PostgreSqlBackupStrategy.ShortName("dbm_restore", target.Database!, backup.Id);
        long Left(string name) => System.Convert.ToInt64(Query(target, $"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'").Single()[0], System.Globalization.CultureInfo.InvariantCulture);

        var verify = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = asApp }.Invoke(verify, CancellationToken.None);
        Assert.Empty(verify.Errors);
        Assert.Equal(VerificationStatus.Passed, Assert.Single(verify.ObjectsOf<BackupVerification>()).Status);
        // Its name ends in a hash of a random id; the stem is this test's own database.
        var stem = PostgreSqlBackupStrategy.ShortName("dbm_verify", target.Database!, backup.Id)[..^8];
        Assert.DoesNotContain(Query(target, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA").Select(r => (string)r[0]!), n => n.StartsWith(stem, StringComparison.Ordinal));

        var forced = new RecordingHost(Folder);
        var failed = Assert.Throws<DbMigrationException>(() => new RestoreMigrationBackupCommand { Database = asApp, InputObject = backup, ForceMode = true }.Invoke(forced, CancellationToken.None));
        Assert.Equal(ErrorKind.PermissionDenied, failed.Kind);
        Assert.Equal(0, Left(scratch));
    }

    [Fact]
    public async Task Without_the_LOCK_TABLES_privilege_a_backup_says_its_snapshots_may_differ_and_still_verifies()
    {
        var target = await SeededAsync();
        var user = "dbm_nolock_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `{target.Database}`.* TO '{user}'@'%';");

        var host = new RecordingHost(Folder);
        new BackupDatabaseCommand { Database = target.WithCredential(user, "pw"), Path = Repository, Compress = BackupCompression.None }.Invoke(host, CancellationToken.None);

        Assert.Empty(host.Errors);
        Assert.Contains(host.Warnings, w => w.Contains("could not be held still", StringComparison.Ordinal));
        var backup = Assert.Single(host.ObjectsOf<BackupInfo>());
        Assert.Equal("mariadb-dump-sql", backup.Format);
        var verifyHost = new RecordingHost();
        new TestDatabaseBackupCommand { InputObject = backup, Server = target }.Invoke(verifyHost, CancellationToken.None);
        Assert.Equal(VerificationStatus.Passed, Assert.Single(verifyHost.ObjectsOf<BackupVerification>()).Status);
    }
}
