using System.Globalization;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.PowerShell.Commands;
using DbMigration.Query;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Migrations;

/// <summary>The migration engine on every engine, through the cmdlets, against real databases.</summary>
public abstract class MigrationEngineTests(IEngineUnderTest engine, string? password) : IDisposable
{
    private protected readonly TempDirectory _dir = new();

    // A SQLite engine is built per test with its own temp folder (a slow-statement test leaves 2 GB in it); the
    // server engines are shared collection fixtures that xUnit disposes.
    public void Dispose()
    {
        _dir.Dispose();
        (Engine as SqliteEngine)?.Dispose();
    }

    protected IEngineUnderTest Engine { get; } = engine;

    /// <summary>A statement that runs for about 30 seconds unless interrupted.</summary>
    protected abstract string SlowStatement { get; }

    /// <summary>A slow statement that lets other connections read meanwhile (a SQLite write locks readers out).</summary>
    protected virtual string SlowStatementOthersCanReadBeside => SlowStatement;

    protected string Folder(params (string Name, string Text)[] files)
    {
        var folder = _dir.File("migrations-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(folder);
        foreach (var (name, text) in files)
        {
            File.WriteAllText(Path.Combine(folder, name), text);
        }

        return folder;
    }

    protected static readonly (string, string)[] Standard =
    [
        ("V1__create_parent.sql", "-- migrate:up\nCREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);\nINSERT INTO parent (id, name) VALUES (1, 'a');\n-- migrate:down\nDROP TABLE parent;\n"),
        ("V2__create_child.sql", "-- requires: 1\n-- migrate:up\nCREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, FOREIGN KEY (parent_id) REFERENCES parent (id));\nCREATE INDEX ix_child_parent ON child (parent_id);\n-- migrate:down\nDROP TABLE child;\n"),
        ("V3__add_note.sql", "-- migrate:up\nALTER TABLE parent ADD COLUMN note VARCHAR(100);\n-- migrate:down\nALTER TABLE parent DROP COLUMN note;\n"),
        ("V10__create_audit.sql", "CREATE TABLE audit (id INTEGER PRIMARY KEY, what VARCHAR(50));\n"),
    ];

    private protected List<MigrationRun> Migrate(DatabaseTarget target, string folder, Action<InvokeDatabaseMigrationCommand>? configure = null, RecordingHost? host = null)
    {
        host ??= new RecordingHost(_dir.Path);
        var command = new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true, ForceMode = true };
        configure?.Invoke(command);
        command.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<MigrationRun>().ToList();
    }

    /// <summary>
    /// Another session reads the table inside an open transaction while a migration alters it: the ALTER gives up
    /// after -StatementLockTimeout with a hint instead of waiting (and queueing every later query behind it), changes
    /// nothing, and runs once the reader is done; with 0 it waits for the reader.
    /// </summary>
    protected async Task AssertAStatementGivesUpWaitingForALockAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        Assert.Single(Migrate(target, Folder(Standard[0])));
        var folder = Folder(Standard[0], Standard[2]);
        const string Read = "SELECT COUNT(*) FROM parent";

