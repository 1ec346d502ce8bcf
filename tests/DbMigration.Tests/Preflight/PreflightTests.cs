using System.Net;
using System.Net.Sockets;
using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.Preflight;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;
using Microsoft.Data.Sqlite;

namespace DbMigration.Tests.Preflight;

internal static class PreflightRun
{
    public static List<PreflightCheck> Checks(DatabaseTarget target, string? backupPath = null, int connectTimeout = 15)
    {
        var host = new RecordingHost();
        new TestMigrationPreflightCommand { Database = target, BackupPath = backupPath, ConnectTimeout = connectTimeout }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var checks = host.ObjectsOf<PreflightCheck>().ToList();
        Assert.Equal(
            [PreflightCodes.Connectivity, PreflightCodes.Integrity, PreflightCodes.Sessions, PreflightCodes.SchemaPrivileges, PreflightCodes.DatabaseSize, PreflightCodes.BackupLocation, PreflightCodes.DiskSpace, PreflightCodes.LeftoverCopies],
            checks.Select(c => c.Code));
        return checks;
    }

    public static PreflightCheck Get(this List<PreflightCheck> checks, string code) => checks.Single(c => c.Code == code);

    public static string Describe(this IEnumerable<PreflightCheck> checks) => string.Join("\n", checks);
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SqlitePreflightTests : IDisposable
{
    private readonly SqliteEngine _engine = new();
    private readonly TempDirectory _backups = new();

    public void Dispose()
    {
        _engine.Dispose();
        _backups.Dispose();
    }

    private async Task<DatabaseTarget> EventsDatabaseAsync(int rows = 500)
    {
        var target = await _engine.CreateDatabaseAsync();
        await DbMigration.Bench.Data.EventsLoader.LoadSqliteAsync(target.FilePath!, new DbMigration.Bench.Data.EventsDataGenerator().Generate(rows));
        return target;
    }

    [Fact]
    public async Task A_healthy_database_passes_every_check_and_reports_size_and_row_counts()
    {
        var target = await EventsDatabaseAsync();
        var checks = PreflightRun.Checks(target, _backups.Path);

        Assert.True(checks.All(c => c.Status == PreflightStatus.Passed), checks.Describe());
        Assert.Contains("SQLite", checks.Get(PreflightCodes.Connectivity).Message, StringComparison.Ordinal);
        var size = checks.Get(PreflightCodes.DatabaseSize);
        Assert.True((long)size.Details["SizeBytes"]! > 0);
        var tables = Assert.IsAssignableFrom<IEnumerable<TableRowCount>>(size.Details["Tables"]);
        Assert.Equal(500, Assert.Single(tables, t => t.Table == "events").Rows);
        Assert.True((long)checks.Get(PreflightCodes.DiskSpace).Details["FreeBytes"]! > 0);
    }

    [Fact]
    public void A_missing_file_fails_connectivity_clearly_and_is_not_created()
    {
        var path = _backups.File("absent.db");
        var checks = PreflightRun.Checks(DatabaseTarget.Parse(path), _backups.Path);

        var connectivity = checks.Get(PreflightCodes.Connectivity);
        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.TargetFileNotFound, connectivity.ErrorId);
        Assert.Contains("does not exist", connectivity.Message, StringComparison.Ordinal);
        Assert.All(checks.Where(c => c.Code is PreflightCodes.Integrity or PreflightCodes.Sessions or PreflightCodes.SchemaPrivileges or PreflightCodes.DatabaseSize),
            c => Assert.Equal(PreflightStatus.Skipped, c.Status));
        Assert.Equal(PreflightStatus.Skipped, checks.Get(PreflightCodes.DiskSpace).Status);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_file_that_is_not_a_database_fails_connectivity()
    {
        var path = _backups.File("report.db");
        File.WriteAllBytes(path, Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray());
        var checks = PreflightRun.Checks(DatabaseTarget.Parse(path));

        var connectivity = checks.Get(PreflightCodes.Connectivity);
        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.TargetNotADatabase, connectivity.ErrorId);
        Assert.DoesNotContain("   at ", connectivity.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_read_only_file_fails_the_privilege_check()
    {
        var target = await EventsDatabaseAsync(10);
        File.SetUnixFileMode(target.FilePath!, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var checks = PreflightRun.Checks(target, _backups.Path);

        var privileges = checks.Get(PreflightCodes.SchemaPrivileges);
        Assert.Equal(PreflightStatus.Failed, privileges.Status);
        Assert.Equal(ErrorIds.TargetReadOnly, privileges.ErrorId);
        Assert.Contains("read-only", privileges.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_read_only_folder_fails_the_privilege_check()
    {
        var target = await EventsDatabaseAsync(10);
        var folder = Path.GetDirectoryName(target.FilePath)!;
        var mode = File.GetUnixFileMode(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            var checks = PreflightRun.Checks(target);
            var privileges = checks.Get(PreflightCodes.SchemaPrivileges);
            Assert.Equal(PreflightStatus.Failed, privileges.Status);
            Assert.Contains("folder", privileges.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.SetUnixFileMode(folder, mode);
        }
    }

    [Fact]
    public async Task A_read_only_backup_location_fails_the_location_check()
    {
        var target = await EventsDatabaseAsync(10);
        File.SetUnixFileMode(_backups.Path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var checks = PreflightRun.Checks(target, Path.Combine(_backups.Path, "nightly"));

        var location = checks.Get(PreflightCodes.BackupLocation);
        Assert.Equal(PreflightStatus.Failed, location.Status);
        Assert.Contains("read-only", location.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_backups.Path, "nightly")));
    }

    [Fact]
    public async Task A_backup_location_that_does_not_exist_yet_passes_when_its_parent_is_writable()
    {
        var target = await EventsDatabaseAsync(10);
        var location = PreflightRun.Checks(target, Path.Combine(_backups.Path, "a", "b")).Get(PreflightCodes.BackupLocation);

        Assert.Equal(PreflightStatus.Passed, location.Status);
        Assert.Contains("can be created", location.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_backups.Path, "a")));
    }

    [Fact]
    public async Task Another_writer_fails_the_sessions_check()
    {
        var target = await EventsDatabaseAsync(10);
        await using var writer = new SqliteConnection($"Data Source={target.FilePath};Pooling=False");
        await writer.OpenAsync();
        await using var transaction = writer.BeginTransaction(deferred: false);

        var sessions = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Failed, sessions.Status);
        Assert.Contains("write lock", sessions.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_leftover_rollback_journal_is_reported_before_sqlite_touches_it()
    {
        var target = await EventsDatabaseAsync(10);
        File.WriteAllBytes(target.FilePath + "-journal", new byte[1024]);

        var sessions = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Failed, sessions.Status);
        Assert.Contains("rollback journal", sessions.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quiet_returns_a_single_boolean()
    {
        var good = await EventsDatabaseAsync(10);
        var host = new RecordingHost();
        new TestMigrationPreflightCommand { Database = good, QuietMode = true }.Invoke(host, CancellationToken.None);
        Assert.True(Assert.IsType<bool>(Assert.Single(host.Objects)));

        var bad = new RecordingHost();
        new TestMigrationPreflightCommand { Database = DatabaseTarget.Parse(_backups.File("nope.db")), QuietMode = true }.Invoke(bad, CancellationToken.None);
        Assert.False(Assert.IsType<bool>(Assert.Single(bad.Objects)));
    }

    [Fact]
    public void A_target_that_cannot_be_used_is_a_failed_check_and_the_backup_location_is_still_checked()
    {
        // A raw connection string without -Engine, and a path PowerShell refuses (another provider, a missing drive).
        var raw = PreflightRun.Checks(DatabaseTarget.Parse($"Data Source={_backups.File("x.db")}"), _backups.Path);
        Assert.Equal(ErrorIds.TargetEngineRequired, raw.Get(PreflightCodes.Connectivity).ErrorId);
        Assert.Equal(PreflightStatus.Failed, raw.Get(PreflightCodes.Connectivity).Status);
        Assert.Equal(PreflightStatus.Skipped, raw.Get(PreflightCodes.Integrity).Status);
        Assert.Equal(PreflightStatus.Passed, raw.Get(PreflightCodes.BackupLocation).Status);

        var host = new RecordingHost
        {
            Resolver = path => path.StartsWith("Env:", StringComparison.Ordinal)
                ? throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument, "on the Environment provider")
                : Path.GetFullPath(path),
        };
        new TestMigrationPreflightCommand { Database = DatabaseTarget.Parse("Env:/PATH"), QuietMode = true }.Invoke(host, CancellationToken.None);
        Assert.False(Assert.IsType<bool>(Assert.Single(host.Objects)));
        Assert.Empty(host.Errors);
    }

    [Fact]
    public void Too_little_free_space_fails_and_a_tight_margin_warns()
    {
        var free = new DriveInfo(_backups.Path).AvailableFreeSpace;

        Assert.Equal(PreflightStatus.Failed, PreflightService.CheckDiskSpace(_backups.Path, free + (1L << 30), 2.0).Status);
        Assert.Equal(PreflightStatus.Warning, PreflightService.CheckDiskSpace(_backups.Path, free * 2 / 3, 2.0).Status);
        var passed = PreflightService.CheckDiskSpace(_backups.Path, 1024, 2.0);
        Assert.Equal(PreflightStatus.Passed, passed.Status);
        Assert.Equal(2048L, passed.Details["RequiredBytes"]);
    }

    /// <summary>What a restore killed before its swap leaves beside the database: its copy, with a journal.</summary>
    [Fact]
    public async Task A_copy_left_by_a_stopped_restore_is_named_and_the_next_restore_removes_it()
    {
        var target = await EventsDatabaseAsync();
        var backup = await new DbMigration.Backups.BackupService().CreateAsync(new DbMigration.Backups.BackupRequest { Source = target, Path = _backups.Path }, null, CancellationToken.None);
        var copy = Path.Combine(Path.GetDirectoryName(target.FilePath)!, "." + Path.GetFileName(target.FilePath) + ".dbm-restore-" + backup.Id + "-0a1b2c3d");
        File.Copy(target.FilePath!, copy);
        File.WriteAllBytes(copy + "-journal", new byte[512]);

        var found = PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies);
        Assert.Equal(PreflightStatus.Warning, found.Status);
        Assert.Contains(copy, found.Message, StringComparison.Ordinal);
        Assert.Contains("a restored copy never swapped in", found.Message, StringComparison.Ordinal);
        Assert.Contains("The next Restore-MigrationBackup of this database removes them", found.Message, StringComparison.Ordinal);
        var listed = Assert.Single(Assert.IsAssignableFrom<IReadOnlyList<DbMigration.Backups.LeftoverCopy>>(found.Details["Copies"]));
        Assert.Equal(new FileInfo(target.FilePath!).Length + 512, listed.Bytes);

        await new DbMigration.Backups.RestoreService().RestoreAsync(new DbMigration.Backups.RestoreRequest { Target = target, Backup = backup, SkipSafetyBackup = true }, null, CancellationToken.None);

        Assert.False(File.Exists(copy));
        Assert.False(File.Exists(copy + "-journal"));
        Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies).Status);
    }

    [Fact]
    public async Task Progress_is_reported_and_completed()
    {
        var target = await EventsDatabaseAsync(10);
        var host = new RecordingHost();
        new TestMigrationPreflightCommand { Database = target }.Invoke(host, CancellationToken.None);

        Assert.True(host.Progress.Count >= 7);
        Assert.True(host.Progress[^1].Completed);
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlPreflightBadInputTests(PostgresServer server) : ServerPreflightBadInputTests(server, "postgres", "postgres");

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbPreflightBadInputTests(MariaDbServer server) : ServerPreflightBadInputTests(server, "mariadb", "dbm");

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlPreflightTests(PostgresServer server) : IDisposable
{
    private readonly TempDirectory _backups = new();

    public void Dispose() => _backups.Dispose();

    [Fact]
    public async Task A_healthy_database_passes_every_check_including_amcheck()
    {
        var target = await server.CreateDatabaseAsync();
        await DbMigration.Bench.Data.EventsLoader.LoadPostgreSqlAsync(server.AdminConnectionString.Replace("Database=postgres", "Database=" + target.Database, StringComparison.Ordinal),
            new DbMigration.Bench.Data.EventsDataGenerator().Generate(300));
        var checks = PreflightRun.Checks(target, _backups.Path);

        Assert.True(checks.All(c => c.Status == PreflightStatus.Passed), checks.Describe());
        Assert.Contains("amcheck", checks.Get(PreflightCodes.Integrity).Message, StringComparison.Ordinal);
        Assert.Contains("tried on a probe table, in a transaction that was rolled back", checks.Get(PreflightCodes.SchemaPrivileges).Message, StringComparison.Ordinal);
        Assert.Contains("PostgreSQL 15", checks.Get(PreflightCodes.Connectivity).Message, StringComparison.Ordinal);
        var tables = (IEnumerable<TableRowCount>)checks.Get(PreflightCodes.DatabaseSize).Details["Tables"]!;
        Assert.Equal(300, tables.Single(t => t.Table == "public.events").Rows);

        // The integrity check created amcheck only inside a rolled-back transaction.
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = "SELECT count(*) AS n FROM pg_extension WHERE extname = 'amcheck'" }.Invoke(host, CancellationToken.None);
        Assert.Equal(0L, Assert.Single(host.ObjectsOf<DbMigration.Query.QueryRow>())["n"]);
    }

    /// <summary>
    /// On a server that accepts no writes (a hot standby; here a role whose transactions are read-only) amcheck cannot
    /// be created even by a superuser: the check said to ask one, where it must be created on the primary.
    /// </summary>
    [Fact]
    public async Task On_a_read_only_server_the_integrity_check_says_to_enable_amcheck_on_the_primary()
    {
        var target = await server.CreateDatabaseAsync();
        var reader = "dbm_ro_" + Guid.NewGuid().ToString("N")[..8];
        await server.ExecuteAsync(target, $"CREATE ROLE {reader} LOGIN SUPERUSER PASSWORD 'ro-pw'; ALTER ROLE {reader} SET default_transaction_read_only = on");

        var integrity = PreflightRun.Checks(target.WithCredential(reader, "ro-pw")).Get(PreflightCodes.Integrity);
        Assert.Equal(PreflightStatus.Skipped, integrity.Status);
        Assert.Contains("accepts no writes", integrity.Message, StringComparison.Ordinal);
        Assert.Contains("on the primary", integrity.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sessions_are_named_and_an_open_transaction_fails_the_check()
    {
        var target = await server.CreateDatabaseAsync();
        await server.ExecuteAsync(target, "CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
        await using var other = new Npgsql.NpgsqlConnection(DbMigration.Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(target, TimeSpan.FromSeconds(10)) + ";Pooling=false;Application Name=nightly-report");
        await other.OpenAsync();

        var idle = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Warning, idle.Status);
        Assert.Contains("nightly-report", idle.Message, StringComparison.Ordinal);

        await using var transaction = await other.BeginTransactionAsync();
        await using (var update = new Npgsql.NpgsqlCommand("UPDATE t SET id = 2", other, transaction))
        {
            await update.ExecuteNonQueryAsync();
        }

        var busy = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Failed, busy.Status);
        Assert.Contains("pid " + other.ProcessID, busy.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_without_create_privilege_fails_the_privilege_check()
    {
        var target = await server.CreateDatabaseAsync();
        var user = "ro_" + Guid.NewGuid().ToString("N")[..8];
        await server.ExecuteAsync(target, $"CREATE ROLE {user} LOGIN PASSWORD 'ro-pass'; REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE \"{target.Database}\" TO {user};");

        var privileges = PreflightRun.Checks(target.WithCredential(user, "ro-pass")).Get(PreflightCodes.SchemaPrivileges);
        Assert.Equal(PreflightStatus.Failed, privileges.Status);
        Assert.Contains("permission denied", privileges.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_role_that_could_migrate_but_not_restore_gets_a_warning_naming_what_it_lacks()
    {
        // The rollback after a failed migration is a restore into a new database renamed into place: without
        // CREATEDB and ownership of the database the server refuses it, which is better known before migrating.
        var target = await server.CreateDatabaseAsync();
        var user = "app_" + Guid.NewGuid().ToString("N")[..8];
        await server.ExecuteAsync(target, $"CREATE ROLE {user} LOGIN PASSWORD 'app-pass'; GRANT CREATE ON SCHEMA public TO {user}; GRANT CONNECT ON DATABASE \"{target.Database}\" TO {user};");
        var app = target.WithCredential(user, "app-pass");

        var neither = PreflightRun.Checks(app).Get(PreflightCodes.SchemaPrivileges);
        Assert.Equal(PreflightStatus.Warning, neither.Status);
        Assert.Contains("May create and alter tables", neither.Message, StringComparison.Ordinal);
        Assert.Contains($"ALTER ROLE {user} CREATEDB", neither.Message, StringComparison.Ordinal);
        Assert.Contains($"does not own database '{target.Database}'", neither.Message, StringComparison.Ordinal);
        Assert.Equal(true, neither.Details["RestoreBlocked"]);

        await server.ExecuteAsync(target, $"ALTER ROLE {user} CREATEDB");
        var notOwner = PreflightRun.Checks(app).Get(PreflightCodes.SchemaPrivileges);
        Assert.Equal(PreflightStatus.Warning, notOwner.Status);
        Assert.DoesNotContain("CREATEDB", notOwner.Message, StringComparison.Ordinal);

        await server.ExecuteAsync(target, $"ALTER DATABASE \"{target.Database}\" OWNER TO {user}");
        Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(app).Get(PreflightCodes.SchemaPrivileges).Status);
        Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.SchemaPrivileges).Status);
    }

    /// <summary>
    /// A verification killed (or whose drop failed) leaves its scratch database: a whole copy of the data nobody looks
    /// after. It is named with its size and the statement that drops it; another database's copy is not.
    /// </summary>
    [Fact]
    public async Task A_scratch_copy_left_by_a_stopped_verification_is_named_with_the_statement_that_drops_it()
    {
        var target = await server.CreateDatabaseAsync();
        var copy = DbMigration.Backups.PostgreSqlBackupStrategy.ShortName("dbm_verify", target.Database!, "20261208T000000000Z-abcdef" + Guid.NewGuid().ToString("N"));
        var elsewhere = DbMigration.Backups.PostgreSqlBackupStrategy.ShortName("dbm_verify", target.Database + "x", "20261208T000000000Z-abcdef");
        await server.ExecuteAsync(target, $"CREATE DATABASE \"{copy}\"");
        await server.ExecuteAsync(target, $"CREATE DATABASE \"{elsewhere}\"");
        try
        {
            await server.ExecuteAsync(target.WithDatabase(copy), "CREATE TABLE events AS SELECT g AS id, repeat('x', 100) AS note FROM generate_series(1, 1000) g");

            var found = PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies);
            Assert.Equal(PreflightStatus.Warning, found.Status);
            Assert.Contains($"{copy} (a verification's scratch copy, ", found.Message, StringComparison.Ordinal);
            Assert.Contains($"DROP DATABASE \"{copy}\";", found.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(elsewhere, found.Message, StringComparison.Ordinal);
            var listed = Assert.Single(Assert.IsAssignableFrom<IReadOnlyList<DbMigration.Backups.LeftoverCopy>>(found.Details["Copies"]));
            Assert.Equal(DbMigration.Backups.LeftoverCopyKind.Verification, listed.Kind);
            Assert.True(listed.Bytes > 100_000, $"size {listed.Bytes}");
            Assert.False(listed.InUse);

            await using (var running = new Npgsql.NpgsqlConnection(DbMigration.Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(target.WithDatabase(copy), TimeSpan.FromSeconds(10)) + ";Pooling=false"))
            {
                await running.OpenAsync();
                var inUse = PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies);
                Assert.Contains("in use now", inUse.Message, StringComparison.Ordinal);
            }

            await server.ExecuteAsync(target, $"DROP DATABASE \"{copy}\"");
            Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies).Status);
        }
        finally
        {
            await server.ExecuteAsync(target, $"DROP DATABASE IF EXISTS \"{copy}\" WITH (FORCE)");
            await server.ExecuteAsync(target, $"DROP DATABASE IF EXISTS \"{elsewhere}\"");
        }
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbPreflightTests(MariaDbServer server) : IDisposable
{
    private readonly TempDirectory _backups = new();

    public void Dispose() => _backups.Dispose();

    [Fact]
    public async Task A_healthy_database_passes_every_check_including_check_table()
    {
        var target = await server.CreateDatabaseAsync();
        var client = ProcessRunner.FindBinary("mariadb", "DBMIGRATION_MARIADB_BINDIR");
        await DbMigration.Bench.Data.EventsLoader.LoadMariaDbWithCliAsync(
            new DbMigration.Bench.Data.MariaDbConnectionInfo("127.0.0.1", server.Port, "dbm", server.Password, target.Database!, client),
            new DbMigration.Bench.Data.EventsDataGenerator().Generate(300));
        var checks = PreflightRun.Checks(target, _backups.Path);

        Assert.True(checks.All(c => c.Status == PreflightStatus.Passed), checks.Describe());
        Assert.Contains("CHECK TABLE", checks.Get(PreflightCodes.Integrity).Message, StringComparison.Ordinal);
        // MariaDB DDL commits at once: the probe table is dropped, not rolled back.
        Assert.Contains("tried on a probe table, which was dropped again", checks.Get(PreflightCodes.SchemaPrivileges).Message, StringComparison.Ordinal);
        Assert.Contains("MariaDB", checks.Get(PreflightCodes.Connectivity).Message, StringComparison.Ordinal);
        Assert.Equal(false, checks.Get(PreflightCodes.Connectivity).Details["TransactionalDdl"]);
        var tables = (IEnumerable<TableRowCount>)checks.Get(PreflightCodes.DatabaseSize).Details["Tables"]!;
        Assert.Equal(300, tables.Single(t => t.Table == "events").Rows);
        var leftovers = await server.RunSqlAsync($"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{target.Database}' AND table_name LIKE 'dbmigration_preflight_probe%'");
        Assert.Equal("0", leftovers.Trim());
    }

    [Fact]
    public async Task Sessions_are_named_and_an_open_transaction_fails_the_check()
    {
        var target = await server.CreateDatabaseAsync();
        await server.RunSqlAsync($"CREATE TABLE `{target.Database}`.t (id INT PRIMARY KEY); INSERT INTO `{target.Database}`.t VALUES (1);");
        await using var other = new DbMigration.MySql.MySqlConnection(server.ConnectionString(target.Database, "Pooling=false"));
        await other.OpenAsync();

        var idle = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Warning, idle.Status);
        Assert.Contains("id " + other.ServerThread, idle.Message, StringComparison.Ordinal);

        await using var transaction = await other.BeginTransactionAsync();
        await using (var update = new DbMigration.MySql.MySqlCommand("UPDATE t SET id = 2", other))
        {
            await update.ExecuteNonQueryAsync();
        }

        var busy = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Failed, busy.Status);
        Assert.Contains("id " + other.ServerThread, busy.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_without_create_privilege_fails_the_privilege_check()
    {
        var target = await server.CreateDatabaseAsync();
        var user = "ro_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'ro-pass'; GRANT SELECT ON `{target.Database}`.* TO '{user}'@'%';");

        var privileges = PreflightRun.Checks(target.WithCredential(user, "ro-pass")).Get(PreflightCodes.SchemaPrivileges);
        Assert.Equal(PreflightStatus.Failed, privileges.Status);
        Assert.Contains("denied", privileges.Message, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// An application user with rights on its own database only may migrate it, but the rollback (a restore, which
    /// loads into a new dbm_restore_… database) would be refused at the worst moment: better known before migrating.
    /// </summary>
    [Fact]
    public async Task A_user_who_could_migrate_but_not_restore_gets_a_warning_naming_the_grant()
    {
        var target = await server.CreateDatabaseAsync();
        var user = "app_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pass'; GRANT ALL ON `{target.Database}`.* TO '{user}'@'%';");
        var app = target.WithCredential(user, "app-pass");

        var ownOnly = PreflightRun.Checks(app).Get(PreflightCodes.SchemaPrivileges);
        Assert.True(ownOnly.Status == PreflightStatus.Warning, ownOnly.ToString());
        Assert.Contains("May create and alter tables", ownOnly.Message, StringComparison.Ordinal);
        Assert.Contains($"user {user}@% may not create databases such as dbm_restore_", ownOnly.Message, StringComparison.Ordinal);
        Assert.Contains("GRANT ALL ON `dbm\\_%`.*", ownOnly.Message, StringComparison.Ordinal);
        Assert.Equal(true, ownOnly.Details["RestoreBlocked"]);

        // Only CREATE is not enough: the copy is dropped afterwards. The check's own empty database is then left,
        // and named as a leftover copy.
        await server.RunSqlAsync($"GRANT CREATE ON `dbm\\_%`.* TO '{user}'@'%';");
        var createOnly = PreflightRun.Checks(app);
        Assert.Contains("may create but not drop databases such as dbm_restore_", createOnly.Get(PreflightCodes.SchemaPrivileges).Message, StringComparison.Ordinal);
        var probe = Assert.Single(Assert.IsAssignableFrom<IReadOnlyList<DbMigration.Backups.LeftoverCopy>>(PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies).Details["Copies"])).Name;
        Assert.Contains(probe, createOnly.Get(PreflightCodes.SchemaPrivileges).Message, StringComparison.Ordinal);
        await server.RunSqlAsync($"DROP DATABASE `{probe}`;");

        await server.RunSqlAsync($"GRANT ALL ON `dbm\\_%`.* TO '{user}'@'%';");
        var granted = PreflightRun.Checks(app);
        Assert.Equal(PreflightStatus.Passed, granted.Get(PreflightCodes.SchemaPrivileges).Status);
        Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.SchemaPrivileges).Status);

        // Seeing who else is connected needs PROCESS, which the sessions check names (-Force goes ahead without it).
        Assert.Contains("PROCESS", granted.Get(PreflightCodes.Sessions).Message, StringComparison.Ordinal);

        // And the grant named is the one a restore needs: it now runs as this user.
        var backup = await new DbMigration.Backups.BackupService().CreateAsync(new DbMigration.Backups.BackupRequest { Source = app, Path = _backups.Path }, null, CancellationToken.None);
        var restored = await new DbMigration.Backups.RestoreService().RestoreAsync(new DbMigration.Backups.RestoreRequest { Target = app, Backup = backup, SkipSafetyBackup = true, Force = true }, null, CancellationToken.None);
        Assert.True(restored.RowCountsMatch);
    }

    /// <summary>The privileges a restore needs may come with a role, which information_schema does not show.</summary>
    [Fact]
    public async Task A_user_granted_what_a_restore_needs_through_a_role_passes()
    {
        var target = await server.CreateDatabaseAsync();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var (user, role) = ("app_" + suffix, "restorer_" + suffix);
        await server.RunSqlAsync($"CREATE ROLE {role}; GRANT ALL ON `dbm\\_%`.* TO {role}; CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pass'; GRANT ALL ON `{target.Database}`.* TO '{user}'@'%'; GRANT {role} TO '{user}'@'%'; SET DEFAULT ROLE {role} FOR '{user}'@'%';");

        var privileges = PreflightRun.Checks(target.WithCredential(user, "app-pass")).Get(PreflightCodes.SchemaPrivileges);

        Assert.True(privileges.Status == PreflightStatus.Passed, privileges.ToString());
        Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies).Status);
    }

    /// <summary>A restore stopped after its swap leaves the replaced database under a dbm_old name: it is named.</summary>
    [Fact]
    public async Task The_database_a_stopped_restore_replaced_is_named_with_the_statement_that_drops_it()
    {
        var target = await server.CreateDatabaseAsync();
        var copy = DbMigration.Backups.PostgreSqlBackupStrategy.ShortName("dbm_old", target.Database!, "20261208T000000000Z-abcdef");
        await server.RunSqlAsync($"CREATE DATABASE `{copy}`; CREATE TABLE `{copy}`.events (id INT PRIMARY KEY, note TEXT); INSERT INTO `{copy}`.events VALUES (1, REPEAT('x', 1000));");
        try
        {
            var found = PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies);
            Assert.True(found.Status == PreflightStatus.Warning, found.ToString());
            Assert.Contains($"{copy} (the database as it was before a restore replaced it", found.Message, StringComparison.Ordinal);
            Assert.Contains($"DROP DATABASE `{copy}`;", found.Message, StringComparison.Ordinal);
            Assert.Contains("the restore's safety backup holds it too", found.Message, StringComparison.Ordinal);
            var listed = Assert.Single(Assert.IsAssignableFrom<IReadOnlyList<DbMigration.Backups.LeftoverCopy>>(found.Details["Copies"]));
            Assert.Equal(DbMigration.Backups.LeftoverCopyKind.Replaced, listed.Kind);
            Assert.True(listed.Bytes > 0, $"size {listed.Bytes}");

            await server.RunSqlAsync($"DROP DATABASE `{copy}`;");
            Assert.Equal(PreflightStatus.Passed, PreflightRun.Checks(target).Get(PreflightCodes.LeftoverCopies).Status);
        }
        finally
        {
            await server.RunSqlAsync($"DROP DATABASE IF EXISTS `{copy}`;");
        }
    }
}