        // Let go after 20 s whatever happens, so a step that waits without limit fails this test instead of hanging it.
        DbMigrationException failed;
        using (var early = new CancellationTokenSource())
        {
            var released = (await LockHolder.HoldAsync(target, Read)).ReleaseAsync(TimeSpan.FromSeconds(20), early.Token);
            failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder, c => c.StatementLockTimeout = 1));
            await early.CancelAsync();
            await released;
        }

        Assert.Equal(ErrorIds.MigrationFailed, failed.ErrorId);
        Assert.Contains("gave up waiting for a lock", failed.Message, StringComparison.Ordinal);
        Assert.Matches(@"timeout[^.]*\. The statement gave up", failed.Message);
        Assert.Contains("-StatementLockTimeout", failed.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing changed and the journal does not block", failed.Message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE parent ADD COLUMN note", failed.Sql, StringComparison.Ordinal);
        Assert.Equal(0, Scalar(target, ColumnCount("parent", "note")));
        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(m => m.Version == "3").State);

        // 0: the step waits for the reader, which finishes a moment later.
        var finishing = (await LockHolder.HoldAsync(target, Read)).ReleaseAsync(TimeSpan.FromSeconds(1.5), CancellationToken.None);
        var applied = Migrate(target, folder, c => c.StatementLockTimeout = 0);
        await finishing;
        Assert.Equal(["3"], applied.Select(r => r.Version));
        Assert.Equal(1, Scalar(target, ColumnCount("parent", "note")));

        // An undo that gives up leaves the version applied, not blocked.
        DbMigrationException undo;
        using (var early = new CancellationTokenSource())
        {
            var released = (await LockHolder.HoldAsync(target, Read)).ReleaseAsync(TimeSpan.FromSeconds(20), early.Token);
            undo = Assert.Throws<DbMigrationException>(() => new UndoDatabaseMigrationCommand { Database = target, Path = folder, StatementLockTimeout = 1 }.Invoke(new RecordingHost(), CancellationToken.None));
            await early.CancelAsync();
            await released;
        }

        Assert.Equal(ErrorIds.MigrationFailed, undo.ErrorId);
        Assert.Contains("gave up waiting for a lock", undo.Message, StringComparison.Ordinal);
        Assert.Equal(MigrationState.Applied, Status(target, folder).Single(m => m.Version == "3").State);
        Assert.Equal(1, Scalar(target, ColumnCount("parent", "note")));
        new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(0, Scalar(target, ColumnCount("parent", "note")));
    }

    private string ColumnCount(string table, string column) => Engine.Engine == DatabaseEngine.PostgreSql
        ? $"SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' AND column_name = '{column}'"
        : $"SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}' AND column_name = '{column}'";

    private protected static List<MigrationInfo> Status(DatabaseTarget target, string folder)
    {
        var host = new RecordingHost();
        new GetMigrationStatusCommand { Database = target, Path = folder }.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<MigrationInfo>().ToList();
    }

    protected static List<QueryRow> Query(DatabaseTarget target, string sql)
    {
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<QueryRow>().ToList();
    }

    protected static long Scalar(DatabaseTarget target, string sql) => Convert.ToInt64(Query(target, sql).Single()[0], CultureInfo.InvariantCulture);

    private string Now() => Engine.Engine switch
    {
        DatabaseEngine.PostgreSql => "now()",
        DatabaseEngine.MySql => "UTC_TIMESTAMP(6)",
        _ => "'" + DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) + "'",
    };

    protected bool TableExists(DatabaseTarget target, string table)
    {
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        using var connection = provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None).GetAwaiter().GetResult();
        return provider.GetTablesAsync(connection, CancellationToken.None).GetAwaiter().GetResult().Any(t => t.Name.Name == table);
    }

    [Fact]
    public async Task Applies_pending_migrations_in_numeric_order_and_a_rerun_is_a_no_op()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);

        var runs = Migrate(target, folder);
        Assert.Equal(["1", "2", "3", "10"], runs.Select(r => r.Version));
        Assert.All(runs, r => Assert.Equal("applied", r.Status));
        Assert.All(Status(target, folder), s => Assert.Equal(MigrationState.Applied, s.State));
        Assert.All(Status(target, folder), s => Assert.NotNull(s.AppliedUtc));
        Assert.Equal(4, Scalar(target, "SELECT COUNT(*) FROM dbmigration_history_events WHERE event = 'applied'"));

        Assert.Empty(Migrate(target, folder));
        Assert.Equal(4, Scalar(target, "SELECT COUNT(*) FROM dbmigration_history_events WHERE event = 'applied'"));
    }

    [Fact]
    public async Task Journal_times_are_UTC()
    {
        var target = await Engine.CreateDatabaseAsync();
        var before = DateTimeOffset.UtcNow.AddSeconds(-2);
        Migrate(target, Folder(Standard[0]));
        var applied = Status(target, Folder(Standard[0])).Single().AppliedUtc!.Value;
        Assert.Equal(TimeSpan.Zero, applied.Offset);
        Assert.InRange(applied, before, DateTimeOffset.UtcNow.AddSeconds(2));
    }

    [Fact]
    public async Task A_target_version_stops_there_and_status_shows_the_rest_pending()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);

        Assert.Equal(["1", "2"], Migrate(target, folder, c => c.TargetVersion = "2").Select(r => r.Version));
        var states = Status(target, folder).ToDictionary(s => s.Version, s => s.State);
        Assert.Equal(MigrationState.Applied, states["2"]);
        Assert.Equal(MigrationState.Pending, states["3"]);
        Assert.Equal(MigrationState.Pending, states["10"]);
    }

    [Fact]
    public async Task Undo_runs_down_sections_newest_first_and_the_migrations_can_be_reapplied()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);
        Migrate(target, folder, c => c.TargetVersion = "3");

        var host = new RecordingHost();
        new UndoDatabaseMigrationCommand { Database = target, Path = folder, Steps = 2 }.Invoke(host, CancellationToken.None);
        Assert.Equal(["3", "2"], host.ObjectsOf<MigrationRun>().Select(r => r.Version));
        Assert.All(host.ObjectsOf<MigrationRun>(), r => Assert.Equal("rolled_back", r.Status));
        Assert.False(TableExists(target, "child"));
        var states = Status(target, folder).ToDictionary(s => s.Version, s => s.State);
        Assert.Equal(MigrationState.Applied, states["1"]);
        Assert.Equal(MigrationState.Pending, states["2"]);

        Assert.Equal(["2", "3", "10"], Migrate(target, folder).Select(r => r.Version));
        Assert.True(TableExists(target, "child"));
    }

    [Fact]
    public async Task A_first_migration_over_a_table_made_by_hand_points_to_the_baseline()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)");
        var folder = Folder(Standard[0], Standard[1]);

        var ex = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));

        Assert.Equal(ErrorIds.MigrationFailed, ex.ErrorId);
        Assert.Contains("record the migrations it already reflects with Set-MigrationBaseline (for example -Version 1)", ex.Message, StringComparison.Ordinal);

        // Following the hint: V1 is recorded as already there, and V2 runs.
        new SetMigrationBaselineCommand { Database = target, Path = folder, Version = "1" }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None);
        Assert.Equal(["2"], Migrate(target, folder).Select(r => r.Version));
        Assert.True(TableExists(target, "child"));
    }

    [Fact]
    public async Task Undo_of_a_file_edited_since_it_ran_is_refused_until_the_change_is_accepted()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], Standard[1]);
        Migrate(target, folder);
        // The down section now drops the wrong table: run as it stands, the undo would remove parent's data.
        var file = Path.Combine(folder, "V2__create_child.sql");
        File.WriteAllText(file, File.ReadAllText(file).Replace("DROP TABLE child;", "DROP TABLE child;\nDROP TABLE parent;", StringComparison.Ordinal));

        var host = new RecordingHost(_dir.Path);
        var refused = Assert.Throws<DbMigrationException>(() => new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(host, CancellationToken.None));

        Assert.Equal(ErrorIds.MigrationJournalBlocked, refused.ErrorId);
        Assert.Contains("V2 (V2__create_child.sql) changed since it was applied", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"Repair-MigrationHistory -Database '{target}' -Path '{folder}' -Version 2 -AcceptChecksum", refused.Message, StringComparison.Ordinal);
        Assert.Empty(host.ShouldProcessCalls);
        Assert.True(TableExists(target, "child"));
        Assert.Equal(1, Scalar(target, "SELECT COUNT(*) FROM parent"));

        // Accepted as intended, the edited down section runs.
        new RepairMigrationHistoryCommand { Database = target, Version = "2", Path = folder, AcceptChecksumMode = true }.Invoke(new RecordingHost(), CancellationToken.None);
        new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None);
        Assert.False(TableExists(target, "child"));
        Assert.False(TableExists(target, "parent"));
    }

    [Fact]
    public async Task Undo_without_a_down_section_names_the_backup_and_UseBackup_restores_it()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);
        var backups = _dir.File("backups");
        Migrate(target, folder, c => c.TargetVersion = "3");
        var runs = Migrate(target, folder, c => { c.SkipBackupMode = false; c.BackupPath = backups; });
        var backupId = Assert.Single(runs).BackupId;
        Assert.NotNull(backupId);

        var ex = Assert.Throws<DbMigrationException>(() =>
            new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.MigrationNoDownSection, ex.ErrorId);
        Assert.Contains(backupId, ex.Message, StringComparison.Ordinal);
        Assert.True(TableExists(target, "audit"));

        var host = new RecordingHost(_dir.Path);
        new UndoDatabaseMigrationCommand { Database = target, Path = folder, UseBackupMode = true, BackupPath = backups }.Invoke(host, CancellationToken.None);
        Assert.Equal(backupId, Assert.Single(host.ObjectsOf<RestoreResult>()).BackupId);
        Assert.False(TableExists(target, "audit"));
        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(s => s.Version == "10").State);
    }

    [Fact]
    public async Task A_missing_dependency_is_refused_before_anything_runs()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], ("V3__needs_two.sql", "-- requires: 2\nCREATE TABLE x (id INTEGER);\n"));

        var ex = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationMissingDependency, ex.ErrorId);
        Assert.Contains("V3 requires V2", ex.Message, StringComparison.Ordinal);
        Assert.False(TableExists(target, "parent"));
        Assert.False(TableExists(target, MigrationJournal.History));
    }

    [Fact]
    public async Task WhatIf_prints_the_exact_sql_and_writes_nothing()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);
        var host = new RecordingHost { WhatIf = true };

        Migrate(target, folder, host: host);
        Assert.Empty(host.ObjectsOf<MigrationRun>());
        // The first refusal stops the run: later migrations may depend on it.
        var asked = Assert.Single(host.ShouldProcessCalls);
        Assert.Contains("CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)", asked.Action, StringComparison.Ordinal);
        Assert.False(TableExists(target, "parent"));
        Assert.False(TableExists(target, MigrationJournal.History));
        Assert.False(TableExists(target, MigrationJournal.Lock));
    }

    [Fact]
    public async Task A_failed_migration_is_journalled_blocks_the_next_run_and_can_be_repaired()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], ("V2__broken.sql", "CREATE TABLE child (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n"));
        Migrate(target, folder, c => c.TargetVersion = "1");

        var ex = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal("INSERT INTO no_such_table VALUES (1)", ex.Sql);
        var failed = Status(target, folder).Single(s => s.Version == "2");
        Assert.Equal(MigrationState.Failed, failed.State);
        Assert.Contains("no_such_table", failed.Error, StringComparison.Ordinal);
        Assert.Equal(1, Scalar(target, "SELECT COUNT(*) FROM dbmigration_history WHERE failed_statement = 'INSERT INTO no_such_table VALUES (1)'"));
        AssertFailureOutcome(target, ex);

        var blocked = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationJournalBlocked, blocked.ErrorId);
        Assert.Contains($"Repair-MigrationHistory -Database '{target}' -Version 2 -Resolve RolledBack", blocked.Message, StringComparison.Ordinal);
        // No backup was taken, so none is offered ("or restore backup (none)" before).
        Assert.DoesNotContain("Restore-MigrationBackup", blocked.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("(none)", blocked.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(folder, "V2__broken.sql"), "CREATE TABLE child2 (id INTEGER PRIMARY KEY);\n");
        new RepairMigrationHistoryCommand { Database = target, Version = "2", Resolve = MigrationResolution.RolledBack, Note = "fixed the typo" }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(["2"], Migrate(target, folder).Select(r => r.Version));
        Assert.Equal(1, Scalar(target, "SELECT COUNT(*) FROM dbmigration_history_events WHERE event = 'resolved' AND detail LIKE '%fixed the typo%'"));
    }

    [Fact]
    public async Task Drift_after_a_run_that_failed_part_way_is_measured_against_the_steps_it_applied()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], Standard[1], ("V3__broken.sql", "INSERT INTO no_such_table VALUES (1);\n"));
        Migrate(target, folder, c => c.TargetVersion = "1");
        Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(MigrationState.Applied, Status(target, folder).Single(s => s.Version == "2").State);

        // V2's child table is the migrations' own work, not a hand-made change.
        var host = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.ObjectsOf<SchemaDifference>());
    }

    [Fact]
    public async Task Drift_after_an_undo_that_failed_part_way_is_measured_against_the_steps_it_undid()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], ("V2__child.sql", "-- migrate:up\nCREATE TABLE child (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE no_such_child;\n"), Standard[2]);
        Migrate(target, folder);
        Assert.Throws<DbMigrationException>(() => new UndoDatabaseMigrationCommand { Database = target, Path = folder, Steps = 2 }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));
        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(s => s.Version == "3").State);

        var host = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.ObjectsOf<SchemaDifference>());
    }

    [Fact]
    public async Task A_fresh_empty_scaffold_is_pending_and_only_a_run_that_would_apply_it_refuses()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0]);
        Migrate(target, folder);
        var scaffold = MigrationService.NewFile(folder, "not written yet");

        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(s => s.Version == scaffold.Version).State);
        var refused = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationInvalidFile, refused.ErrorId);
        Assert.Contains("no statements in its up section yet", refused.Message, StringComparison.Ordinal);

        // Undoing what is applied needs only the applied files.
        var host = new RecordingHost(_dir.Path);
        new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(host, CancellationToken.None);
        Assert.Equal("1", Assert.Single(host.ObjectsOf<MigrationRun>()).Version);
        Assert.False(TableExists(target, "parent"));
    }

    [Fact]
    public async Task A_failed_statement_is_named_by_its_line_in_the_file()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__sections.sql", "-- Adds a table and fills it.\n-- migrate:up\nCREATE TABLE filled (id INTEGER PRIMARY KEY);\n\nINSERT INTO no_such_table VALUES (1);\n-- migrate:down\nDROP TABLE filled;\n"));

        var ex = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Contains("failed at statement 2 (line 5)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_script_with_its_own_BEGIN_and_COMMIT_is_refused_where_migrations_run_in_a_transaction()
    {
        // Hand-written scripts often carry their own transaction. Inside the step's transaction its COMMIT would
        // commit half the migration, apart from the journal.
        var target = await Engine.CreateDatabaseAsync();
        const string Script = "-- migrate:up\nCREATE TABLE gadgets (id INTEGER PRIMARY KEY, name VARCHAR(50));\nBEGIN;\nINSERT INTO gadgets (id, name) VALUES (1, 'one');\nCOMMIT;\nINSERT INTO gadgets (id, name) VALUES (1, 'duplicate');\n-- migrate:down\nDROP TABLE gadgets;\n";
        var folder = Folder(Standard[0], ("V2__own_transaction.sql", Script));
        var transactional = Engine.Engine != DatabaseEngine.MySql;
        if (transactional)
        {
            var refused = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
            Assert.Equal(ErrorIds.MigrationInvalidFile, refused.ErrorId);
            Assert.Equal("BEGIN", refused.Sql);
            Assert.Contains("V2__own_transaction.sql line 3", refused.Message, StringComparison.Ordinal);
            Assert.Contains("-- transaction: none", refused.Message, StringComparison.Ordinal);
            Assert.False(TableExists(target, "parent"));
            Assert.False(TableExists(target, "gadgets"));
            File.WriteAllText(Path.Combine(folder, "V2__own_transaction.sql"), "-- transaction: none\n" + Script);
        }

        // Run as written, the script commits its own part and the failure is journalled as partly applied.
        var failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationPartiallyApplied, failed.ErrorId);
        Assert.Equal(MigrationState.Failed, Status(target, folder).Single(s => s.Version == "2").State);
        Assert.Equal(1, Scalar(target, "SELECT COUNT(*) FROM gadgets"));

        if (transactional)
        {
            // A down section is held to the same rule when it runs in a transaction.
            var down = Folder(Standard[0], ("V2__undo_commits.sql", "-- migrate:up\nCREATE TABLE widgets (id INTEGER PRIMARY KEY);\n-- migrate:down\nBEGIN;\nDROP TABLE widgets;\nCOMMIT;\n"));
            var other = await Engine.CreateDatabaseAsync();
            Migrate(other, down);
            var undo = Assert.Throws<DbMigrationException>(() => new UndoDatabaseMigrationCommand { Database = other, Path = down }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));
            Assert.Equal(ErrorIds.MigrationInvalidFile, undo.ErrorId);
            Assert.Contains("down section runs BEGIN", undo.Message, StringComparison.Ordinal);
            Assert.True(TableExists(other, "widgets"));
        }
    }

    /// <summary>
    /// A step whose script moves the session elsewhere (another database, an empty search_path) must not take the
    /// journal, the next step, the schema snapshot or the next pooled connection with it.
    /// </summary>
    protected async Task AssertAScriptThatMovesTheSessionLeavesTheRunInPlace(Func<Task<string>> moveScript)
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(
            Standard[0],
            ("V2__move.sql", "-- migrate:up\n" + await moveScript() + "\n-- migrate:down\nSELECT 1;\n"),
            ("V3__after.sql", "-- migrate:up\nCREATE TABLE after_move (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE after_move;\n"));

        Assert.Equal(["1", "2", "3"], Migrate(target, folder).Select(r => r.Version));
        Assert.True(TableExists(target, "after_move"));
        Assert.All(Status(target, folder), s => Assert.Equal(MigrationState.Applied, s.State));
        Assert.Equal(1, Scalar(target, "SELECT COUNT(*) FROM parent"));
        var drift = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(drift, CancellationToken.None);
        Assert.Empty(drift.ObjectsOf<SchemaDifference>());

        // Undo runs each down section back in the target, too.
        new UndoDatabaseMigrationCommand { Database = target, Path = folder, ToVersion = "1" }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None);
        Assert.False(TableExists(target, "after_move"));
        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(s => s.Version == "2").State);
    }

    /// <summary>How a script opens a transaction and leaves it to the end of the session.</summary>
    protected virtual string OpenTransactionStatement => "BEGIN";

    [Fact]
    public async Task A_transaction_a_script_leaves_open_is_committed_with_its_step_and_rolled_back_with_a_failed_one()
    {
        var target = await Engine.CreateDatabaseAsync();
        // Run as written; the session ends its transaction only when the connection closes.
        var header = Engine.Engine == DatabaseEngine.MySql ? string.Empty : "-- transaction: none\n";
        var folder = Folder(
            Standard[0],
            ("V2__left_open.sql", header + OpenTransactionStatement + ";\nINSERT INTO parent (id, name) VALUES (2, 'b');\n"),
            ("V3__after.sql", "CREATE TABLE after_open (id INTEGER PRIMARY KEY);\n"));

        Assert.Equal(["1", "2", "3"], Migrate(target, folder).Select(r => r.Version));
        Assert.All(Status(target, folder), s => Assert.Equal(MigrationState.Applied, s.State));
        Assert.Equal(2, Scalar(target, "SELECT COUNT(*) FROM parent"));
        Assert.True(TableExists(target, "after_open"));

        File.WriteAllText(Path.Combine(folder, "V4__fails_open.sql"), header + OpenTransactionStatement + ";\nINSERT INTO parent (id, name) VALUES (3, 'c');\nINSERT INTO no_such_table VALUES (1);\n");
        var failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Contains("no_such_table", failed.Message, StringComparison.Ordinal);
        var v4 = Status(target, folder).Single(s => s.Version == "4");
        Assert.Equal(MigrationState.Failed, v4.State);
        Assert.Contains("no_such_table", v4.Error, StringComparison.Ordinal);
        Assert.Equal(2, Scalar(target, "SELECT COUNT(*) FROM parent"));
    }

    /// <summary>A statement the engine refuses inside a transaction (MariaDB runs every step without one).</summary>
    protected virtual string OutsideTransactionOnly => "VACUUM";

    [Fact]
    public async Task A_statement_that_cannot_run_in_a_transaction_says_how_to_run_it()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], ("V2__outside.sql", OutsideTransactionOnly + ";\n"));
        if (Engine.Engine != DatabaseEngine.MySql)
        {
            var ex = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
            Assert.Contains("cannot run inside a transaction: put it in a migration of its own with '-- transaction: none'", ex.Message, StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(folder, "V2__outside.sql"), "-- transaction: none\n" + OutsideTransactionOnly + ";\n");
            new RepairMigrationHistoryCommand { Database = target, Version = "2", Resolve = MigrationResolution.RolledBack, Note = "runs outside a transaction now" }.Invoke(new RecordingHost(), CancellationToken.None);
        }

        Assert.Contains("2", Migrate(target, folder).Select(r => r.Version));
        Assert.Equal(MigrationState.Applied, Status(target, folder).Single(s => s.Version == "2").State);
    }

    /// <summary>Transactional engines roll a failed migration back completely; MySQL reports it partially applied.</summary>
    protected virtual void AssertFailureOutcome(DatabaseTarget target, DbMigrationException error)
    {
        Assert.Equal(ErrorIds.MigrationFailed, error.ErrorId);
        Assert.Contains("rolled back completely", error.Message, StringComparison.Ordinal);
        Assert.False(TableExists(target, "child"));
    }

    [Fact]
    public async Task A_changed_file_is_a_checksum_mismatch_but_line_endings_are_not()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0]);
        Migrate(target, folder);
        var file = Path.Combine(folder, "V1__create_parent.sql");
        var original = File.ReadAllText(file);

        File.WriteAllText(file, "\uFEFF" + original.Replace("\n", "  \r\n", StringComparison.Ordinal));
        Assert.Equal(MigrationState.Applied, Status(target, folder).Single().State);

        File.WriteAllText(file, original.Replace("'a'", "'b'", StringComparison.Ordinal));
        Assert.Equal(MigrationState.ChecksumMismatch, Status(target, folder).Single().State);
        var blocked = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationJournalBlocked, blocked.ErrorId);
        // The fix is named in full, ready to paste.
        Assert.Contains($"Repair-MigrationHistory -Database '{target}' -Path '{folder}' -Version 1 -AcceptChecksum", blocked.Message, StringComparison.Ordinal);

        new RepairMigrationHistoryCommand { Database = target, Version = "1", Path = folder, AcceptChecksumMode = true }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(MigrationState.Applied, Status(target, folder).Single().State);
    }

    [Fact]
    public async Task Drift_reports_a_manual_alter_table()
    {
        var target = await Engine.CreateDatabaseAsync();
        Migrate(target, Folder(Standard));
        var clean = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(clean, CancellationToken.None);
        Assert.Empty(clean.ObjectsOf<SchemaDifference>());

        Query(target, "ALTER TABLE parent ADD COLUMN manual_fix INTEGER; CREATE TABLE scratch (id INTEGER)");
        var host = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(host, CancellationToken.None);
        var differences = host.ObjectsOf<SchemaDifference>().ToList();
        Assert.Contains(differences, d => d is { Kind: DifferenceKind.Added, ObjectType: SchemaObjectType.Column, Name: "manual_fix" } && d.Table.EndsWith("parent", StringComparison.Ordinal));
        Assert.Contains(differences, d => d is { Kind: DifferenceKind.Added, ObjectType: SchemaObjectType.Table } && d.Name.EndsWith("scratch", StringComparison.Ordinal));
        // As the table shows them: a table once, a column under its table.
        Assert.Contains(differences, d => d.ToString().StartsWith("Added Table ", StringComparison.Ordinal) && d.ToString().EndsWith("scratch", StringComparison.Ordinal) && d.ToString().Split('.').Length <= 2);
        Assert.Contains(differences, d => d.ToString().StartsWith("Added Column ", StringComparison.Ordinal) && d.ToString().EndsWith("parent.manual_fix", StringComparison.Ordinal));
    }

    /// <summary>A trigger on parent that sets name to 'x' when it is empty, in the engine's dialect (scripts run statement by statement).</summary>
    protected abstract string[] ParentTrigger { get; }

    [Fact]
    public async Task Drift_reports_hand_made_changes_to_views_and_triggers()
    {
        var target = await Engine.CreateDatabaseAsync();
        Migrate(target, Folder(("V1__parent.sql", "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);\nCREATE VIEW parent_names AS SELECT id, name FROM parent;\n")));
        Assert.Empty(Drift(target));

        // A view redefined by hand, and a trigger nobody migrated: both change what the application sees.
        Query(target, "DROP VIEW parent_names");
        Query(target, "CREATE VIEW parent_names AS SELECT id, name, 1 AS flag FROM parent");
        foreach (var statement in ParentTrigger)
        {
            Query(target, statement);
        }

        var differences = Drift(target);
        Assert.Contains(differences, d => d is { Kind: DifferenceKind.Changed, ObjectType: SchemaObjectType.View } && d.Name.EndsWith("parent_names", StringComparison.Ordinal) && d.Actual!.Contains("flag", StringComparison.Ordinal));
        Assert.Contains(differences, d => d is { Kind: DifferenceKind.Added, ObjectType: SchemaObjectType.Trigger, Name: "parent_fill" } && d.Table.EndsWith("parent", StringComparison.Ordinal));
        Assert.DoesNotContain(differences, d => d.ObjectType is SchemaObjectType.Table or SchemaObjectType.Column or SchemaObjectType.Index);
    }

    private static List<SchemaDifference> Drift(DatabaseTarget target)
    {
        var host = new RecordingHost();
        new TestMigrationDriftCommand { Database = target }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        return host.ObjectsOf<SchemaDifference>().ToList();
    }

    [Fact]
    public async Task A_baseline_adopts_an_existing_database_and_says_so_when_a_journal_exists()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL); CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL)");
        var folder = Folder(Standard);

        // A version above every file (99 typed for 9) would mark them all applied: refused, nothing recorded.
        var typo = Assert.Throws<DbMigrationException>(() => new SetMigrationBaselineCommand { Database = target, Version = "99", Path = folder }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.MigrationVersionNotFound, typo.ErrorId);
        Assert.Contains("the highest is V10", typo.Message, StringComparison.Ordinal);
        Assert.False(TableExists(target, MigrationJournal.History));

        var host = new RecordingHost();
        new SetMigrationBaselineCommand { Database = target, Version = "2", Path = folder }.Invoke(host, CancellationToken.None);
        Assert.Equal(["1", "2"], host.ObjectsOf<MigrationInfo>().Select(i => i.Version));
        Assert.Empty(host.Warnings);
        Assert.Equal(MigrationState.Baseline, Status(target, folder).Single(s => s.Version == "1").State);
        Assert.Equal(["3", "10"], Migrate(target, folder).Select(r => r.Version));

        var again = new RecordingHost();
        new SetMigrationBaselineCommand { Database = target, Version = "3", Path = folder }.Invoke(again, CancellationToken.None);
        Assert.Contains(again.Warnings, w => w.Contains("already has", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_processes_migrating_at_once_apply_each_version_exactly_once()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard);
        await using var first = TestHostProcess.Start(password, "migrate", target.ToString(), folder);
        await using var second = TestHostProcess.Start(password, "migrate", target.ToString(), folder);

        var exits = await Task.WhenAll(first.WaitForExitAsync(TimeSpan.FromMinutes(2)), second.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        Assert.True(exits.All(e => e == 0), $"exit codes {string.Join(", ", exits)}; first: {first.Errors}; second: {second.Errors}");
        Assert.Equal(4, Scalar(target, "SELECT COUNT(*) FROM dbmigration_history_events WHERE event = 'applied'"));
        Assert.Equal(4, Scalar(target, "SELECT COUNT(DISTINCT version) FROM dbmigration_history_events WHERE event = 'applied'"));
        Assert.All(Status(target, folder), s => Assert.Equal(MigrationState.Applied, s.State));
    }

    [Fact]
    public async Task The_example_migrations_apply_undo_and_reapply()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Repo.PathOf("examples", "migrations");
        Assert.Equal(["1", "2", "3", "4", "5", "6"], Migrate(target, folder).Select(r => r.Version));
        Assert.True(TableExists(target, "system_metrics"));

        var host = new RecordingHost();
        new UndoDatabaseMigrationCommand { Database = target, Path = folder, ToVersion = "3" }.Invoke(host, CancellationToken.None);
        Assert.Equal(["6", "5", "4"], host.ObjectsOf<MigrationRun>().Select(r => r.Version));
        Assert.False(TableExists(target, "audit_log"));

        var single = new RecordingHost();
        Assert.Equal(["4", "5", "6"], Migrate(target, folder).Select(r => r.Version));
        new UndoDatabaseMigrationCommand { Database = target, Path = folder, Version = "6" }.Invoke(single, CancellationToken.None);
        Assert.Equal("6", Assert.Single(single.ObjectsOf<MigrationRun>()).Version);
        var noDown = Assert.Throws<DbMigrationException>(() => new UndoDatabaseMigrationCommand { Database = target, Path = folder, Version = "3" }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.MigrationNoDownSection, noDown.ErrorId);
    }

    [Fact]
    public async Task Out_of_order_migrations_need_AllowOutOfOrder_and_deleted_files_show_as_missing()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], Standard[2]);
        Migrate(target, folder);
        File.WriteAllText(Path.Combine(folder, "V2__late.sql"), "CREATE TABLE late (id INTEGER);");

        Assert.Equal(MigrationState.OutOfOrder, Status(target, folder).Single(s => s.Version == "2").State);
        Assert.Equal(ErrorIds.MigrationOutOfOrder, Assert.Throws<DbMigrationException>(() => Migrate(target, folder)).ErrorId);
        Assert.Equal(["2"], Migrate(target, folder, c => c.AllowOutOfOrderMode = true).Select(r => r.Version));

        File.Delete(Path.Combine(folder, "V3__add_note.sql"));
        Assert.Equal(MigrationState.Missing, Status(target, folder).Single(s => s.Version == "3").State);
    }

    /// <summary>
    /// A step outside a transaction is journalled as interrupted before it starts. While its run lives, that record
    /// is the step in progress: another caller sees it running and plans (to wait for the lock) instead of refusing.
    /// </summary>
    [Fact]
    public async Task A_step_being_applied_outside_a_transaction_reads_as_running_until_its_run_is_gone()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__slow.sql", "-- transaction: none\n" + SlowStatementOthersCanReadBeside + ";\n"), ("V2__after.sql", "CREATE TABLE after_slow (id INTEGER);\n"));
        var request = new MigrationRequest { Target = target, Path = folder, SkipBackup = true };
        await using (var run = TestHostProcess.Start(password, "migrate", target.ToString(), folder))
        {
            Assert.Equal("PLANNED 2", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal("LOCKED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            var deadline = DateTime.UtcNow.AddSeconds(20);
            var status = Status(target, folder);
            while (status[0].State == MigrationState.Pending && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
                status = Status(target, folder);
            }

            Assert.Equal([MigrationState.Running, MigrationState.Pending], status.Select(s => s.State));
            var plan = await new MigrationService().PlanAsync(request, CancellationToken.None);
            Assert.Equal(["1", "2"], plan.Steps.Select(s => s.Version));
            Assert.Contains(plan.Notes, n => n.StartsWith("V1 is being applied now by another run", StringComparison.Ordinal) && n.Contains("pid " + run.ProcessId, StringComparison.Ordinal));
            Assert.False(run.HasExited, "the run ended while it was being observed: " + run.Errors);
            run.Kill();
            await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        // With its run gone, the same record is an interrupted step that must be repaired first.
        Assert.Equal(MigrationState.Failed, Status(target, folder)[0].State);
        var blocked = await Assert.ThrowsAsync<DbMigrationException>(() => new MigrationService().PlanAsync(request, CancellationToken.None));
        Assert.Equal(ErrorIds.MigrationJournalBlocked, blocked.ErrorId);
        Assert.Contains("V1 failed (interrupted", blocked.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_while_another_migration_runs_names_that_migration_and_changes_nothing()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__slow.sql", SlowStatement + ";\n"));
        await using var run = TestHostProcess.Start(password, "migrate", target.ToString(), folder);
        Assert.Equal("PLANNED 1", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("LOCKED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
        await Task.Delay(500);

        // Without -Force the pre-flight runs first; the running migration's own session fails it where the
        // engine shows its open transaction, and the lock's wait gives up where it does not: either way the
        // error names the other run instead of suggesting -Force.
        var host = new RecordingHost(_dir.Path);
        var error = Assert.Throws<DbMigrationException>(() => new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true, LockTimeout = 2 }.Invoke(host, CancellationToken.None));
        Assert.True(error.ErrorId == ErrorIds.MigrationLockHeld, error.ErrorId + ": " + error.Message);
        Assert.Equal(ErrorKind.ResourceBusy, error.Kind);
        Assert.Contains("Another migration", error.Message, StringComparison.Ordinal);
        Assert.Contains("Get-MigrationLock", error.Message, StringComparison.Ordinal);
        if (Engine.Engine != DatabaseEngine.Sqlite)
        {
            // A SQLite migration's write locks out the read of its lock row, so only the server engines name it.
            Assert.Contains("pid " + run.ProcessId, error.Message, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("-Force", error.Message, StringComparison.Ordinal);
        Assert.Empty(host.ObjectsOf<MigrationRun>());
        run.Kill();
        await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_killed_run_leaves_a_stale_lock_that_is_reported_and_taken_over_only_with_Force()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__slow.sql", SlowStatement + ";\n"));
        int pid;
        await using (var run = TestHostProcess.Start(password, "migrate", target.ToString(), folder))
        {
            pid = run.ProcessId;
            Assert.Equal("PLANNED 1", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal("LOCKED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            await Task.Delay(500);
            run.Kill();
            await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        var host = new RecordingHost();
        new GetMigrationLockCommand { Database = target }.Invoke(host, CancellationToken.None);
        var info = Assert.Single(host.ObjectsOf<MigrationLockInfo>());
        Assert.True(info.IsStale);
        Assert.False(info.IsHeld);
        Assert.Equal(pid, info.ProcessId);

        // The lock itself refuses: a killed run may also have left a failed journal entry or a still-running
        // statement on the server, which the journal check and pre-flight report on their own.
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        var refused = await Assert.ThrowsAsync<DbMigrationException>(() => MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(10), force: false, null, CancellationToken.None));
        Assert.Equal(ErrorIds.MigrationStaleLock, refused.ErrorId);
        Assert.Contains("pid " + pid, refused.Message, StringComparison.Ordinal);

        // -Force takes a stale lock over, with a warning.
        var takeOver = new RecordingHost();
        await using (await MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(10), force: true, new DbMigration.PowerShell.Infrastructure.HostProgress(takeOver), CancellationToken.None))
        {
            Assert.Contains(takeOver.Warnings, w => w.Contains("stale", StringComparison.Ordinal));
        }

        // The same row a killed run leaves (shown above), from a process that no longer exists.
        Query(target, $"INSERT INTO {MigrationJournal.Lock} (id, owner, host, pid, acquired_utc, heartbeat_utc) VALUES (1, 'ghost', 'elsewhere', 999999, {Now()}, {Now()})");

        var unlock = new RecordingHost();
        new UnlockMigrationCommand { Database = target, ForceMode = true }.Invoke(unlock, CancellationToken.None);
        Assert.Equal(999999, Assert.Single(unlock.ObjectsOf<MigrationLockInfo>()).ProcessId);
        var after = new RecordingHost();
        new GetMigrationLockCommand { Database = target }.Invoke(after, CancellationToken.None);
        Assert.False(Assert.Single(after.ObjectsOf<MigrationLockInfo>()).IsStale);
    }
}

public sealed class SqliteMigrationEngineTests() : MigrationEngineTests(new SqliteEngine(), null)
{
    protected override string[] ParentTrigger => ["CREATE TRIGGER parent_fill AFTER INSERT ON parent WHEN new.name = '' BEGIN UPDATE parent SET name = 'x' WHERE id = new.id; END"];

    protected override string SlowStatement => "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000000) SELECT x FROM c";

    protected override string SlowStatementOthersCanReadBeside => "SELECT COUNT(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000000) SELECT x FROM c)";

    private const string CascadingTables = "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\nCREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\nINSERT INTO parent VALUES (1, 'a'), (2, 'b');\nINSERT INTO child VALUES (10, 1), (11, 2);\n";

    /// <summary>SQLite's documented way to change a table: a new one, the rows copied, the old one dropped.</summary>
    private static string RebuildParent(string copyFilter) =>
        "PRAGMA foreign_keys = OFF;\nCREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');\n" +
        $"INSERT INTO parent_new (id, name) SELECT id, name FROM parent {copyFilter};\nDROP TABLE parent;\nALTER TABLE parent_new RENAME TO parent;\nPRAGMA foreign_keys = ON;\n";

    [Fact]
    public async Task A_table_rebuilt_as_SQLite_documents_keeps_the_rows_that_reference_it()
    {
        // Inside the step's transaction SQLite ignores PRAGMA foreign_keys = OFF, and DROP TABLE parent cascaded
        // into child: every child row was deleted, silently.
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__tables.sql", CascadingTables), ("V2__rebuild_parent.sql", RebuildParent(string.Empty)));
        Assert.Equal(["1", "2"], Migrate(target, folder).Select(r => r.Version));
        Assert.Equal(2, Scalar(target, "SELECT COUNT(*) FROM child"));
        Assert.Empty(Query(target, "PRAGMA foreign_key_check"));
        // Foreign keys are on again for what follows.
        Assert.Equal(1, Scalar(target, "PRAGMA foreign_keys"));
    }

    [Fact]
    public async Task A_rebuild_that_leaves_rows_without_their_parent_is_rolled_back_and_names_them()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__tables.sql", CascadingTables), ("V2__rebuild_parent.sql", RebuildParent("WHERE id = 1")));
        var failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationFailed, failed.ErrorId);
        Assert.Contains("child row 11 -> parent", failed.Message, StringComparison.Ordinal);
        Assert.Contains("rolled back completely", failed.Message, StringComparison.Ordinal);
        Assert.Equal(2, Scalar(target, "SELECT COUNT(*) FROM parent"));
        Assert.Equal(2, Scalar(target, "SELECT COUNT(*) FROM child"));
    }

    [Fact]
    public async Task A_failed_preflight_stops_the_migration_unless_Force()
    {
        var target = await Engine.CreateDatabaseAsync();
        using var writer = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={target.FilePath};Pooling=False");
        writer.Open();
        using (var transaction = writer.BeginTransaction(deferred: false))
        {
            var ex = Assert.Throws<DbMigrationException>(() =>
                new InvokeDatabaseMigrationCommand { Database = target, Path = WriteOne(), SkipBackupMode = true }.Invoke(new RecordingHost(), CancellationToken.None));
            Assert.Equal(ErrorIds.MigrationPreflightFailed, ex.ErrorId);
            Assert.Contains("PF003", ex.Message, StringComparison.Ordinal);
        }
    }

    private string WriteOne()
    {
        var folder = Folder(("V1__t.sql", "CREATE TABLE t (id INTEGER);"));
        return folder;
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlMigrationEngineTests(PostgresServer server) : MigrationEngineTests(server, server.Password)
{
    protected override string SlowStatement => "SELECT pg_sleep(30)";

    protected override string OutsideTransactionOnly => "CREATE INDEX CONCURRENTLY ix_parent_name ON parent (name)";

    [Fact]
    public Task A_statement_gives_up_waiting_for_a_lock_after_the_statement_lock_timeout() => AssertAStatementGivesUpWaitingForALockAsync();

    [Fact]
    public Task A_script_that_sets_the_role_that_owns_what_it_creates_leaves_the_run_in_place() =>
        AssertAScriptThatMovesTheSessionLeavesTheRunInPlace(async () =>
        {
            // The owner may not write the journal: the journal is written as the user who migrates.
            var role = "owner_" + Guid.NewGuid().ToString("N")[..8];
            await server.ExecuteAsync(server.Admin, $"CREATE ROLE {role} NOLOGIN");
            return $"GRANT ALL ON SCHEMA public TO {role};\nSET ROLE {role};\nCREATE TABLE owned (id integer);";
        });

    [Fact]
    public async Task A_second_role_is_told_the_GRANT_that_lets_it_write_the_journal_another_role_created()
    {
        // The DBA applied V1 as postgres; the deploy role, which owns the database, applies V2 later.
        var target = await Engine.CreateDatabaseAsync();
        var role = "deploy_" + Guid.NewGuid().ToString("N")[..8];
        await server.ExecuteAsync(server.Admin, $"CREATE ROLE {role} LOGIN PASSWORD 'deploy-pass'; ALTER DATABASE \"{target.Database}\" OWNER TO {role}");
        await server.ExecuteAsync(target, $"GRANT ALL ON SCHEMA public TO {role}");
        Migrate(target, Folder(Standard[0]));
        await server.ExecuteAsync(target, $"GRANT ALL ON parent TO {role}");
        var deploy = target.WithCredential(role, "deploy-pass");
        var folder = Folder(Standard[0], Standard[1]);

        var refused = Assert.Throws<DbMigrationException>(() => Migrate(deploy, folder));
        Assert.Equal((ErrorIds.MigrationJournalNotWritable, ErrorKind.PermissionDenied), (refused.ErrorId, refused.Kind));
        Assert.Contains($"was created by postgres, who migrated this database first, and {role} may not write to it", refused.Message, StringComparison.Ordinal);
        var grant = $"GRANT SELECT, INSERT, UPDATE, DELETE ON dbmigration_history, dbmigration_history_events, dbmigration_schema_snapshot, dbmigration_lock TO {role}";
        Assert.Contains(grant, refused.Message, StringComparison.Ordinal);
        Assert.False(TableExists(target, "child"));

        // The GRANT as given is all it takes.
        await server.ExecuteAsync(target, grant);
        Assert.Equal(["2"], Migrate(deploy, folder).Select(r => r.Version));
        Assert.True(TableExists(target, "child"));
    }

    [Fact]
    public async Task A_pg_dump_data_block_is_refused_by_its_line_before_anything_runs()
    {
        // pg_dump writes rows as COPY … FROM stdin followed by the rows themselves: psql's syntax, not SQL. Sent to
        // the server it failed with Npgsql's bare "NpgsqlTransaction" (ObjectDisposedException).
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(Standard[0], ("V2__seed.sql", "-- Data for parent\nCOPY public.parent (id, name) FROM stdin;\n2\tb\n3\tc\n\\.\n"));
        var refused = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationInvalidFile, refused.ErrorId);
        Assert.Contains("V2__seed.sql line 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("pg_dump --inserts", refused.Message, StringComparison.Ordinal);
        Assert.False(TableExists(target, "parent"));

        var query = Assert.Throws<DbMigrationException>(() => Query(target, "COPY parent (id, name) FROM stdin;\n2\tb\n\\."));
        Assert.Equal(ErrorIds.QueryClientSyntax, query.ErrorId);
    }

    [Fact]
    public Task A_pg_dump_style_script_that_empties_the_search_path_leaves_the_run_in_place() =>
        AssertAScriptThatMovesTheSessionLeavesTheRunInPlace(() => Task.FromResult("SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.qualified (id integer);"));

    protected override string[] ParentTrigger =>
    [
        "CREATE FUNCTION parent_fill_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.name = '' THEN NEW.name := 'x'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER parent_fill BEFORE INSERT ON parent FOR EACH ROW EXECUTE FUNCTION parent_fill_name()",
    ];

    [Fact]
    public async Task A_migration_with_a_BEGIN_ATOMIC_function_and_a_rule_of_two_actions_applies_and_undoes()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__counts.sql", """
            -- migrate:up
            CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE VIEW v AS SELECT id FROM a;
            CREATE FUNCTION both_counts() RETURNS bigint LANGUAGE sql
            BEGIN ATOMIC
                SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b);
            END;
            CREATE RULE v_insert AS ON INSERT TO v DO INSTEAD (INSERT INTO a VALUES (new.id); INSERT INTO b VALUES (new.id));
            -- migrate:down
            DROP FUNCTION both_counts(); DROP VIEW v; DROP TABLE b; DROP TABLE a;
            """));
        var host = new RecordingHost();
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true, ForceMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Query(target, "INSERT INTO v VALUES (1)");
        Assert.Equal(2L, Query(target, "SELECT both_counts() AS n").Single()["n"]);

        new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Empty(Query(target, "SELECT proname FROM pg_proc WHERE proname = 'both_counts'"));
    }

    [Fact]
    public async Task A_transaction_none_migration_runs_outside_a_transaction()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__table.sql", "CREATE TABLE t (id integer);"), ("V2__concurrent_index.sql", "-- transaction: none\nCREATE INDEX CONCURRENTLY ix_t ON t (id);"));
        var host = new RecordingHost();
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true, ForceMode = true }.Invoke(host, CancellationToken.None);

        Assert.Equal(["1", "2"], host.ObjectsOf<MigrationRun>().Select(r => r.Version));
        Assert.False(host.ObjectsOf<MigrationRun>().Last().Transactional);
        Assert.Contains(host.Warnings, w => w.Contains("outside a transaction", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_migration_lock_is_held_in_the_session_that_writes_its_heartbeat()
    {
        var target = await Engine.CreateDatabaseAsync();
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (await MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(10), force: false, null, CancellationToken.None))
        {
            // The session holding the advisory lock last ran the lock row's INSERT (or a heartbeat since): one
            // connection serves both, so losing it loses the lock with the heartbeat.
            var holders = Query(target, """
                SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """);
            Assert.Contains("dbmigration_lock", Assert.Single(holders)[0]?.ToString(), StringComparison.Ordinal);
        }

        Assert.Empty(Query(target, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"));
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbMigrationEngineTests(MariaDbServer server) : MigrationEngineTests(server, server.Password)
{
    protected override string SlowStatement => "SELECT SLEEP(30)";

    protected override string OutsideTransactionOnly => "OPTIMIZE TABLE parent";

    protected override string OpenTransactionStatement => "SET autocommit = 0";

    [Fact]
    public Task A_statement_gives_up_waiting_for_a_lock_after_the_statement_lock_timeout() => AssertAStatementGivesUpWaitingForALockAsync();

    [Fact]
    public async Task A_scripts_foreign_key_checks_off_does_not_carry_into_the_next_step()
    {
        // mysqldump-style scripts switch the checks off; a later step must not write orphans unchecked.
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(
            Standard[0],
            Standard[1],
            ("V3__load.sql", "SET FOREIGN_KEY_CHECKS = 0;\nINSERT INTO child (id, parent_id) VALUES (1, 1);\n"),
            ("V4__orphan.sql", "INSERT INTO child (id, parent_id) VALUES (2, 99);\n"));
        var failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Contains("V4", failed.Message, StringComparison.Ordinal);
        Assert.Contains("foreign key", failed.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, Scalar(target, "SELECT COUNT(*) FROM child WHERE parent_id = 99"));
    }

    [Fact]
    public Task A_script_that_uses_another_database_leaves_the_run_in_place() =>
        AssertAScriptThatMovesTheSessionLeavesTheRunInPlace(async () => $"USE `{(await Engine.CreateDatabaseAsync()).Database}`;\nCREATE TABLE elsewhere (id integer);");

    protected override string[] ParentTrigger => ["CREATE TRIGGER parent_fill BEFORE INSERT ON parent FOR EACH ROW BEGIN IF NEW.name = '' THEN SET NEW.name = 'x'; END IF; END"];

    [Fact]
    public async Task The_plan_says_up_front_that_DDL_is_not_transactional()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__table.sql", "CREATE TABLE t (id integer);"));
        var host = new RecordingHost { WhatIf = true };
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true }.Invoke(host, CancellationToken.None);

        Assert.Contains(host.Warnings, w => w.Contains("not transactional", StringComparison.Ordinal));
        Assert.Contains("NOT in a transaction", Assert.Single(host.ShouldProcessCalls).Action, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_run_warns_each_note_once()
    {
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__table.sql", "CREATE TABLE t (id integer);"), ("V2__other.sql", "CREATE TABLE u (id integer);"));
        var host = new RecordingHost();
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true }.Invoke(host, CancellationToken.None);

        Assert.Equal(2, host.Objects.Count);
        Assert.Equal(2, host.Warnings.Count(w => w.Contains("not transactional", StringComparison.Ordinal)));
        Assert.Equal(host.Warnings.Count, host.Warnings.Distinct().Count());
    }

    [Fact]
    public async Task Scripts_written_for_the_mysql_client_run_as_written_DELIMITER_and_compound_bodies_included()
    {
        // The shape of a typical hand-written MySQL migration: a procedure between DELIMITER lines, and a trigger
        // whose body has IF … END IF without them. Both failed before (DELIMITER was sent; END IF ended the body).
        var target = await Engine.CreateDatabaseAsync();
        var folder = Folder(("V1__routines.sql", """
            -- migrate:up
            CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL);
            DELIMITER $$
            CREATE PROCEDURE bump(IN step INT)
            BEGIN
              UPDATE counters SET n = n + step;
              SELECT 'bumped; ok' AS note;
            END$$
            DELIMITER ;
            CREATE TRIGGER counters_bi BEFORE INSERT ON counters FOR EACH ROW
            BEGIN
              IF NEW.n > 100 THEN SET NEW.n = 100; END IF;
              IF NEW.n < 0 THEN SET NEW.n = 0; END IF;
            END;
            INSERT INTO counters VALUES (1, 500), (2, -5);
            -- migrate:down
            DROP PROCEDURE bump;
            DROP TABLE counters;
            """));
        var host = new RecordingHost();
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);

        Query(target, "CALL bump(1)");
        Assert.Equal(["1:101", "2:1"], Query(target, "SELECT id, n FROM counters ORDER BY id").Select(r => $"{r[0]}:{r[1]}"));

        new UndoDatabaseMigrationCommand { Database = target, Path = folder }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Empty(Query(target, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"));
    }

    protected override void AssertFailureOutcome(DatabaseTarget target, DbMigrationException error)
    {
        Assert.Equal(ErrorIds.MigrationPartiallyApplied, error.ErrorId);
        Assert.Contains("PARTIALLY APPLIED", error.Message, StringComparison.Ordinal);
        // The server's words end as a sentence, and the way out follows: the journal blocks every run until then.
        Assert.Contains("doesn't exist.", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Repair-MigrationHistory -Database '{target}' -Version 2 -Resolve Applied (or RolledBack).", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_partly_applied_step_names_the_restore_that_puts_the_database_back_as_before_the_run()
    {
        var target = await Engine.CreateDatabaseAsync();
        Migrate(target, Folder(Standard[0]));
        var folder = Folder(Standard[0], ("V2__half.sql", "ALTER TABLE parent ADD COLUMN note VARCHAR(100);\nINSERT INTO no_such_table VALUES (1);\n"));
        var backups = _dir.File("partial-backups");

        var failed = Assert.Throws<DbMigrationException>(() => Migrate(target, folder, c => { c.SkipBackupMode = false; c.BackupPath = backups; }));
        Assert.Equal(ErrorIds.MigrationPartiallyApplied, failed.ErrorId);
        Assert.Equal(3, Convert.ToInt32(Query(target, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'parent'").Single()[0], CultureInfo.InvariantCulture));
        var backupId = Assert.Single(new BackupRepository(backups).List()).Id;
        var restore = $"Restore-MigrationBackup -Database '{target}' -Id {backupId}";
        Assert.Contains(restore, failed.Message, StringComparison.Ordinal);
        Assert.Equal(1, CountOf(failed.Message, backupId));
        var blocked = Assert.Throws<DbMigrationException>(() => Migrate(target, folder));
        Assert.Equal(ErrorIds.MigrationJournalBlocked, blocked.ErrorId);
        Assert.Contains(restore, blocked.Message, StringComparison.Ordinal);

        // Done as the message says, the column is gone and the journal is as before the run: V2 is pending again.
        new RestoreMigrationBackupCommand { Database = target, Id = backupId, Path = backups, ForceMode = true, SkipSafetyBackupMode = true }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None);
        Assert.Equal(2, Convert.ToInt32(Query(target, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'parent'").Single()[0], CultureInfo.InvariantCulture));
        Assert.Equal(MigrationState.Pending, Status(target, folder).Single(s => s.Version == "2").State);
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, string.Empty, StringComparison.Ordinal).Length) / part.Length;
}