/// <summary>Bad-input cases every server engine must turn into a Failed connectivity check.</summary>
public abstract class ServerPreflightBadInputTests(IEngineUnderTest engine, string scheme, string user)
{
    protected IEngineUnderTest Engine { get; } = engine;

    [Fact]
    public async Task DbMigrations_own_idle_pooled_connections_are_not_other_sessions()
    {
        // As after Backup-Database -DumpMethod BuiltIn in the same PowerShell session: two connections at once,
        // both back in the pool. The check reported the idle one as another session ("app 'DbMigration'").
        var target = await Engine.CreateDatabaseAsync();
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (var first = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None))
        await using (var second = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            var sessions = await provider.GetOtherSessionsAsync(target, first, CancellationToken.None);
            Assert.Single(sessions);
        }

        var check = PreflightRun.Checks(target).Get(PreflightCodes.Sessions);
        Assert.Equal(PreflightStatus.Passed, check.Status);
    }

    [Fact]
    public async Task A_wrong_password_fails_connectivity_without_revealing_it()
    {
        var target = (await Engine.CreateDatabaseAsync()).WithCredential(user, "Not-The-Password-9");
        var checks = PreflightRun.Checks(target);

        var connectivity = checks.Get(PreflightCodes.Connectivity);
        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.ConnectionAuthenticationFailed, connectivity.ErrorId);
        var everything = string.Join("|", checks.Select(c => c.Message + c.Target + string.Join(",", c.Details.Values)));
        Assert.DoesNotContain("Not-The-Password-9", everything, StringComparison.Ordinal);
    }

    [Fact]
    public void A_closed_port_fails_connectivity_quickly()
    {
        var port = ProcessRunner.FreeTcpPort();
        var started = DateTime.UtcNow;
        var connectivity = PreflightRun.Checks(DatabaseTarget.Parse($"{scheme}://{user}:x@127.0.0.1:{port}/db"), connectTimeout: 5).Get(PreflightCodes.Connectivity);

        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.ConnectionRefused, connectivity.ErrorId);
        Assert.Contains("refused", connectivity.Message, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_instead_of_hanging()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        var accept = silent.AcceptTcpClientAsync();
        var started = DateTime.UtcNow;

        var checks = await Task.Run(() => PreflightRun.Checks(DatabaseTarget.Parse($"{scheme}://{user}:x@127.0.0.1:{port}/db"), connectTimeout: 2));

        var connectivity = checks.Get(PreflightCodes.Connectivity);
        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.ConnectionTimeout, connectivity.ErrorId);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), "pre-flight hung on a silent server");
        (await accept).Dispose();
    }

    /// <summary>A socket target: MySQL names the socket file, libpq's form names its folder and port.</summary>
    private DatabaseTarget SocketTarget(string folder, int port) => DatabaseTarget.Parse(scheme == "postgres"
        ? $"postgres://{user}:x@/db?host={Uri.EscapeDataString(folder)}&port={port}"
        : $"{scheme}://{user}:x@localhost/db?socket={Uri.EscapeDataString(Path.Combine(folder, ".s.PGSQL." + port))}");

    [Fact]
    public void A_missing_socket_is_named_in_the_refusal()
    {
        using var dir = new TempDirectory();
        var connectivity = PreflightRun.Checks(SocketTarget(dir.Path, 5999), connectTimeout: 5).Get(PreflightCodes.Connectivity);

        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.ConnectionRefused, connectivity.ErrorId);
        Assert.Contains($"socket at {Path.Combine(dir.Path, ".s.PGSQL.5999")}", connectivity.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stale_socket_file_with_no_server_is_named_in_the_refusal()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, ".s.PGSQL.5998");
        // Bound but not listening: the file exists and nothing accepts, as after a server that crashed.
        using var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        stale.Bind(new UnixDomainSocketEndPoint(path));
        Assert.True(File.Exists(path));
        var connectivity = PreflightRun.Checks(SocketTarget(dir.Path, 5998), connectTimeout: 5).Get(PreflightCodes.Connectivity);

        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.ConnectionRefused, connectivity.ErrorId);
        Assert.Contains($"refused by the socket {path}", connectivity.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_database_fails_connectivity_with_its_name()
    {
        var connectivity = PreflightRun.Checks((await Engine.CreateDatabaseAsync()).WithDatabase("no_such_db_here")).Get(PreflightCodes.Connectivity);

        Assert.Equal(PreflightStatus.Failed, connectivity.Status);
        Assert.Equal(ErrorIds.TargetDatabaseNotFound, connectivity.ErrorId);
        Assert.Contains("no_such_db_here", connectivity.Message, StringComparison.Ordinal);
    }
}
