using System.Globalization;
using System.Text.Json;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.PowerShell.Commands;
using DbMigration.Query;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;
using DbMigration.Timezone;
using NodaTime;
using NodaTime.Text;
using NodaTime.TimeZones;

namespace DbMigration.Tests.Timezone;

/// <summary>Invoke-TimezoneMigration and Undo-TimezoneMigration on every engine, on mixed real-world values.</summary>
public abstract class TimezoneEngineTests(IEngineUnderTest engine, string? password) : IDisposable
{
    private readonly TempDirectory _dir = new();

    // A SQLite engine is built per test with its own temp folder (a slow-statement test leaves 2 GB in it); the
    // server engines are shared collection fixtures that xUnit disposes.
    public void Dispose()
    {
        _dir.Dispose();
        (Engine as SqliteEngine)?.Dispose();
    }

    protected IEngineUnderTest Engine { get; } = engine;

    /// <summary>The engine's naive timestamp type (PostgreSQL timestamp, MariaDB DATETIME(6)); null for SQLite.</summary>
    protected abstract string? NativeType { get; }

    private static readonly (int Id, string? Created)[] Rows =
    [
        (1, "2024-07-01 12:00:00"),            // summer, exact
        (2, "2024-01-15T08:30:00.123456"),      // winter, fractional
        (3, "2024-03-10 02:30:00"),            // New York gap
        (4, "2024-11-03 01:30:00"),            // New York overlap
        (5, "2024-06-01"),                     // date only
        (6, "2024-06-01T10:00:00Z"),            // already UTC
        (7, "2024-06-01 10:00:00+02:00"),       // already has an offset
        (8, "1700000000"),                     // epoch seconds as text
        (9, "1700000000123"),                  // epoch milliseconds as text
        (10, "not a date"),                    // unparseable
        (11, null),
    ];

    protected static List<QueryRow> Query(DatabaseTarget target, string sql)
    {
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<QueryRow>().ToList();
    }

    protected async Task<DatabaseTarget> SeededAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        var native = NativeType is null ? string.Empty : $", logged_at {NativeType} NULL";
        Query(target, $"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at VARCHAR(40) NULL, note VARCHAR(40) NULL{native})");
        foreach (var (id, created) in Rows)
        {
            var logged = NativeType is null ? string.Empty : $", {(id is 1 or 2 or 3 or 4 ? $"'{created}'" : "NULL")}";
            Query(target, $"INSERT INTO events (id, created_at, note{(NativeType is null ? string.Empty : ", logged_at")}) VALUES ({id}, {(created is null ? "NULL" : $"'{created}'")}, 'row {id}'{logged})");
        }

        Query(target, "CREATE INDEX ix_events_created ON events (created_at); CREATE VIEW recent_events AS SELECT id, created_at FROM events" +
            (NativeType is null ? string.Empty : "; CREATE VIEW logged_events AS SELECT id, logged_at FROM events"));
        return target;
    }

    protected string Fingerprint(DatabaseTarget target) =>
        string.Join("|", Query(target, "SELECT id, created_at" + (NativeType is null ? string.Empty : ", logged_at") + " FROM events ORDER BY id")
            .Select(r => string.Join(",", r.Values.Select(v => v switch { null => "NULL", DateTime d => d.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture), _ => Convert.ToString(v, CultureInfo.InvariantCulture) }))));

    protected TimezoneMigrationResult Run(DatabaseTarget target, bool whatIf = false, AmbiguousTimePolicy ambiguous = AmbiguousTimePolicy.Earlier, NonexistentTimePolicy nonexistent = NonexistentTimePolicy.ShiftForward)
    {
        var host = new RecordingHost(_dir.Path) { WhatIf = whatIf };
        new InvokeTimezoneMigrationCommand
        {
            Database = target,
            SourceTimeZone = "America/New_York",
            Ambiguous = ambiguous,
            Nonexistent = nonexistent,
            BackupPath = _dir.File("backups"),
            ReportPath = _dir.File("reports"),
        }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        return Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
    }

    protected string ReportFolder => _dir.File("reports");

    /// <summary>
    /// Another session holds a lock the conversion needs (<paramref name="holdSql"/> inside its open transaction):
    /// the run gives up after -StatementLockTimeout with a clear error and the table as it was, instead of waiting
    /// with every later query queued behind it; with 0 it waits for the other session and converts.
    /// </summary>
    protected async Task AssertARunGivesUpWaitingForALockAsync(string holdSql)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"CREATE TABLE visits (id INTEGER PRIMARY KEY, at {NativeType} NOT NULL)");
        Query(target, "INSERT INTO visits (id, at) VALUES (1, '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00'), (3, '2024-07-04 09:00:00')");
        var before = Fingerprint(target, "visits");
        RecordingHost Convert(int statementLockTimeout, RecordingHost? host = null)
        {
            host ??= new RecordingHost(_dir.Path);
            new InvokeTimezoneMigrationCommand
            {
                Database = target, SourceTimeZone = "America/New_York", Table = ["visits"], StatementLockTimeout = statementLockTimeout,
                Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(host, CancellationToken.None);
            return host;
        }

        // Let go after 20 s whatever happens, so a run that waits without limit fails this test instead of hanging it.
        using var early = new CancellationTokenSource();
        var released = (await LockHolder.HoldAsync(target, holdSql)).ReleaseAsync(TimeSpan.FromSeconds(20), early.Token);
        var failing = new RecordingHost(_dir.Path);
        var refused = Assert.Throws<DbMigrationException>(() => Convert(1, failing));
        await early.CancelAsync();
        await released;
        Assert.Equal(ErrorIds.TimezoneLockWaitTimeout, refused.ErrorId);
        Assert.Contains("-StatementLockTimeout", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, Fingerprint(target, "visits"));

        // The warning says what the run left: nothing (PostgreSQL's ALTER rolled back), or a table that commits in
        // batches and may be partly converted (MariaDB), with the undo to run first.
        var warning = Assert.Single(failing.Warnings, w => w.StartsWith("Run ", StringComparison.Ordinal));
        if (!warning.Contains("nothing was changed", StringComparison.Ordinal))
        {
            var runId = System.Text.RegularExpressions.Regex.Match(warning, @"-Id (tz-[0-9A-Za-z-]+)").Groups[1].Value;
            new UndoTimezoneMigrationCommand { Database = target, Id = runId }.Invoke(new RecordingHost(), CancellationToken.None);
            Assert.Equal(before, Fingerprint(target, "visits"));
        }

        var finishing = (await LockHolder.HoldAsync(target, holdSql)).ReleaseAsync(TimeSpan.FromSeconds(1.5), CancellationToken.None);
        var waited = Convert(0);
        await finishing;
        Assert.Empty(waited.Errors);
        var result = Assert.Single(waited.ObjectsOf<TimezoneMigrationResult>());
        Assert.True(result.Validation!.Passed);
        Assert.Equal(3, Assert.Single(result.Columns).Converted);
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1, "at", "visits"));

        // Undo gives up the same way, and the run stays undoable: an undo once the lock is gone restores it.
        using var earlyUndo = new CancellationTokenSource();
        var heldForUndo = (await LockHolder.HoldAsync(target, holdSql)).ReleaseAsync(TimeSpan.FromSeconds(20), earlyUndo.Token);
        var undoRefused = Assert.Throws<DbMigrationException>(() =>
            new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId, StatementLockTimeout = 1 }.Invoke(new RecordingHost(), CancellationToken.None));
        await earlyUndo.CancelAsync();
        await heldForUndo;
        Assert.Equal(ErrorIds.TimezoneLockWaitTimeout, undoRefused.ErrorId);
        Assert.Contains("Undo-TimezoneMigration again", undoRefused.Message, StringComparison.Ordinal);
        Assert.Contains("-StatementLockTimeout", undoRefused.Message, StringComparison.Ordinal);

        var finishingUndo = (await LockHolder.HoldAsync(target, holdSql)).ReleaseAsync(TimeSpan.FromSeconds(1.5), CancellationToken.None);
        var undone = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId, StatementLockTimeout = 0 }.Invoke(undone, CancellationToken.None);
        await finishingUndo;
        Assert.Empty(undone.Errors);
        Assert.Equal(before, Fingerprint(target, "visits"));
    }

    /// <summary>
    /// A CHECK constraint against a local date-time literal is kept, but its boundary moves once the values are UTC
    /// (on PostgreSQL the literal is then read in each session's time zone): the run names it in a warning.
    /// </summary>
    /// <summary>
    /// A generated timestamp column is not converted (the server computes it; MariaDB refuses to have it set), and
    /// naming it is refused. <paramref name="afterRun"/>: its values after the run, then after the undo.
    /// </summary>
    protected async Task AssertGeneratedColumnsAreLeftToTheEngineAsync(string createSql, string table, string generated, string[] afterRun)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, createSql);
        string Generated() => Convert.ToDateTime(Query(target, $"SELECT {generated} FROM {table}").Single()[0], CultureInfo.InvariantCulture).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

        var named = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Column = [$"{table}.{generated}"], SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, named.ErrorId);
        Assert.Contains("generated column", named.Message, StringComparison.Ordinal);

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal(["at"], result.Columns.Select(c => c.Column));
        Assert.True(result.Validation!.Passed);
        Assert.Equal(afterRun[0], Generated());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(afterRun[^1], Generated());
    }

    protected async Task AssertALocalCheckConstraintIsNamedAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"""
            CREATE TABLE booking (id INTEGER PRIMARY KEY, starts {NativeType} NOT NULL, ends {NativeType} NOT NULL,
                CONSTRAINT ends_after_start CHECK (ends > starts), CONSTRAINT from_2020 CHECK (starts >= '2020-01-01 00:00:00'));
            INSERT INTO booking VALUES (1, '2024-07-01 12:00:00', '2024-07-01 13:00:00');
            """);
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var warning = Assert.Single(host.Warnings, w => w.Contains("check constraint", StringComparison.Ordinal));
        Assert.Contains("from_2020", warning, StringComparison.Ordinal);
        Assert.Contains("2020-01-01 00:00:00", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("ends_after_start", warning, StringComparison.Ordinal);
    }

    /// <summary>
    /// A table keyed by several columns is refused with the -ExcludeColumn that leaves it out, and that works: the
    /// column was refused while discovery described it, before the exclusions applied, so it could not be left out.
    /// </summary>
    /// <summary>A CHECK that UTC values break (<paramref name="check"/> holds for 15:00 local, not for 19:00 UTC) is named, and nothing changes.</summary>
    protected async Task AssertACheckRefusingTheConvertedValuesIsNamedAsync(string check)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"""
            CREATE TABLE shifts (id INTEGER PRIMARY KEY, at {NativeType} NOT NULL, CONSTRAINT at_shape CHECK ({check}));
            INSERT INTO shifts VALUES (1, '2024-07-01 15:00:00');
            """);
        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.Contains("shifts: a CHECK constraint refuses the converted values of at", refused.Message, StringComparison.Ordinal);
        Assert.Contains("-ExcludeColumn", refused.Message, StringComparison.Ordinal);
        Assert.Equal("2024-07-01 15:00:00", Convert.ToString(Query(target, $"SELECT {AsText("at")} FROM shifts").Single()[0], CultureInfo.InvariantCulture)?.Replace('T', ' ')[..19]);
    }

    protected async Task AssertACompositeKeyTableIsRefusedAndCanBeLeftOutAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"""
            CREATE TABLE readings (device VARCHAR(20) NOT NULL, seq INTEGER NOT NULL, at {NativeType} NOT NULL, PRIMARY KEY (device, seq));
            CREATE TABLE visits (id INTEGER PRIMARY KEY, at {NativeType} NOT NULL);
            INSERT INTO readings VALUES ('a', 1, '2024-07-01 12:00:00');
            INSERT INTO visits VALUES (1, '2024-07-01 12:00:00');
            """);
        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneNoPrimaryKey, refused.ErrorId);
        Assert.Contains("Nothing was changed", refused.Message, StringComparison.Ordinal);
        Assert.Contains("-ExcludeColumn readings.at", refused.Message, StringComparison.Ordinal);

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, ExcludeColumn = ["readings.at"] }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal(["visits.at"], result.Columns.Select(c => $"{c.Table.Split('.')[^1]}.{c.Column}"));
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1, "at", "visits"));
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, $"SELECT {AsText("at")} FROM readings").Single()[0], CultureInfo.InvariantCulture)?.Replace('T', ' ')[..19]);
    }

    protected async Task AssertEveryRefusedColumnIsNamedInOneErrorAsync()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"""
            CREATE TABLE readings (device VARCHAR(20) NOT NULL, seq INTEGER NOT NULL, logged VARCHAR(40), PRIMARY KEY (device, seq));
            CREATE TABLE slots (at {NativeType} NOT NULL PRIMARY KEY, label VARCHAR(20));
            CREATE TABLE audit (at {NativeType}, logged {NativeType});
            CREATE TABLE visits (id INTEGER PRIMARY KEY, at {NativeType} NOT NULL);
            INSERT INTO readings VALUES ('a', 1, '2024-07-01 12:00:00');
            INSERT INTO slots VALUES ('2024-07-01 12:00:00', 'x');
            INSERT INTO audit VALUES ('2024-07-01 12:00:00', '2024-07-01 12:00:00');
            INSERT INTO visits VALUES (1, '2024-07-01 12:00:00');
            """);

        // One error names all four columns (three tables, two reasons), so one -ExcludeColumn list settles them.
        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.StartsWith("4 of the columns found cannot be converted. Nothing was changed.", refused.Message, StringComparison.Ordinal);
        Assert.Contains("slots.at is the table's primary key", refused.Message, StringComparison.Ordinal);
        Assert.Contains("readings.logged cannot be converted: its primary key has several columns (device, seq)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("audit has no primary key", refused.Message, StringComparison.Ordinal);
        var exclude = refused.Message.Split(Environment.NewLine)[^1];
        Assert.StartsWith("To leave them all out: -ExcludeColumn ", exclude, StringComparison.Ordinal);
        var names = exclude["To leave them all out: -ExcludeColumn ".Length..].Split(", ");
        Assert.Equal(["audit.at", "audit.logged", "readings.logged", "slots.at"], names.Order(StringComparer.Ordinal));
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, $"SELECT {AsText("at")} FROM visits").Single()[0], CultureInfo.InvariantCulture)?.Replace('T', ' ')[..19]);

        // -WhatIf names them the same way, and the list as given lets the run through.
        var whatIf = new RecordingHost(ReportFolder) { WhatIf = true };
        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(whatIf, CancellationToken.None));
        Assert.Equal(refused.Message, error.Message);
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, ExcludeColumn = names }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Equal(["visits.at"], Assert.Single(host.ObjectsOf<TimezoneMigrationResult>()).Columns.Select(c => $"{c.Table.Split('.')[^1]}.{c.Column}"));
    }

    /// <summary>
    /// Converting one side of a foreign key leaves values that no longer match the other side's: PostgreSQL's ALTER
    /// failed with a bare foreign key violation after the backup, MariaDB's would fail part-way through its
    /// batches, and SQLite (converting with foreign key checks off) broke the reference in silence.
    /// </summary>
    [Fact]
    public async Task A_column_on_either_side_of_a_foreign_key_is_refused_before_anything_changes()
    {
        var target = await Engine.CreateDatabaseAsync();
        var type = NativeType ?? "TEXT";
        Query(target, $"CREATE TABLE rooms (id INTEGER PRIMARY KEY, opened {type} NOT NULL UNIQUE, note VARCHAR(10))");
        Query(target, $"CREATE TABLE visits (id INTEGER PRIMARY KEY, room_opened {type} NULL, FOREIGN KEY (room_opened) REFERENCES rooms (opened))");
        Query(target, "INSERT INTO rooms VALUES (1, '2024-07-01 12:00:00', 'a')");
        Query(target, "INSERT INTO visits VALUES (1, '2024-07-01 12:00:00')");
        string Values() => string.Join("|", Query(target, $"SELECT {AsText("opened")} FROM rooms").Concat(Query(target, $"SELECT {AsText("room_opened")} FROM visits")).Select(r => r[0]));
        var before = Values();

        foreach (var table in new[] { "rooms", "visits" })
        {
            var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
            {
                Database = target, SourceTimeZone = "America/New_York", Table = [table], SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
            Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
            Assert.Contains("foreign key", error.Message, StringComparison.Ordinal);
            Assert.Contains("Nothing was changed", error.Message, StringComparison.Ordinal);
            Assert.Equal(before, Values());
        }
    }

    /// <summary>
    /// Rows keyed by long strings (session tokens, URLs): the rollback record keeps each changed row's key as text,
    /// and a key longer than the 128 characters it held failed the whole run with a bare "value too long".
    /// </summary>
    [Fact]
    public async Task Rows_keyed_by_strings_longer_than_128_characters_convert_and_undo_exactly()
    {
        var target = await Engine.CreateDatabaseAsync();
        var native = NativeType is null ? string.Empty : $", logged_at {NativeType} NULL";
        Query(target, $"CREATE TABLE sessions (token VARCHAR(400) NOT NULL PRIMARY KEY, issued_at VARCHAR(40) NULL{native})");
        var values = new[] { "2024-07-01 12:00:00", "2024-03-10 02:30:00", "2024-11-03 01:30:00", "2024-01-15 08:30:00" };
        for (var i = 0; i < values.Length; i++)
        {
            var token = new string((char)('a' + i), 200) + new string('0', i) + new string('z', 150);
            Query(target, $"INSERT INTO sessions VALUES ('{token}', '{values[i]}'{(NativeType is null ? string.Empty : $", '{values[i]}'")})");
        }

        var columns = NativeType is null ? "issued_at" : $"issued_at, {AsText("logged_at")}";
        string Rows() => string.Join("|", Query(target, $"SELECT length(token), token, {columns} FROM sessions ORDER BY token").Select(r => string.Join(",", r.Values)));
        var before = Rows();
        Assert.Contains("353,", before, StringComparison.Ordinal);

        var host = new RecordingHost(_dir.Path);
        new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Table = ["sessions"],
            Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(host, CancellationToken.None);

        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        var issued = Assert.Single(result.Columns, c => c.Column == "issued_at");
        Assert.Equal(4, issued.Converted);
        Assert.Equal(1, issued.Nonexistent);
        Assert.Equal(1, issued.Ambiguous);
        Assert.Equal("2024-03-10T07:30:00Z", Query(target, "SELECT issued_at FROM sessions WHERE token LIKE 'b%'").Single()[0]);
        Assert.NotEqual(before, Rows());

        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(undo, CancellationToken.None);
        Assert.Empty(undo.Errors);
        Assert.Equal(before, Rows());
    }

    private string Fingerprint(DatabaseTarget target, string table) =>
        string.Join("|", Query(target, $"SELECT id, {AsText("at")} FROM {table} ORDER BY id").Select(r => string.Join(",", r.Values)));

    private string Value(DatabaseTarget target, int id, string column = "created_at", string table = "events")
    {
        var value = Query(target, $"SELECT {column} FROM {table} WHERE id = {id}").Single()[0];
        return value switch
        {
            DateTime d => d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        };
    }

    [Fact]
    public async Task A_report_path_that_cannot_be_written_is_refused_before_anything_changes()
    {
        var target = await SeededAsync();
        var before = Fingerprint(target);
        File.WriteAllText(_dir.File("a-file"), "not a folder");
        foreach (var reportPath in new[] { _dir.File("a-file"), Path.Combine(_dir.File("a-file"), "reports") })
        {
            // A policy that lets the run convert: without the check it would, and fail only at its report.
            var command = new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackupMode = true, ReportPath = reportPath };

            var error = Assert.Throws<DbMigrationException>(() => command.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

            Assert.Equal(ErrorIds.TimezoneReportPathNotWritable, error.ErrorId);
            Assert.Equal(ErrorKind.WriteError, error.Kind);
            Assert.Contains("Nothing was changed", error.Message, StringComparison.Ordinal);
            Assert.Equal(before, Fingerprint(target));
        }

        Assert.Equal("not a folder", File.ReadAllText(_dir.File("a-file")));
    }

    /// <summary>
    /// The report folder becomes a file while the run converts (a path reused, say): the converted data and the
    /// run id are not lost to that, the result comes back with a warning naming the undo.
    /// </summary>
    [Fact]
    public async Task A_report_that_fails_after_the_conversion_warns_and_still_returns_the_result()
    {
        var target = await SeededAsync();
        var reports = _dir.File("reports-taken");
        Directory.CreateDirectory(reports);
        var progress = new ReportFolderTurnsIntoAFile(reports);

        var result = await new TimezoneMigrationService().RunAsync(new TimezoneMigrationRequest
        {
            Target = target,
            SourceTimeZone = "America/New_York",
            Ambiguous = AmbiguousTimePolicy.Earlier,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            SkipBackup = true,
            ReportPath = reports,
        }, progress, CancellationToken.None);

        Assert.True(progress.Turned);
        Assert.Null(result.ReportPath);
        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
        var warning = Assert.Single(progress.Warnings, w => w.Contains("report could not be written", StringComparison.Ordinal));
        Assert.Contains($"Undo-TimezoneMigration -Database '{target}' -Id {result.RunId}", warning, StringComparison.Ordinal);
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1));
    }

    private sealed class ReportFolderTurnsIntoAFile(string folder) : IProgress<DbMigration.Operations.OperationUpdate>
    {
        public bool Turned { get; private set; }

        public List<string> Warnings { get; } = [];

        public void Report(DbMigration.Operations.OperationUpdate value)
        {
            if (value is DbMigration.Operations.MessageUpdate { Level: DbMigration.Operations.MessageLevel.Warning } warning)
            {
                Warnings.Add(warning.Text);
            }

            if (!Turned && Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder);
                File.WriteAllText(folder, "taken");
                Turned = true;
            }
        }
    }

    [Fact]
    public async Task WhatIf_discovers_the_columns_counts_every_kind_of_value_and_changes_nothing()
    {
        var target = await SeededAsync();
        var before = Fingerprint(target);
        var analysis = Run(target, whatIf: true);

        Assert.True(analysis.AnalysisOnly);
        var created = Assert.Single(analysis.Columns, c => c.Column == "created_at");
        Assert.Contains("sampled values are date-times", created.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(analysis.Columns, c => c.Column == "note");
        var withoutCreated = new RecordingHost(_dir.Path) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", ExcludeColumn = ["events.created_at"], SkipBackupMode = true, ReportPath = _dir.File("reports") }.Invoke(withoutCreated, CancellationToken.None);
        Assert.DoesNotContain(Assert.Single(withoutCreated.ObjectsOf<TimezoneMigrationResult>()).Columns, c => c.Column == "created_at");
        Assert.Equal(11, created.RowsSeen);
        Assert.Equal(2, created.AlreadyUtc);
        Assert.Equal(2, created.Epoch);
        Assert.Equal(1, created.Unparseable);
        Assert.Equal(1, created.Ambiguous);
        Assert.Equal(1, created.Nonexistent);
        if (NativeType is not null)
        {
            Assert.Contains(analysis.Columns, c => c.Column == "logged_at" && c.Reason.StartsWith("declared type", StringComparison.Ordinal));
        }

        Assert.Equal(before, Fingerprint(target));
    }

    [Fact]
    public async Task A_text_column_with_some_date_times_is_not_picked_but_named_and_converts_when_asked()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE mixed (id INTEGER PRIMARY KEY, at VARCHAR(40) NULL)");
        Query(target, "INSERT INTO mixed (id, at) VALUES (1, '2024-07-01 12:00:00'), (2, 'n/a'), (3, '2024-01-15 08:30:00'), (4, 'pending'), (5, '2024-06-01')");
        TimezoneMigrationResult Analyze(string[] columns, RecordingHost host)
        {
            new InvokeTimezoneMigrationCommand
            {
                Database = target,
                SourceTimeZone = "America/New_York",
                Column = columns,
                Ambiguous = AmbiguousTimePolicy.Earlier,
                Nonexistent = NonexistentTimePolicy.ShiftForward,
                SkipBackupMode = true,
                ReportPath = _dir.File("reports"),
            }.Invoke(host, CancellationToken.None);
            return Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        }

        var discovery = new RecordingHost(_dir.Path) { WhatIf = true };
        Assert.DoesNotContain(Analyze([], discovery).Columns, c => c.Column == "at");
        Assert.Contains(discovery.Warnings, w => w.Contains("mixed.at is not converted: 3 of 5", StringComparison.Ordinal) && w.Contains("-Column", StringComparison.Ordinal));

        // -ExcludeColumn silences it: the caller has decided.
        var excluded = new RecordingHost(_dir.Path) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", ExcludeColumn = ["mixed.at"], SkipBackupMode = true, ReportPath = _dir.File("reports") }.Invoke(excluded, CancellationToken.None);
        Assert.DoesNotContain(excluded.Warnings, w => w.Contains("mixed.at", StringComparison.Ordinal));

        var run = Analyze(["mixed.at"], new RecordingHost(_dir.Path));
        var at = Assert.Single(run.Columns);
        Assert.Equal(3, at.Converted);
        Assert.Equal(2, at.Unparseable);
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1, "at", "mixed"));
        Assert.Equal("n/a", Value(target, 2, "at", "mixed"));
    }

    [Fact]
    public async Task The_default_policy_refuses_dst_edge_values_and_changes_nothing()
    {
        var target = await SeededAsync();
        var before = Fingerprint(target);
        var ex = Assert.Throws<DbMigrationException>(() => Run(target, ambiguous: AmbiguousTimePolicy.Fail, nonexistent: NonexistentTimePolicy.Fail));

        Assert.Equal(ErrorIds.TimezoneAmbiguousTime, ex.ErrorId);
        Assert.Contains("key 4", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, Fingerprint(target));
    }

    [Fact]
    public async Task Converts_to_UTC_validates_reports_a_rerun_is_a_no_op_and_the_first_run_still_undoes()
    {
        var target = await SeededAsync();
        var original = Fingerprint(target);
        var result = Run(target);

        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        Assert.NotNull(result.BackupId);
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1));
        Assert.Equal("2024-01-15T13:30:00.123456Z", Value(target, 2));
        Assert.Equal("2024-03-10T07:30:00Z", Value(target, 3));
        Assert.Equal("2024-11-03T05:30:00Z", Value(target, 4));
        Assert.Equal("2024-06-01T04:00:00Z", Value(target, 5));
        Assert.Equal("2024-06-01T10:00:00Z", Value(target, 6));
        Assert.Equal("2024-06-01 10:00:00+02:00", Value(target, 7));
        Assert.Equal("2023-11-14T22:13:20Z", Value(target, 8));
        Assert.Equal("2023-11-14T22:13:20.123Z", Value(target, 9));
        Assert.Equal("not a date", Value(target, 10));
        Assert.Equal(string.Empty, Value(target, 11));
        if (NativeType is not null)
        {
            Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1, "logged_at"));
            Assert.Equal("2024-11-03T05:30:00Z", Value(target, 4, "logged_at"));
            Assert.Equal(4, Query(target, "SELECT id FROM logged_events WHERE logged_at IS NOT NULL").Count);
        }

        // Indexes and views that use the column are still there and still work.
        Assert.Equal("2024-07-01T16:00:00Z", Convert.ToString(Query(target, "SELECT created_at FROM recent_events WHERE id = 1").Single()[0], CultureInfo.InvariantCulture));
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            var events = (await provider.GetTablesAsync(connection, CancellationToken.None)).Single(t => t.Name.Name == "events");
            Assert.Contains(events.Indexes, i => i.Name == "ix_events_created");
        }

        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.ReportPath!, "report.json")));
        Assert.Equal(TimezoneResolver.TzdbVersion, report.RootElement.GetProperty("tzdbVersion").GetString());
        Assert.Contains(report.RootElement.GetProperty("issues").EnumerateArray(), i => i.GetProperty("key").GetString() == "10" && i.GetProperty("issue").GetString() == "unparseable");
        Assert.True(File.Exists(Path.Combine(result.ReportPath!, "summary.txt")));

        var before = Fingerprint(target);
        var again = Run(target);
        Assert.All(again.Columns, c => Assert.Equal(0, c.Converted));
        Assert.Equal(before, Fingerprint(target));
        Assert.True(again.Validation!.Passed, string.Join("\n", again.Validation.Checks));
        if (Engine is SqliteEngine)
        {
            // The no-op run kept no second copy of the table: only the first run's record is there.
            Assert.Equal([SqliteRecordOf(result.RunId)], Query(target, "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dbmigration_tz_rollback_%'").Select(r => (string)r[0]!));
        }

        // The no-op run sits between: undoing the first still gives back the originals.
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(original, Fingerprint(target));
    }

    private static string SqliteRecordOf(string runId) => $"dbmigration_tz_rollback_{runId.Replace('-', '_').ToLowerInvariant()}_0";

    [Fact]
    public async Task Undo_restores_the_original_values_byte_for_byte()
    {
        var target = await SeededAsync();
        var before = Fingerprint(target);
        var result = Run(target);
        Assert.NotEqual(before, Fingerprint(target));

        var host = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(host, CancellationToken.None);
        Assert.True(Assert.Single(host.ObjectsOf<TimezoneUndoResult>()).ValuesRestored > 0);
        Assert.Equal(before, Fingerprint(target));
        Assert.Equal(4, Query(target, "SELECT id FROM recent_events WHERE id <= 4").Count);
    }

    [Fact]
    public async Task Two_text_columns_of_a_table_convert_together_each_value_on_its_own_merits_and_undo_restores_both()
    {
        // One pass writes both columns of a row: a value that stays (NULL, already UTC, unparseable) must stay
        // while its neighbour converts, across pages.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE visits (id INTEGER PRIMARY KEY, arrived VARCHAR(40) NULL, left_at VARCHAR(40) NULL, note VARCHAR(20) NULL)");
        var rows = new List<string>
        {
            "(1, '2024-07-01 12:00:00', '2024-07-01 13:00:00', 'both')",
            "(2, '2024-07-01 12:00:00', NULL, 'left null')",
            "(3, '2024-07-01T16:00:00Z', '2024-07-01 13:00:00', 'arrived utc')",
            "(4, 'not a date', '2024-01-15 08:30:00', 'arrived bad')",
            "(5, '2024-07-01T16:00:00Z', '2024-07-01T17:00:00Z', 'both utc')",
            "(6, '2024-01-15 08:30:00', 'pending', 'left bad')",
        };
        rows.AddRange(Enumerable.Range(7, 244).Select(id => $"({id}, '2024-02-0{1 + (id % 9)} 10:00:00', '2024-08-0{1 + (id % 9)} 10:00:00', 'filler')"));
        Query(target, $"INSERT INTO visits (id, arrived, left_at, note) VALUES {string.Join(", ", rows)}");
        var before = Query(target, "SELECT id, arrived, left_at, note FROM visits ORDER BY id").Select(r => string.Join(",", r.Values)).ToList();

        var host = new RecordingHost(_dir.Path);
        new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Column = ["visits.arrived", "visits.left_at"], BatchSize = 100,
            SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        var arrived = result.Columns.Single(c => c.Column == "arrived");
        var left = result.Columns.Single(c => c.Column == "left_at");
        Assert.Equal((250L, 247L, 2L, 1L), (arrived.RowsSeen, arrived.Converted, arrived.AlreadyUtc, arrived.Unparseable));
        Assert.Equal((250L, 247L, 1L, 1L), (left.RowsSeen, left.Converted, left.AlreadyUtc, left.Unparseable));

        string Row(int id) => string.Join(",", Query(target, $"SELECT arrived, left_at, note FROM visits WHERE id = {id}").Single().Values);
        Assert.Equal("2024-07-01T16:00:00Z,2024-07-01T17:00:00Z,both", Row(1));
        Assert.Equal("2024-07-01T16:00:00Z,,left null", Row(2));
        Assert.Equal("2024-07-01T16:00:00Z,2024-07-01T17:00:00Z,arrived utc", Row(3));
        Assert.Equal("not a date,2024-01-15T13:30:00Z,arrived bad", Row(4));
        Assert.Equal("2024-07-01T16:00:00Z,2024-07-01T17:00:00Z,both utc", Row(5));
        Assert.Equal("2024-01-15T13:30:00Z,pending,left bad", Row(6));
        Assert.Equal("2024-02-08T15:00:00Z,2024-08-08T14:00:00Z,filler", Row(250));

        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(undo, CancellationToken.None);
        Assert.Empty(undo.Errors);
        Assert.Equal(494, Assert.Single(undo.ObjectsOf<TimezoneUndoResult>()).ValuesRestored);
        Assert.Equal(before, Query(target, "SELECT id, arrived, left_at, note FROM visits ORDER BY id").Select(r => string.Join(",", r.Values)).ToList());
    }

    [Fact]
    public async Task A_run_with_native_output_and_later_offsets_is_recorded_as_such_and_undoes_byte_for_byte()
    {
        // Undo reads the run's policies and output format back from its record to recognise the values it wrote.
        var target = await SeededAsync();
        var before = Fingerprint(target);
        var host = new RecordingHost(_dir.Path);
        new InvokeTimezoneMigrationCommand
        {
            Database = target,
            SourceTimeZone = "America/New_York",
            Ambiguous = AmbiguousTimePolicy.Later,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            OutputFormat = TimestampOutputFormat.Native,
            SkipBackupMode = true,
            ReportPath = _dir.File("reports"),
        }.Invoke(host, CancellationToken.None);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.True(result.Validation?.Passed);
        Assert.Equal("2024-11-03 06:30:00+00:00", Query(target, "SELECT created_at FROM events WHERE id = 4")[0][0]);

        var record = Query(target, $"SELECT options_json, columns_json FROM dbmigration_tz_runs WHERE run_id = '{result.RunId}'").Single();
        using (var options = JsonDocument.Parse((string)record[0]!))
        {
            Assert.Equal((int)AmbiguousTimePolicy.Later, options.RootElement.GetProperty("Ambiguous").GetInt32());
            Assert.Equal((int)NonexistentTimePolicy.ShiftForward, options.RootElement.GetProperty("Nonexistent").GetInt32());
            Assert.Equal("Native", options.RootElement.GetProperty("OutputFormat").GetString());
        }

        using (var columns = JsonDocument.Parse((string)record[1]!))
        {
            Assert.Contains(columns.RootElement.EnumerateArray(), c => c.GetProperty("Table").GetString()!.EndsWith("events", StringComparison.Ordinal)
                && c.GetProperty("Column").GetString() == "created_at" && !c.GetProperty("Typed").GetBoolean() && c.GetProperty("Key").GetString()!.Length > 0);
        }

        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(undo, CancellationToken.None);
        Assert.True(Assert.Single(undo.ObjectsOf<TimezoneUndoResult>()).ValuesRestored > 0);
        Assert.Equal(before, Fingerprint(target));
    }

    [Fact]
    public async Task Missing_tables_and_columns_and_unknown_zones_get_clear_errors()
    {
        var target = await SeededAsync();
        TimezoneMigrationRequest Request(Action<TimezoneMigrationRequest>? _ = null) => new() { Target = target, SourceTimeZone = "America/New_York", SkipBackup = true };
        var service = new TimezoneMigrationService();

        var table = await Assert.ThrowsAsync<DbMigrationException>(() => service.AnalyzeAsync(Request() with { Tables = ["evnts"] }, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneTableNotFound, table.ErrorId);
        Assert.Contains("events", table.Message, StringComparison.Ordinal);
        var column = await Assert.ThrowsAsync<DbMigrationException>(() => service.AnalyzeAsync(Request() with { Columns = ["events.created"] }, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotFound, column.ErrorId);
        Assert.Contains("created_at", column.Message, StringComparison.Ordinal);
        var zone = await Assert.ThrowsAsync<DbMigrationException>(() => service.AnalyzeAsync(Request() with { SourceTimeZone = "Europe/Londn" }, null, CancellationToken.None));
        Assert.Contains("Europe/London", zone.Message, StringComparison.Ordinal);

        // A view is not "missing": it is not what gets converted.
        foreach (var request in new[] { Request() with { Tables = ["recent_events"] }, Request() with { Columns = ["recent_events.created_at"] } })
        {
            var view = await Assert.ThrowsAsync<DbMigrationException>(() => service.AnalyzeAsync(request, null, CancellationToken.None));
            Assert.Equal(ErrorIds.TimezoneTableNotFound, view.ErrorId);
            Assert.Contains("'recent_events' is a view, not a table", view.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_interrupted_run_is_recoverable_through_its_rollback_record()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE big (id INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL)");
        var values = Enumerable.Range(1, 200_000).Select(i => $"({i}, '2024-01-{1 + i % 28:00} {i % 24:00}:{i % 60:00}:00')");
        foreach (var chunk in values.Chunk(5_000))
        {
            Query(target, "INSERT INTO big (id, at) VALUES " + string.Join(", ", chunk));
        }

        var before = string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => r[0]));
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using var watch = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        // SQLite converts 200k rows in one statement of a fraction of a second, too short to catch by polling under
        // load: the run stops itself inside that statement, at its first progress report.
        var sqlite = Engine is SqliteEngine;
        await using (var run = sqlite
            ? TestHostProcess.Start(password, "tz", target.ToString(), "Europe/London", "100", "60", "pause-mid")
            : TestHostProcess.Start(password, "tz", target.ToString(), "Europe/London", "100"))
        {
            Assert.Equal("STARTED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            if (sqlite)
            {
                Assert.Equal("MID", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
                Assert.True(File.Exists(target.FilePath + "-journal"), "the run's transaction is open");
            }

            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!sqlite && DateTime.UtcNow < deadline && !run.HasExited && !await MidConversionAsync(watch))
            {
                await Task.Delay(5);
            }

            Assert.False(run.HasExited, "the run finished before it could be interrupted: " + run.Errors);
            run.Kill();
            await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        // Every row is either original or recorded: undo brings back exactly the original data.
        var runId = Convert.ToString(Assert.Single(Query(target, "SELECT run_id FROM dbmigration_tz_runs"))[0], CultureInfo.InvariantCulture)!;

        // The record of a run that never finished is what recovers it: it cannot be removed, even with -Force.
        var kept = await Assert.ThrowsAsync<DbMigrationException>(() => new TimezoneMigrationService().RemoveRecordAsync(target, runId, force: true, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneRunNotFinished, kept.ErrorId);
        Assert.Contains("Undo-TimezoneMigration", kept.Message, StringComparison.Ordinal);
        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = runId }.Invoke(undo, CancellationToken.None);
        var after = string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => r[0]));
        if (after != before)
        {
            // Name the first rows that differ and what undo said, rather than two 200k-value strings.
            var differing = before.Split('|').Zip(after.Split('|'), (b, a) => (b, a)).Select((p, i) => (p.b, p.a, Id: i + 1)).Where(p => p.b != p.a).Take(5);
            Assert.Fail($"undo of {runId} left rows changed, e.g. {string.Join("; ", differing.Select(d => $"id {d.Id}: {d.b} -> {d.a}"))}; undo said: {string.Join(" / ", undo.Objects.Concat(undo.Warnings))}");
        }
    }

    [Fact]
    public async Task A_run_stopped_part_way_reads_stopped_keeps_its_record_and_undo_restores_every_table()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE a_small (id INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL); INSERT INTO a_small (id, at) VALUES (1, '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00')");
        Query(target, "CREATE TABLE b_big (id INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL)");
        foreach (var chunk in Enumerable.Range(1, 150_000).Select(i => $"({i}, '2024-02-{1 + i % 28:00} {i % 24:00}:{i % 60:00}:00')").Chunk(5_000))
        {
            Query(target, "INSERT INTO b_big (id, at) VALUES " + string.Join(", ", chunk));
        }

        string Snapshot() => string.Join("|", Query(target, "SELECT at FROM a_small ORDER BY id").Concat(Query(target, "SELECT at FROM b_big ORDER BY id")).Select(r => r[0]));
        var before = Snapshot();
        using var stop = new CancellationTokenSource();
        var progress = new StopInside("b_big", stop);
        var request = new TimezoneMigrationRequest
        {
            Target = target,
            SourceTimeZone = "Europe/London",
            BatchSize = 1_000,
            Ambiguous = AmbiguousTimePolicy.Earlier,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            SkipBackup = true,
            ReportPath = _dir.File("reports"),
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new TimezoneMigrationService().RunAsync(request, progress, stop.Token));
        Assert.True(progress.Stopped, "the run was stopped inside b_big's conversion");
        Assert.Equal("2024-07-01T11:00:00Z", Value(target, 1, "at", "a_small"));

        var run = Assert.Single(Query(target, "SELECT run_id, status, finished_utc FROM dbmigration_tz_runs"));
        var runId = Convert.ToString(run[0], CultureInfo.InvariantCulture)!;
        Assert.Equal("stopped", run[1]);
        Assert.NotNull(run[2]);
        Assert.Contains(progress.Warnings, w => w.Contains($"Undo-TimezoneMigration -Database '{target}' -Id {runId}", StringComparison.Ordinal));

        var kept = await Assert.ThrowsAsync<DbMigrationException>(() => new TimezoneMigrationService().RemoveRecordAsync(target, runId, force: true, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneRunNotFinished, kept.ErrorId);
        await new TimezoneMigrationService().UndoAsync(target, runId, MigrationRequest.DefaultStatementLockTimeout, null, CancellationToken.None);
        Assert.Equal(before, Snapshot());
        Assert.Equal("undone", Assert.Single(Query(target, "SELECT status FROM dbmigration_tz_runs"))[0]);
    }

    /// <summary>Cancels the run at its first progress report inside the named table's conversion, as Ctrl+C would.</summary>
    private sealed class StopInside(string table, CancellationTokenSource stop) : IProgress<DbMigration.Operations.OperationUpdate>
    {
        public bool Stopped { get; private set; }

        public List<string> Warnings { get; } = [];

        public void Report(DbMigration.Operations.OperationUpdate value)
        {
            if (value is DbMigration.Operations.MessageUpdate { Level: DbMigration.Operations.MessageLevel.Warning } message)
            {
                Warnings.Add(message.Text);
            }
            else if (!Stopped && value is DbMigration.Operations.ProgressUpdate { Activity: "Invoke-TimezoneMigration", PercentComplete: > 0 and < 100 } update
                && update.Status.Contains(table, StringComparison.Ordinal))
            {
                Stopped = true;
                stop.Cancel();
            }
        }
    }

    /// <summary>
    /// A column of the engine's instant type (UTC inside, shown in the session's zone) is not discovered, and named by
    /// -Column it is refused before anything is recorded, as is a column that holds no date-times at all.
    /// </summary>
    protected async Task InstantAndNonDateColumnsAreNotConvertedAsync(string instantType, string instantValue, string currentSchema)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"CREATE TABLE t (id INTEGER PRIMARY KEY, ts {instantType} NULL, n INTEGER NULL, local_at {NativeType} NULL)");
        Query(target, $"INSERT INTO t (id, ts, n, local_at) VALUES (1, '{instantValue}', 5, '2024-07-01 12:00:00')");
        var before = string.Join("|", Query(target, "SELECT ts, n FROM t").Single().Values);

        var discovered = new RecordingHost(ReportFolder) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(discovered, CancellationToken.None);
        Assert.Equal(["local_at"], Assert.Single(discovered.ObjectsOf<TimezoneMigrationResult>()).Columns.Select(c => c.Column));
        Assert.Contains(discovered.Verbose, v => v.Contains("t.ts is", StringComparison.Ordinal) && v.Contains("already holds instants", StringComparison.Ordinal));

        foreach (var (column, says) in new[] { ("t.ts", "UTC instants already"), ("t.n", "not a local date-time") })
        {
            var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
            {
                Database = target, SourceTimeZone = "America/New_York", Column = [column], SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
            Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
            Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
            Assert.Contains(says, error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(before, string.Join("|", Query(target, "SELECT ts, n FROM t").Single().Values));
        Assert.Empty(Query(target, $"SELECT table_name FROM information_schema.tables WHERE table_name = 'dbmigration_tz_runs' AND table_schema = {currentSchema}"));
    }

    [Fact]
    public async Task A_primary_key_column_is_refused_with_nothing_changed()
    {
        // Rows are recorded, checked and undone by their key: a converted key would lose them all.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"CREATE TABLE stamps (at {NativeType ?? "TEXT"} NOT NULL PRIMARY KEY, v INTEGER NULL)");
        Query(target, "INSERT INTO stamps (at, v) VALUES ('2024-07-01 12:00:00', 1), ('2024-07-01 16:00:00', 2)");
        var before = string.Join("|", Query(target, "SELECT at, v FROM stamps ORDER BY v").Select(r => string.Join(",", r.Values)));

        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
        Assert.Contains("primary key", error.Message, StringComparison.Ordinal);
        Assert.Contains("-ExcludeColumn stamps.at", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, string.Join("|", Query(target, "SELECT at, v FROM stamps ORDER BY v").Select(r => string.Join(",", r.Values))));
    }

    [Fact]
    public async Task A_text_column_whose_rows_name_one_instant_twice_stops_at_its_unique_index_and_undo_restores_the_rows()
    {
        // Row 2 was written in UTC already; row 1's local 01:00 in New York is that same instant.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE stamps (id INTEGER PRIMARY KEY, at VARCHAR(30) NOT NULL UNIQUE)");
        Query(target, "INSERT INTO stamps VALUES (1, '2024-07-01 01:00:00'), (2, '2024-07-01T05:00:00Z'), (3, '2024-07-02 01:00:00')");
        string Rows() => string.Join("|", Query(target, "SELECT id, at FROM stamps ORDER BY id").Select(r => $"{r[0]}:{r[1]}"));
        var before = Rows();

        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
        Assert.Contains("unique index", error.Message, StringComparison.Ordinal);
        Assert.Contains("same instant", error.Message, StringComparison.Ordinal);
        var run = Assert.Single(Query(target, "SELECT run_id, status FROM dbmigration_tz_runs"));
        Assert.Equal("failed", run[1]);

        new UndoTimezoneMigrationCommand { Database = target, Id = (string)run[0]! }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task Undo_of_a_run_whose_table_was_dropped_since_changes_nothing_and_says_which()
    {
        var target = await Engine.CreateDatabaseAsync();
        var type = NativeType ?? "TEXT";
        Query(target, $"CREATE TABLE b_kept (id INTEGER PRIMARY KEY, at {type} NOT NULL); CREATE TABLE a_dropped (id INTEGER PRIMARY KEY, at {type} NOT NULL)");
        Query(target, "INSERT INTO b_kept VALUES (1, '2024-07-01 12:00:00'); INSERT INTO a_dropped VALUES (1, '2024-07-01 12:00:00')");
        // Undo goes through the tables in reverse: b_kept would be put back before a_dropped failed.
        var result = Run(target);
        Assert.Equal(2, result.Columns.Count);
        var converted = Value(target, 1, "at", "b_kept");
        Query(target, "DROP TABLE a_dropped");

        var error = Assert.Throws<DbMigrationException>(() => new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneTableNotFound, error.ErrorId);
        Assert.Contains("a_dropped.at", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was undone", error.Message, StringComparison.Ordinal);
        Assert.Equal(converted, Value(target, 1, "at", "b_kept"));
        Assert.Equal("completed", Query(target, $"SELECT status FROM dbmigration_tz_runs WHERE run_id = '{result.RunId}'").Single()[0]);
    }

    /// <summary>A zone's local times around every offset change from 1970 to 2037, and random ones, as applications store them.</summary>
    private static List<(long Id, LocalDateTime Local, string Text)> EdgeValues(string zoneId)
    {
        var zone = TimezoneResolver.Resolve(zoneId);
        var locals = new List<LocalDateTime>();
        foreach (var interval in zone.GetZoneIntervals(Instant.FromUtc(1970, 1, 1, 0, 0), Instant.FromUtc(2037, 12, 31, 0, 0)).Where(i => i.HasStart))
        {
            foreach (var offset in new[] { interval.WallOffset, zone.GetUtcOffset(interval.Start - Duration.FromTicks(1)) })
            {
                var edge = (interval.Start + Duration.FromTicks(offset.ToTimeSpan().Ticks)).InUtc().LocalDateTime;
                foreach (var seconds in new[] { -1, 0, 1, 1800, 3599 })
                {
                    locals.Add(edge.PlusSeconds(seconds));
                }
            }
        }

        var random = new Random(zoneId.Length);
        for (var i = 0; i < 1_000; i++)
        {
            locals.Add(new LocalDateTime(1971, 1, 1, 0, 0).PlusSeconds(random.NextInt64(66L * 365 * 86_400)).PlusTicks(random.Next(1_000_000) * 10));
        }

        return locals.Select((local, i) => ((long)i + 1, local, local.ToString(
            (i % 3) switch { 0 => "uuuu-MM-dd HH:mm:ss", 1 => "uuuu-MM-dd'T'HH:mm:ss.ffffff", _ => "uuuu-MM-dd HH:mm:ss.fff" }, CultureInfo.InvariantCulture))).ToList();
    }

    private string EdgeFingerprint(DatabaseTarget target) =>
        string.Join("|", Query(target, "SELECT id, at FROM edges ORDER BY id").Select(r => r[1] switch
        {
            DateTime d => d.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture),
            var v => Convert.ToString(v, CultureInfo.InvariantCulture),
        }));

    [Theory]
    [InlineData("America/New_York", AmbiguousTimePolicy.Earlier)]
    [InlineData("America/New_York", AmbiguousTimePolicy.Later)]
    [InlineData("Europe/London", AmbiguousTimePolicy.Earlier)]
    [InlineData("Europe/London", AmbiguousTimePolicy.Later)]
    [InlineData("Australia/Lord_Howe", AmbiguousTimePolicy.Earlier)]
    [InlineData("Australia/Lord_Howe", AmbiguousTimePolicy.Later)]
    [InlineData("Asia/Ho_Chi_Minh", AmbiguousTimePolicy.Later)]
    [InlineData("America/Sao_Paulo", AmbiguousTimePolicy.Earlier)]
    [InlineData("America/Sao_Paulo", AmbiguousTimePolicy.Later)]
    public async Task Every_offset_change_from_1970_to_2037_converts_as_NodaTime_does_and_undo_restores_it(string zoneId, AmbiguousTimePolicy ambiguous)
    {
        var target = await Engine.CreateDatabaseAsync();
        var values = EdgeValues(zoneId);
        Query(target, $"CREATE TABLE edges (id INTEGER PRIMARY KEY, at {NativeType ?? "VARCHAR(40)"} NULL)");
        foreach (var chunk in values.Chunk(500))
        {
            // A typed column keeps microseconds; the text forms carry 0, 3 or 6 fractional digits.
            Query(target, "INSERT INTO edges (id, at) VALUES " + string.Join(", ", chunk.Select(v => $"({v.Id}, '{(NativeType is null ? v.Text : v.Local.ToString("uuuu-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture))}')")));
        }

        var before = EdgeFingerprint(target);
        var host = new RecordingHost(_dir.Path);
        new InvokeTimezoneMigrationCommand
        {
            Database = target,
            SourceTimeZone = zoneId,
            Column = ["edges.at"],
            Ambiguous = ambiguous,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            SkipBackupMode = true,
            ReportPath = _dir.File("reports"),
        }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));

        var converter = new TimezoneConverter(TimezoneResolver.Resolve(zoneId), ambiguous, NonexistentTimePolicy.ShiftForward);
        var column = Assert.Single(result.Columns);
        Assert.Equal(values.Count, column.Converted);
        Assert.Equal(values.Count(v => converter.Zone.MapLocal(v.Local).Count == 2), column.Ambiguous);
        Assert.Equal(values.Count(v => converter.Zone.MapLocal(v.Local).Count == 0), column.Nonexistent);
        var stored = Query(target, "SELECT id, at FROM edges ORDER BY id").ToDictionary(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture), r => r[1]);
        foreach (var (id, local, text) in values)
        {
            var expected = converter.ToUtc(NativeType is null ? TimestampParser.Parse(text).Local : local).Instant;
            var actual = stored[id] switch
            {
                DateTime d => Instant.FromDateTimeUtc(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
                DateTimeOffset o => Instant.FromDateTimeOffset(o),
                var v => InstantPattern.ExtendedIso.Parse(Convert.ToString(v, CultureInfo.InvariantCulture)!).GetValueOrThrow(),
            };
            Assert.True(expected == actual, $"row {id}: {text} in {zoneId} is {expected}, stored {actual}");
        }

        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(undo, CancellationToken.None);
        Assert.Empty(undo.Errors);
        Assert.Equal(before, EdgeFingerprint(target));
    }

    /// <summary>A trigger that records inserted ids in an audit table, in the engine's dialect.</summary>
    protected abstract string AuditTrigger { get; }

    [Fact]
    public async Task Indexes_defaults_triggers_and_views_on_converted_columns_survive()
    {
        var target = await Engine.CreateDatabaseAsync();
        var typed = NativeType ?? "TEXT";
        Query(target, $"CREATE TABLE visits (id INTEGER PRIMARY KEY, at {typed} NULL DEFAULT '2000-01-01 00:00:00', note VARCHAR(20) NULL)");
        Query(target, "CREATE TABLE audit (visit_id INTEGER NOT NULL)");
        Query(target, "CREATE INDEX ix_visits_at ON visits (at)");
        Query(target, "CREATE VIEW visit_times AS SELECT id, at FROM visits");
        Query(target, AuditTrigger);
        Query(target, "INSERT INTO visits (id, at) VALUES (1, '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00')");

        var host = new RecordingHost(_dir.Path);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", Column = ["visits.at"], SkipBackupMode = true, ReportPath = _dir.File("reports") }
            .Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Contains(host.Warnings, w => w.Contains("visits.at defaults to '2000-01-01 00:00:00", StringComparison.Ordinal) && w.Contains("kept", StringComparison.Ordinal));

        Assert.Equal("2024-07-01T16:00:00Z", Utc(Query(target, "SELECT at FROM visit_times WHERE id = 1").Single()[0]));
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            var visits = (await provider.GetTablesAsync(connection, CancellationToken.None)).Single(t => t.Name.Name == "visits");
            Assert.Contains(visits.Indexes, i => i.Name == "ix_visits_at" && i.Columns.SequenceEqual(["at"]));
            Assert.NotNull(visits.Columns.Single(c => c.Name == "at").DefaultExpression);
        }

        // The trigger still fires and the default still applies.
        Query(target, "INSERT INTO visits (id, note) VALUES (3, 'defaulted')");
        Assert.Equal([1L, 2L, 3L], Query(target, "SELECT visit_id FROM audit ORDER BY visit_id").Select(r => Convert.ToInt64(r[0], CultureInfo.InvariantCulture)));
        Assert.NotNull(Query(target, "SELECT at FROM visits WHERE id = 3").Single()[0]);
    }

    [Fact]
    public async Task Removing_a_finished_runs_record_keeps_the_data_frees_the_record_and_undo_then_names_the_backup()
    {
        var target = await SeededAsync();
        var result = Run(target);
        var converted = Fingerprint(target);
        var recordTables = Query(target, Engine is SqliteEngine
            ? $"SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dbmigration_tz_rollback_%'"
            : "SELECT run_id FROM dbmigration_tz_rollback WHERE run_id = '" + result.RunId + "'");
        Assert.NotEmpty(recordTables);

        var preview = new RecordingHost { WhatIf = true };
        new RemoveTimezoneMigrationRecordCommand { Database = target, Id = result.RunId }.Invoke(preview, CancellationToken.None);
        Assert.Empty(preview.ObjectsOf<TimezoneRecordRemoval>());
        Assert.Equal(recordTables.Count, Query(target, Engine is SqliteEngine
            ? $"SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dbmigration_tz_rollback_%'"
            : "SELECT run_id FROM dbmigration_tz_rollback WHERE run_id = '" + result.RunId + "'").Count);

        var host = new RecordingHost();
        new RemoveTimezoneMigrationRecordCommand { Database = target, Id = result.RunId }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var removal = Assert.Single(host.ObjectsOf<TimezoneRecordRemoval>());
        Assert.Equal(result.BackupId, removal.BackupId);
        Assert.Equal(converted, Fingerprint(target));
        if (Engine is SqliteEngine)
        {
            Assert.Equal(recordTables.Select(r => (string)r[0]!), removal.TablesDropped);
            Assert.Empty(Query(target, "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dbmigration_tz_rollback_%'"));
        }
        else
        {
            Assert.Equal(recordTables.Count, removal.RollbackRowsDeleted);
            Assert.Empty(Query(target, "SELECT run_id FROM dbmigration_tz_rollback WHERE run_id = '" + result.RunId + "'"));
        }

        // Undo now refuses and names the backup that can still reverse the run; a second removal is refused.
        var service = new TimezoneMigrationService();
        var undo = await Assert.ThrowsAsync<DbMigrationException>(() => service.UndoAsync(target, result.RunId, MigrationRequest.DefaultStatementLockTimeout, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneRecordRemoved, undo.ErrorId);
        Assert.Contains(result.BackupId!, undo.Message, StringComparison.Ordinal);
        Assert.Equal(converted, Fingerprint(target));
        var again = await Assert.ThrowsAsync<DbMigrationException>(() => service.RemoveRecordAsync(target, result.RunId, force: false, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneRecordRemoved, again.ErrorId);

        // The converted columns still count as converted: a new run changes nothing.
        Assert.All(Run(target).Columns, c => Assert.Equal(0, c.Converted));
        Assert.Equal(converted, Fingerprint(target));
        var missing = await Assert.ThrowsAsync<DbMigrationException>(() => service.RemoveRecordAsync(target, "tz-nope", force: false, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneRunNotFound, missing.ErrorId);
    }

    [Fact]
    public async Task The_record_of_a_run_that_failed_its_validation_is_removed_only_with_Force()
    {
        // A committed run fails its validation when a writer races it (SQLite, MariaDB DATETIME, text): the run row
        // is set to that state directly, since the race cannot be timed here.
        var target = await SeededAsync();
        var result = Run(target);
        Query(target, $"UPDATE dbmigration_tz_runs SET status = 'validation_failed' WHERE run_id = '{result.RunId}'");
        var service = new TimezoneMigrationService();

        var refused = await Assert.ThrowsAsync<DbMigrationException>(() => service.RemoveRecordAsync(target, result.RunId, force: false, null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneValidationFailed, refused.ErrorId);
        Assert.Contains("-Force", refused.Message, StringComparison.Ordinal);
        Assert.Equal("validation_failed", Query(target, $"SELECT status FROM dbmigration_tz_runs WHERE run_id = '{result.RunId}'").Single()[0]);

        var host = new RecordingHost();
        new RemoveTimezoneMigrationRecordCommand { Database = target, Id = result.RunId, ForceMode = true }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Single(host.ObjectsOf<TimezoneRecordRemoval>());
        Assert.Equal("record_removed", Query(target, $"SELECT status FROM dbmigration_tz_runs WHERE run_id = '{result.RunId}'").Single()[0]);
    }

    /// <summary>A column's value as the engine prints it, for byte-for-byte comparisons.</summary>
    protected abstract string AsText(string column);

    [Fact]
    public async Task Sentinels_at_the_calendars_edge_are_left_as_they_are_listed_and_undo_is_exact()
    {
        // "Never expires" and "always valid": converting them would leave the calendar (9999-12-31 23:59:59 in New
        // York is 10000-01-01 UTC), and they mean the same in UTC. Every engine failed the whole run on them.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"CREATE TABLE spans (id INTEGER PRIMARY KEY, valid_to {NativeType ?? "DATETIME"} NULL)");
        Query(target, "INSERT INTO spans (id, valid_to) VALUES (1, '9999-12-31 23:59:59'), (2, '0001-01-01 00:00:00'), (3, '9999-12-30 06:00:00'), (4, '2024-07-01 12:00:00'), (5, NULL)");
        string Rows() => string.Join("|", Query(target, $"SELECT id, {AsText("valid_to")} FROM spans ORDER BY id").Select(r => $"{r[0]}:{r[1]}"));
        var before = Rows();

        var result = Run(target);
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        var column = Assert.Single(result.Columns);
        Assert.Equal((1L, 3L), (column.Converted, column.Unparseable));
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 4, "valid_to", "spans"));
        Assert.Equal("9999-12-31T23:59:59Z", Value(target, 1, "valid_to", "spans").Replace(' ', 'T') + (NativeType is null ? "Z" : string.Empty));
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.ReportPath!, "report.json")));
        Assert.Equal(["1", "2", "3"], report.RootElement.GetProperty("issues").EnumerateArray()
            .Where(i => i.GetProperty("issue").GetString() == "out of range").Select(i => i.GetProperty("key").GetString()!).Order(StringComparer.Ordinal));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task Tables_named_r_s_and_t_convert_and_undo()
    {
        // The statements alias their own tables; PostgreSQL refused a user table named like an alias beside it.
        var target = await Engine.CreateDatabaseAsync();
        foreach (var name in new[] { "r", "s", "t" })
        {
            Query(target, $"CREATE TABLE {name} (id INTEGER PRIMARY KEY, at VARCHAR(40) NULL{(NativeType is null ? string.Empty : $", logged {NativeType} NULL")})");
            Query(target, $"INSERT INTO {name} (id, at{(NativeType is null ? string.Empty : ", logged")}) VALUES (1, '2024-07-01 12:00:00'{(NativeType is null ? string.Empty : ", '2024-07-01 12:00:00'")})");
        }

        string Rows() => string.Join("|", new[] { "r", "s", "t" }.Select(name => string.Join(",", Query(target, $"SELECT at{(NativeType is null ? string.Empty : $", {AsText("logged")}")} FROM {name}").Single().Values)));
        var before = Rows();
        var result = Run(target);
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        Assert.Equal("2024-07-01T16:00:00Z", Value(target, 1, "at", "s"));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task Tables_and_columns_whose_names_need_quoting_are_found_converted_with_their_views_and_undone()
    {
        // Spaces, capitals and a quote: every name the run builds SQL from must be quoted, catalog lookups included.
        var target = await Engine.CreateDatabaseAsync();
        var q = DbMigration.Providers.DatabaseProviders.For(target).QuoteIdentifier;
        string table = q("Site Visits"), key = q("Visit Id"), seen = q("Seen At"), noted = q("Noted \"At\"");
        Query(target, $"CREATE TABLE {table} ({key} INTEGER PRIMARY KEY, {seen} {NativeType ?? "DATETIME"} NULL, {noted} VARCHAR(40) NULL)");
        Query(target, $"CREATE VIEW {q("Visit View")} AS SELECT {key}, {seen}, {noted} FROM {table}");
        Query(target, $"INSERT INTO {table} ({key}, {seen}, {noted}) VALUES (1, '2024-07-01 12:00:00', '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00', '2024-01-15 08:30:00')");
        string Rows() => string.Join("|", Query(target, $"SELECT {key}, {seen}, {noted} FROM {table} ORDER BY {key}")
            .Select(r => string.Join(",", r.Values.Select(v => v is DateTime d ? d.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : Convert.ToString(v, CultureInfo.InvariantCulture)))));
        var before = Rows();

        var result = Run(target);
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        Assert.Equal(["Noted \"At\"", "Seen At"], result.Columns.Select(c => c.Column).Order(StringComparer.Ordinal));
        var viewed = Query(target, $"SELECT {seen}, {noted} FROM {q("Visit View")} WHERE {key} = 1").Single();
        Assert.Equal("2024-07-01T16:00:00Z", Utc(viewed[0]));
        Assert.Equal("2024-07-01T16:00:00Z", Utc(viewed[1]));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
        Assert.Equal(2, Query(target, $"SELECT {key} FROM {q("Visit View")}").Count);
    }

    protected static string Utc(object? value) => value switch
    {
        DateTime d => d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };

    [Fact]
    public async Task Undo_keeps_values_changed_after_the_run_and_says_so()
    {
        var target = await SeededAsync();
        var result = Run(target);
        Query(target, "UPDATE events SET created_at = '2030-01-01T00:00:00Z' WHERE id = 1");

        var host = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(host, CancellationToken.None);

        Assert.Equal("2030-01-01T00:00:00Z", Value(target, 1));
        Assert.Equal("2024-01-15T08:30:00.123456", Value(target, 2));
        Assert.Equal("2024-03-10 02:30:00", Value(target, 3));
        Assert.Contains(host.Warnings, w => w.Contains("1 value(s) changed after the run were kept", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_second_run_while_one_holds_the_lock_is_refused()
    {
        var target = await SeededAsync();
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using (await provider.AcquireLockAsync(target, "timezone", TimeSpan.FromSeconds(5), CancellationToken.None))
        {
            var ex = await Assert.ThrowsAsync<DbMigrationException>(() => new TimezoneMigrationService().RunAsync(
                new TimezoneMigrationRequest { Target = target, SourceTimeZone = "America/New_York", Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackup = true, ReportPath = _dir.File("reports") },
                null, CancellationToken.None));
            Assert.Equal(ErrorIds.TimezoneRunInProgress, ex.ErrorId);
        }
    }

    /// <summary>
    /// Kills a typed conversion of 200,000 rows once <paramref name="midRunProbe"/> counts more than zero; undo must
    /// restore every value. With <paramref name="expectUntouched"/>, the kill fell inside the one open transaction and
    /// the data must be original even before the undo; a row lock taken first holds the run inside that transaction.
    /// <paramref name="afterFill"/> runs once the rows are in, to shape the table (a slow index keeps a rewrite going).
    /// </summary>
    protected async Task KilledTypedRunAsync(string midRunProbe, string? commitIntervalSeconds = null, bool expectUntouched = false, int probeIntervalMilliseconds = 2, string? afterFill = null)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"CREATE TABLE big (id INTEGER PRIMARY KEY, at {NativeType} NOT NULL)");
        var start = new LocalDateTime(2020, 1, 1, 0, 0);
        foreach (var chunk in Enumerable.Range(1, 200_000).Chunk(5_000))
        {
            Query(target, "INSERT INTO big (id, at) VALUES " + string.Join(", ", chunk.Select(i => $"({i}, '{start.PlusMinutes(i * 17L):uuuu-MM-dd HH:mm:ss}')")));
        }

        if (afterFill is not null)
        {
            Query(target, afterFill);
        }

        var before = string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => ((DateTime)r[0]!).Ticks));
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using var watch = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var holder = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var hold = expectUntouched ? await holder.BeginTransactionAsync() : null;
        if (hold is not null)
        {
            await using var lockRow = holder.CreateCommand();
            lockRow.Transaction = hold;
            lockRow.CommandText = "SELECT id FROM big WHERE id = 150000 FOR UPDATE";
            await lockRow.ExecuteScalarAsync();
        }

        string[] arguments = commitIntervalSeconds is null ? ["tz", target.ToString(), "Europe/London", "100"] : ["tz", target.ToString(), "Europe/London", "100", commitIntervalSeconds];
        await using (var run = TestHostProcess.Start(password, arguments))
        {
            Assert.Equal("STARTED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var probe = new List<string>();
            while (DateTime.UtcNow < deadline && !run.HasExited && !await CountsAsync(watch, midRunProbe, probe))
            {
                await Task.Delay(probeIntervalMilliseconds);
            }

            Assert.False(run.HasExited, $"the run finished before it could be interrupted; probe errors: {string.Join(" | ", probe.Distinct())}; host: {run.Errors}");
            run.Kill();
            await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        if (hold is not null)
        {
            await hold.RollbackAsync();
        }

        if (expectUntouched)
        {
            Assert.Equal(before, string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => ((DateTime)r[0]!).Ticks)));
        }

        var runId = Convert.ToString(Query(target, "SELECT run_id FROM dbmigration_tz_runs").Single()[0], CultureInfo.InvariantCulture)!;
        new UndoTimezoneMigrationCommand { Database = target, Id = runId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => ((DateTime)r[0]!).Ticks)));
    }

    private static async Task<bool> CountsAsync(System.Data.Common.DbConnection connection, string sql, List<string> errors)
    {
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) > 0;
        }
        catch (System.Data.Common.DbException ex)
        {
            errors.Add(ex.Message);
            return false;
        }
    }

    /// <summary>Batched engines have committed some converted rows.</summary>
    private static async Task<bool> MidConversionAsync(System.Data.Common.DbConnection connection)
    {
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM big WHERE at LIKE '%Z'";

            return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) > 0;
        }
        catch (System.Data.Common.DbException)
        {
            return false;
        }
    }
}

public sealed class SqliteTimezoneEngineTests() : TimezoneEngineTests(new SqliteEngine(), null)
{
    [Fact]
    public Task A_CHECK_on_the_text_shape_that_UTC_values_break_is_named_and_nothing_changes() => AssertACheckRefusingTheConvertedValuesIsNamedAsync("at LIKE '____-__-__ __:__:__'");

    protected override string AsText(string column) => $"CAST({column} AS TEXT)";

    protected override string? NativeType => null;

    protected override string AuditTrigger => "CREATE TRIGGER visits_audit AFTER INSERT ON visits BEGIN INSERT INTO audit (visit_id) VALUES (new.id); END;";

    [Fact]
    public async Task The_rebuild_keeps_indexes_triggers_views_foreign_keys_generated_columns_rowids_and_the_sequence()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE parent (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, code TEXT UNIQUE, doubled TEXT GENERATED ALWAYS AS (code || code) VIRTUAL);
            CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id));
            CREATE TABLE audit (note TEXT);
            CREATE INDEX ix_parent_at ON parent (at);
            CREATE TRIGGER parent_audit AFTER INSERT ON parent BEGIN INSERT INTO audit VALUES ('parent ' || new.id); END;
            CREATE VIEW parent_view AS SELECT id, at FROM parent;
            CREATE TABLE loose (at TEXT);
            INSERT INTO parent (at, code) VALUES ('2024-07-01 12:00:00', 'A'), ('2024-01-15 08:30:00', 'B'), ('2024-02-01 00:00:00', 'C');
            DELETE FROM parent WHERE id = 3;
            INSERT INTO child (id, parent_id) VALUES (1, 1);
            INSERT INTO loose (at) VALUES ('2024-07-01 12:00:00'), ('2024-07-02 12:00:00'), ('2024-07-03 12:00:00');
            DELETE FROM loose WHERE at = '2024-07-02 12:00:00';
            """);
        var before = Snapshot(target);
        var result = Run(target);
        Assert.Contains(result.Columns, c => c.Table == "loose" && c.Converted == 2);

        Assert.Equal("2024-07-01T16:00:00Z", Convert.ToString(Query(target, "SELECT at FROM parent_view WHERE id = 1").Single()[0], CultureInfo.InvariantCulture));
        Assert.Equal("AA", Convert.ToString(Query(target, "SELECT doubled FROM parent WHERE id = 1").Single()[0], CultureInfo.InvariantCulture));
        Assert.Equal(["1:2024-07-01T16:00:00Z", "3:2024-07-03T16:00:00Z"], Query(target, "SELECT rowid, at FROM loose ORDER BY rowid").Select(r => $"{r[0]}:{r[1]}"));
        Assert.Equal(["index:ix_parent_at", "index:sqlite_autoindex_parent_1", "table:parent", "trigger:parent_audit"],
            Query(target, "SELECT type || ':' || name FROM sqlite_master WHERE tbl_name = 'parent' ORDER BY 1").Select(r => (string)r[0]!));
        Assert.Contains("REFERENCES parent", Convert.ToString(Query(target, "SELECT sql FROM sqlite_master WHERE name = 'child'").Single()[0], CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.Empty(Query(target, "PRAGMA foreign_key_check"));
        Assert.Equal("ok", Convert.ToString(Query(target, "PRAGMA integrity_check").Single()[0], CultureInfo.InvariantCulture));

        // AUTOINCREMENT still remembers id 3 was used; the trigger still fires.
        Query(target, "INSERT INTO parent (at, code) VALUES ('2024-08-01T00:00:00Z', 'D')");
        Assert.Equal(4L, Query(target, "SELECT MAX(id) FROM parent").Single()[0]);
        Assert.Contains(Query(target, "SELECT note FROM audit"), r => (string)r[0]! == "parent 4");
        Query(target, "DELETE FROM parent WHERE id = 4; DELETE FROM audit");

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Snapshot(target));
        Assert.Empty(Query(target, "SELECT name FROM sqlite_master WHERE name LIKE 'dbmigration_tz_rollback_tz%'"));
    }

    [Fact]
    public async Task An_updated_at_trigger_fires_neither_for_the_conversion_nor_for_its_undo()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE notes (id INTEGER PRIMARY KEY, at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE TRIGGER notes_touch AFTER UPDATE ON notes BEGIN UPDATE notes SET updated_at = 'touched' WHERE id = new.id; END;
            INSERT INTO notes VALUES (1, '2024-07-01 12:00:00', 'never'), (2, '2024-01-01 12:00:00', 'never');
            """);
        var result = Run(target);
        Assert.Equal(["2024-07-01T16:00:00Z|never", "2024-01-01T17:00:00Z|never"], Query(target, "SELECT at || '|' || updated_at FROM notes ORDER BY id").Select(r => (string)r[0]!));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(["2024-07-01 12:00:00|never", "2024-01-01 12:00:00|never"], Query(target, "SELECT at || '|' || updated_at FROM notes ORDER BY id").Select(r => (string)r[0]!));

        // The trigger is back, and fires for the application's own updates.
        Query(target, "UPDATE notes SET at = at WHERE id = 1");
        Assert.Equal("touched", Convert.ToString(Query(target, "SELECT updated_at FROM notes WHERE id = 1").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_WITHOUT_ROWID_table_and_a_timestamp_key_are_named_in_one_error()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE slots (at TEXT PRIMARY KEY, label TEXT);
            INSERT INTO slots VALUES ('2024-07-01 12:00:00', 'x');
            CREATE TABLE readings (device TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (device, at)) WITHOUT ROWID;
            INSERT INTO readings VALUES ('a', '2024-03-10 01:30:00');
            """);

        // One refusal comes from discovery, the other from the check of each table's rebuild: both are in one error.
        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.StartsWith("2 of the columns found cannot be converted. Nothing was changed.", refused.Message, StringComparison.Ordinal);
        Assert.Contains("- slots.at is the table's primary key", refused.Message, StringComparison.Ordinal);
        Assert.Contains("- readings is a WITHOUT ROWID table", refused.Message, StringComparison.Ordinal);
        Assert.EndsWith("To leave them all out: -ExcludeColumn slots.at, readings.at", refused.Message, StringComparison.Ordinal);
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, "SELECT at FROM slots").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_WITHOUT_ROWID_table_keyed_by_several_columns_is_refused_before_anything_changes()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE notes (k TEXT PRIMARY KEY, seen TEXT);
            INSERT INTO notes VALUES ('x', '2024-07-01 12:00:00');
            CREATE TABLE readings (device TEXT NOT NULL, at TEXT NOT NULL, logged TEXT, PRIMARY KEY (device, at)) WITHOUT ROWID;
            INSERT INTO readings VALUES ('a', '2024-03-10 01:30:00', '2024-03-10 01:30:00');
            """);
        string Rows() => string.Join("|", Query(target, "SELECT k, seen, NULL FROM notes UNION ALL SELECT device, at, logged FROM readings UNION ALL SELECT type, name, NULL FROM sqlite_master").Select(r => string.Join(",", r.Values)));
        var before = Rows();

        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneNoPrimaryKey, refused.ErrorId);
        Assert.Contains("-ExcludeColumn readings.at, -ExcludeColumn readings.logged", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, Rows());

        // Left out, the rest converts.
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, ExcludeColumn = ["readings.at", "readings.logged"] }.Invoke(host, CancellationToken.None);
        Assert.Equal("2024-07-01T16:00:00Z", Convert.ToString(Query(target, "SELECT seen FROM notes").Single()[0], CultureInfo.InvariantCulture));
        Assert.Equal("2024-03-10 01:30:00", Convert.ToString(Query(target, "SELECT logged FROM readings").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task The_room_check_measures_the_converted_table_and_its_indexes_not_the_whole_file()
    {
        // A small table in a large file: its rebuild needs room for that table, not for a second copy of the file.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE bulk (id INTEGER PRIMARY KEY, payload BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO bulk (payload) SELECT randomblob(1000) FROM n;");
        var before = new FileInfo(target.FilePath!).Length;
        Query(target, """
            CREATE TABLE "visit log" (id INTEGER PRIMARY KEY, at TEXT NOT NULL, note TEXT, weight REAL);
            CREATE INDEX ix_visits_at ON "visit log" (at, note);
            CREATE INDEX ix_visits_lower ON "visit log" (lower(note));
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
            INSERT INTO "visit log" (at, note, weight) SELECT datetime('2024-01-01', '+' || i || ' minutes'), 'visit number ' || i, i / 7.0 FROM n;
            """);
        var visitsInFile = new FileInfo(target.FilePath!).Length - before;

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={target.FilePath};Pooling=False");
        await connection.OpenAsync();
        var visits = await TimezoneMigrationService.SqliteTableBytesAsync(connection, "visit log", CancellationToken.None);
        var bulk = await TimezoneMigrationService.SqliteTableBytesAsync(connection, "bulk", CancellationToken.None);
        // Near what the table and its indexes added to the file (erring high), far below the whole file.
        Assert.InRange(visits, visitsInFile * 8 / 10, visitsInFile * 2);
        Assert.InRange(bulk, 4_000_000, before * 3 / 2);
        Assert.True(visits * 10 < new FileInfo(target.FilePath!).Length);
    }

    [Fact]
    public async Task A_column_that_defaults_to_SQLites_UTC_clock_is_named_before_it_is_shifted()
    {
        // CURRENT_TIMESTAMP in SQLite is UTC: rows that took the default are no local times.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, seen TEXT DEFAULT (datetime('now', 'localtime')), noted TEXT DEFAULT 'unknown')");
        Query(target, "INSERT INTO visits (id, at, seen, noted) VALUES (1, '2024-07-01 12:00:00', '2024-07-01 12:00:00', '2024-07-01 12:00:00')");
        var host = new RecordingHost(ReportFolder) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Contains(host.Warnings, w => w.Contains("visits.at defaults to CURRENT_TIMESTAMP", StringComparison.Ordinal) && w.Contains("writes in UTC", StringComparison.Ordinal) && w.Contains("-ExcludeColumn visits.at", StringComparison.Ordinal));
        Assert.Contains(host.Warnings, w => w.Contains("visits.seen defaults to", StringComparison.Ordinal) && w.Contains("local times again", StringComparison.Ordinal));
        // A literal that merely contains "now" reads no clock.
        Assert.DoesNotContain(host.Warnings, w => w.Contains("visits.noted", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_run_that_fails_on_its_first_table_says_nothing_was_changed()
    {
        // A CHECK constraint written for the local format rejects the UTC text: the rebuild rolls back whole.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT NOT NULL CHECK (at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'))");
        Query(target, "INSERT INTO t VALUES (1, '2024-07-01 12:00:00')");
        var host = new RecordingHost(ReportFolder);
        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(host, CancellationToken.None));
        Assert.Contains("CHECK constraint failed", error.Message, StringComparison.Ordinal);
        Assert.Contains(host.Warnings, w => w.Contains("before it converted any table: nothing was changed", StringComparison.Ordinal));
        Assert.Equal("2024-07-01 12:00:00", Query(target, "SELECT at FROM t").Single()[0]);
        Assert.Equal("failed", Query(target, "SELECT status FROM dbmigration_tz_runs").Single()[0]);
    }

    [Fact]
    public async Task An_applications_write_queued_behind_the_conversion_waits_for_its_validation()
    {
        // An application adds and removes rows as it runs. Its statements wait on SQLite's busy timeout while the
        // table is rebuilt, and go in after the commit: the validation's counts must not take them for rows the
        // conversion lost or added, and the rows must survive.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE big (id INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL)");
        foreach (var chunk in Enumerable.Range(1, 300_000).Select(i => $"({i}, '2024-03-{1 + i % 28:00} {i % 24:00}:{i % 60:00}:00')").Chunk(10_000))
        {
            Query(target, "INSERT INTO big (id, at) VALUES " + string.Join(", ", chunk));
        }

        Task? writer = null;
        // At the first progress report inside the conversion.
        var progress = new OnFirst(u => u is { Activity: "Invoke-TimezoneMigration", PercentComplete: > 0 and < 100 }, () => writer = Task.Run(() =>
        {
            using var app = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={target.FilePath};Pooling=False");
            app.Open();
            using var write = app.CreateCommand();
            write.CommandText = "PRAGMA busy_timeout = 60000; INSERT INTO big (id, at) VALUES (300001, '2024-05-05 05:05:05'); DELETE FROM big WHERE id = 7;";
            write.ExecuteNonQuery();
        }));
        using var reports = new TempDirectory();
        var result = await new TimezoneMigrationService().RunAsync(new TimezoneMigrationRequest
        {
            Target = target,
            SourceTimeZone = "Europe/London",
            Ambiguous = AmbiguousTimePolicy.Earlier,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            SkipBackup = true,
            ReportPath = reports.Path,
        }, progress, CancellationToken.None);
        Assert.NotNull(writer);
        await writer!.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
        Assert.Equal(300_000, result.Columns.Single().Converted);
        // The application's row went in after the conversion, as it wrote it, and its delete too.
        Assert.Equal("2024-05-05 05:05:05", Query(target, "SELECT at FROM big WHERE id = 300001").Single()[0]);
        Assert.Empty(Query(target, "SELECT at FROM big WHERE id = 7"));
        Assert.Equal(300_000L, Query(target, "SELECT COUNT(*) FROM big").Single()[0]);
    }

    [Theory]
    [InlineData("delete")]
    [InlineData("wal")]
    public async Task Writers_wait_for_the_validation_so_its_counts_are_of_the_converted_table_alone(string journalMode)
    {
        // An application's write that got in between the commit and the counts read as rows the conversion lost or
        // added: the write lock is held again from the commit until the validation is done.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"PRAGMA journal_mode = {journalMode}; CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL); INSERT INTO visits VALUES (1, '2024-07-01 12:00:00'), (2, '2024-07-02 12:00:00');");
        string? attempt = null;
        var progress = new OnFirst(u => u.Status.Contains("validating", StringComparison.Ordinal), () =>
        {
            using var app = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={target.FilePath};Pooling=False;Default Timeout=1");
            app.Open();
            using var write = app.CreateCommand();
            write.CommandText = "INSERT INTO visits VALUES (3, '2024-07-03 12:00:00')";
            try
            {
                write.ExecuteNonQuery();
                attempt = "written";
            }
            catch (Microsoft.Data.Sqlite.SqliteException ex) when (ex.SqliteErrorCode == 5)
            {
                attempt = "busy";
            }
        });
        using var reports = new TempDirectory();
        var result = await new TimezoneMigrationService().RunAsync(new TimezoneMigrationRequest
        {
            Target = target, SourceTimeZone = "America/New_York", SkipBackup = true, ReportPath = reports.Path,
        }, progress, CancellationToken.None);

        Assert.Equal("busy", attempt);
        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
        Query(target, "INSERT INTO visits VALUES (3, '2024-07-03 12:00:00')");
    }

    /// <summary>Runs an action once, at the first progress report that <paramref name="when"/> picks.</summary>
    private sealed class OnFirst(Func<DbMigration.Operations.ProgressUpdate, bool> when, Action action) : IProgress<DbMigration.Operations.OperationUpdate>
    {
        private bool _done;

        public void Report(DbMigration.Operations.OperationUpdate value)
        {
            if (!_done && value is DbMigration.Operations.ProgressUpdate update && when(update))
            {
                _done = true;
                action();
            }
        }
    }


    [Fact]
    public async Task A_DATE_column_of_days_is_left_alone_and_named_while_one_holding_date_times_converts()
    {
        // Converting a birthday at local midnight to UTC would move it to another instant, or another day.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE people (id INTEGER PRIMARY KEY, birthday DATE, signed_up DATE)");
        Query(target, "INSERT INTO people VALUES (1, '1990-05-17', '2024-07-01 12:00:00'), (2, '1985-12-01', '2024-01-15 08:30:00')");

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Equal(["signed_up"], Assert.Single(host.ObjectsOf<TimezoneMigrationResult>()).Columns.Select(c => c.Column));
        Assert.Contains(host.Warnings, w => w.Contains("people.birthday is not converted", StringComparison.Ordinal) && w.Contains("-Column", StringComparison.Ordinal));
        Assert.Equal(["1990-05-17:2024-07-01T16:00:00Z", "1985-12-01:2024-01-15T13:30:00Z"], Query(target, "SELECT birthday, signed_up FROM people ORDER BY id").Select(r => $"{r[0]}:{r[1]}"));
    }

    /// <summary>Another connection's open read transaction keeps the run from committing: a clear error, nothing changed.</summary>
    [Fact]
    public async Task A_database_another_connection_holds_is_a_clear_error_and_nothing_changes()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE ev (id INTEGER PRIMARY KEY, at TEXT NOT NULL); INSERT INTO ev (at) VALUES ('2024-07-01 12:00:00'), ('2024-01-15 08:30:00')");
        using var reader = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={target.FilePath};Pooling=False");
        reader.Open();
        using var hold = reader.BeginTransaction(deferred: true);
        using (var read = reader.CreateCommand())
        {
            read.Transaction = hold;
            read.CommandText = "SELECT COUNT(*) FROM ev";
            read.ExecuteScalar();
        }

        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target,
            SourceTimeZone = "America/New_York",
            SkipBackupMode = true,
            ConnectTimeout = 1,
            ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(), CancellationToken.None));

        Assert.Equal(ErrorKind.ResourceBusy, error.Kind);
        Assert.Contains("is locked by another connection", error.Message, StringComparison.Ordinal);
        hold.Rollback();
        Assert.Equal(["2024-07-01 12:00:00", "2024-01-15 08:30:00"], Query(target, "SELECT at FROM ev ORDER BY id").Select(r => (string)r[0]!));
    }

    private static string Snapshot(DatabaseTarget target) =>
        string.Join("|", Query(target, "SELECT 'p', id, at, code FROM parent UNION ALL SELECT 'l', rowid, at, NULL FROM loose ORDER BY 1, 2").Select(r => string.Join(",", r.Values)));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlTimezoneEngineTests(PostgresServer server) : TimezoneEngineTests(server, server.Password)
{
    /// <summary>A login role that may connect to the test database and nothing more; its name and its target.</summary>
    private (string User, DatabaseTarget Target) NewRole(DatabaseTarget target)
    {
        var user = "role_" + Guid.NewGuid().ToString("N")[..8];
        Query(target, $"CREATE ROLE {user} LOGIN PASSWORD 'role-pass'; GRANT CONNECT ON DATABASE \"{target.Database}\" TO {user}");
        return (user, target.WithCredential(user, "role-pass"));
    }

    [Fact]
    public Task A_run_gives_up_waiting_for_a_lock_after_the_statement_lock_timeout() => AssertARunGivesUpWaitingForALockAsync("SELECT COUNT(*) FROM visits");

    protected override string AsText(string column) => $"{column}::text";

    /// <summary>
    /// An array of timestamps was taken for a timestamp column and failed the run with a bare "malformed array
    /// literal"; a domain or range of them was skipped without a word, its local times left behind.
    /// </summary>
    [Fact]
    public async Task Arrays_ranges_and_domains_of_local_times_are_left_alone_and_named_and_the_plain_column_converts()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE DOMAIN local_ts AS timestamp CHECK (VALUE > '2000-01-01');
            CREATE TABLE shifts (id int PRIMARY KEY, starts timestamp[], labels text[], d local_ts, r tsrange, t timestamp(0));
            INSERT INTO shifts VALUES (1, ARRAY['2024-07-01 12:00'::timestamp, '2024-03-10 02:30'], '{"2024-07-01 12:00:00",b}', '2024-07-01 12:00', '[2024-07-01 12:00, 2024-07-01 13:00)', '2024-07-01 12:00:00');
            """);
        string Untouched() => string.Join("|", Query(target, "SELECT starts::text, labels::text, d::text, r::text FROM shifts").Single().Values);
        var before = Untouched();

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder,
            Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward,
        }.Invoke(host, CancellationToken.None);

        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal("t", Assert.Single(result.Columns).Column);
        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
        Assert.Equal("2024-07-01 16:00:00+00", Query(target, "SET TIME ZONE 'UTC'; SELECT t::text FROM shifts").Single()[0]);
        Assert.Equal(before, Untouched());
        foreach (var (column, type) in new[] { ("starts", "timestamp without time zone[]"), ("d", "local_ts"), ("r", "tsrange") })
        {
            Assert.Contains(host.Warnings, w => w.StartsWith($"public.shifts.{column} is not converted: it is {type},", StringComparison.Ordinal));
        }

        Assert.DoesNotContain(host.Warnings, w => w.Contains("labels", StringComparison.Ordinal));
        var named = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Column = ["shifts.starts"], SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, named.ErrorId);
        Assert.Contains("an array or a range of local times", named.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Update_triggers_do_not_fire_for_the_conversion_or_its_undo_and_stay_as_they_were()
    {
        // The classic updated_at trigger would stamp every converted row with the time of the run.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE notes (id INTEGER PRIMARY KEY, at_text text NOT NULL, at timestamp NOT NULL, updated_at timestamptz NOT NULL);
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
            CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
            CREATE TRIGGER notes_touch_off BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
            ALTER TABLE notes DISABLE TRIGGER notes_touch_off;
            INSERT INTO notes VALUES (1, '2024-07-01 12:00:00', '2024-07-01 12:00:00', '2020-01-01 00:00:00Z'), (2, '2024-01-01 12:00:00', '2024-01-01 12:00:00', '2020-01-02 00:00:00Z');
            """);
        string Stamps() => string.Join("|", Query(target, "SELECT updated_at::text FROM notes ORDER BY id").Select(r => (string)r[0]!));
        string Triggers() => string.Join("|", Query(target, "SELECT tgname || ':' || tgenabled::text FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND NOT tgisinternal ORDER BY 1").Select(r => (string)r[0]!));
        var (stamps, triggers) = (Stamps(), Triggers());

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, Column = ["notes.at_text", "notes.at"] }.Invoke(host, CancellationToken.None);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal(["2024-07-01T16:00:00Z", "2024-01-01T17:00:00Z"], Query(target, "SELECT at_text FROM notes ORDER BY id").Select(r => (string)r[0]!));
        Assert.Equal(stamps, Stamps());
        Assert.Equal(triggers, Triggers());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(["2024-07-01 12:00:00", "2024-01-01 12:00:00"], Query(target, "SELECT at_text FROM notes ORDER BY id").Select(r => (string)r[0]!));
        Assert.Equal(stamps, Stamps());
        Assert.Equal(triggers, Triggers());

        // The application's own updates still fire it.
        Query(target, "UPDATE notes SET at_text = at_text WHERE id = 1");
        Assert.NotEqual(stamps, Stamps());
    }

    [Fact]
    public async Task Infinity_is_left_as_it_is_listed_and_undo_is_exact()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE spans (id INTEGER PRIMARY KEY, valid_from timestamp NOT NULL, valid_to timestamp NULL); CREATE INDEX ix_spans_to ON spans (valid_to)");
        Query(target, "INSERT INTO spans VALUES (1, '-infinity', 'infinity'), (2, '2024-01-15 08:30:00', '2024-07-01 12:00:00'), (3, '2024-03-10 02:30:00', 'infinity')");
        string Rows() => string.Join("|", Query(target, "SELECT id, valid_from::text, valid_to::text FROM spans ORDER BY id").Select(r => $"{r[0]}:{r[1]}:{r[2]}"));
        var before = Rows();

        var result = Run(target);
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        Assert.Equal([(2L, 1L), (1L, 2L)], result.Columns.Select(c => (c.Converted, c.Unparseable)));
        Assert.Equal("1:-infinity:infinity|2:2024-01-15 13:30:00+00:2024-07-01 16:00:00+00|3:2024-03-10 07:30:00+00:infinity", Rows());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    protected override string? NativeType => "timestamp";

    protected override string AuditTrigger => """
        CREATE FUNCTION visits_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (visit_id) VALUES (NEW.id); RETURN NEW; END $$;
        CREATE TRIGGER visits_audit AFTER INSERT ON visits FOR EACH ROW EXECUTE FUNCTION visits_audit();
        """;

    /// <summary>
    /// A conversion whose validation fails inside its transaction (a row lost under it, here injected) is rolled
    /// back: the column keeps its type and every value, and the error says so.
    /// </summary>
    [Fact]
    public async Task A_typed_conversion_that_fails_its_validation_is_rolled_back()
    {
        var target = await SeededAsync();
        var before = Fingerprint(target);
        var error = await Assert.ThrowsAsync<DbMigrationException>(() => new TimezoneMigrationService().RunAsync(new TimezoneMigrationRequest
        {
            Target = target,
            SourceTimeZone = "America/New_York",
            Columns = ["events.logged_at"],
            Ambiguous = AmbiguousTimePolicy.Earlier,
            Nonexistent = NonexistentTimePolicy.ShiftForward,
            SkipBackup = true,
            ReportPath = ReportFolder,
            BeforeValidation = async (connection, transaction, token) =>
            {
                await using var delete = connection.CreateCommand();
                delete.Transaction = transaction;
                delete.CommandText = "DELETE FROM events WHERE id = 2";
                await delete.ExecuteNonQueryAsync(token);
            },
        }, null, CancellationToken.None));

        Assert.Equal(ErrorIds.TimezoneValidationFailed, error.ErrorId);
        Assert.Contains("rolled back and the table is unchanged", error.Message, StringComparison.Ordinal);
        Assert.Contains("row(s), as before", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Fingerprint(target));
        Assert.Equal("timestamp without time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'logged_at'").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Drift_leaves_out_the_columns_a_run_converted_until_it_is_undone_and_still_reports_hand_made_changes()
    {
        var target = await Engine.CreateDatabaseAsync();
        using var dir = new TempDirectory();
        var folder = dir.File("migrations");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "V1__events.sql"), "CREATE TABLE events (id INTEGER PRIMARY KEY, logged_at timestamp(3) NOT NULL DEFAULT now(), note text);\nINSERT INTO events (id, logged_at) VALUES (1, '2024-07-01 12:00:00');\n");
        new InvokeDatabaseMigrationCommand { Database = target, Path = folder, SkipBackupMode = true, ForceMode = true }.Invoke(new RecordingHost(dir.Path), CancellationToken.None);
        List<SchemaDifference> Drift(RecordingHost host)
        {
            new TestMigrationDriftCommand { Database = target }.Invoke(host, CancellationToken.None);
            Assert.Empty(host.Errors);
            return host.ObjectsOf<SchemaDifference>().ToList();
        }

        var result = Run(target);
        Assert.Equal("timestamp with time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'logged_at'").Single()[0], CultureInfo.InvariantCulture));
        var afterRun = new RecordingHost();
        Assert.Empty(Drift(afterRun));
        Assert.Contains(afterRun.Verbose, v => v.Contains("logged_at", StringComparison.Ordinal) && v.Contains(result.RunId, StringComparison.Ordinal));

        // A change by hand is drift as before, beside the converted column.
        Query(target, "ALTER TABLE events ALTER COLUMN note TYPE varchar(10)");
        var handMade = Assert.Single(Drift(new RecordingHost()));
        Assert.Equal(("note", DifferenceKind.Changed), (handMade.Name, handMade.Kind));

        // Undone, the column is back as recorded: still nothing to report for it.
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal("note", Assert.Single(Drift(new RecordingHost())).Name);

        // A timestamptz change no run made is drift.
        Query(target, "ALTER TABLE events ALTER COLUMN logged_at TYPE timestamptz(3)");
        Assert.Contains(Drift(new RecordingHost()), d => d.Name == "logged_at");
    }

    [Fact]
    public async Task Views_over_a_converted_column_come_back_with_their_owner_grants_options_comments_and_triggers()
    {
        var target = await Engine.CreateDatabaseAsync();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var (owner, reader) = ($"dbm_view_owner_{suffix}", $"dbm_view_reader_{suffix}");
        Query(target, $"CREATE ROLE {owner}; CREATE ROLE {reader}");
        Query(target, $"""
            CREATE TABLE visits (id INTEGER PRIMARY KEY, at timestamp NOT NULL, note text);
            INSERT INTO visits VALUES (1, '2024-07-01 12:00:00', 'a'), (2, '2024-01-15 08:30:00', 'b');
            CREATE VIEW v_visits WITH (security_barrier = true) AS SELECT id, at, note FROM visits WITH LOCAL CHECK OPTION;
            ALTER VIEW v_visits OWNER TO {owner};
            GRANT SELECT, UPDATE ON visits TO {owner};
            GRANT SELECT ON v_visits TO {reader};
            GRANT UPDATE (note) ON v_visits TO {reader};
            COMMENT ON VIEW v_visits IS 'what the reports read';
            COMMENT ON COLUMN v_visits.at IS 'when';
            ALTER VIEW v_visits ALTER COLUMN note SET DEFAULT 'none';
            CREATE VIEW v_recent AS SELECT id, at FROM v_visits WHERE at > '2024-03-01';
            CREATE FUNCTION visits_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO visits VALUES (NEW.id, NEW.at, 'via view'); RETURN NEW; END $$;
            CREATE TRIGGER v_recent_insert INSTEAD OF INSERT ON v_recent FOR EACH ROW EXECUTE FUNCTION visits_insert();
            """);
        const string catalog = """
            SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text, c.reloptions::text, obj_description(c.oid, 'pg_class'),
                   (SELECT string_agg(a.attname || ':' || coalesce(a.attacl::text, '') || ':' || coalesce(col_description(c.oid, a.attnum), ''), ',' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0),
                   (SELECT string_agg(pg_get_expr(d.adbin, d.adrelid), ',') FROM pg_attrdef d WHERE d.adrelid = c.oid),
                   (SELECT string_agg(pg_get_triggerdef(t.oid), ';' ORDER BY t.tgname) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
            FROM pg_class c WHERE c.relname IN ('v_visits', 'v_recent') ORDER BY c.relname
            """;
        string Catalog() => string.Join("\n", Query(target, catalog).Select(r => string.Join("|", r.Values)));
        var before = Catalog();
        Assert.Contains(reader, before, StringComparison.Ordinal);
        Assert.Contains("check_option=local", before, StringComparison.Ordinal);

        var result = Run(target);
        Assert.Equal(["at"], result.Columns.Select(c => c.Column));
        Assert.Equal(before, Catalog());
        Assert.Equal("2024-07-01T16:00:00Z", Utc(Query(target, "SELECT at FROM v_recent WHERE id = 1").Single()[0]));
        // The INSTEAD OF trigger still works, and the view's default still applies.
        Query(target, "INSERT INTO v_recent (id, at) VALUES (3, '2024-08-01 00:00:00+00')");
        Assert.Equal("via view", Query(target, "SELECT note FROM visits WHERE id = 3").Single()[0]);

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Catalog());
        Assert.Equal("timestamp without time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'visits' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));
        Query(target, $"DROP VIEW v_recent, v_visits; DROP OWNED BY {reader}, {owner}; DROP ROLE {owner}; DROP ROLE {reader}");
    }

    [Fact]
    public async Task Materialized_views_generated_columns_indexes_policies_triggers_and_BEGIN_ATOMIC_functions_on_the_column_are_refused_with_nothing_changed()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE m (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE MATERIALIZED VIEW m_daily AS SELECT at::date AS day, count(*) FROM m GROUP BY 1;
            CREATE TABLE g (id INTEGER PRIMARY KEY, at timestamp NOT NULL, day date GENERATED ALWAYS AS (at::date) STORED);
            CREATE TABLE x (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE INDEX ix_x_day ON x (date_trunc('day', at));
            CREATE TABLE p (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE INDEX ix_p_recent ON p (id) WHERE at > '2024-01-01';
            CREATE TABLE f (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE FUNCTION last_f() RETURNS timestamp LANGUAGE sql BEGIN ATOMIC SELECT max(at) FROM f; END;
            CREATE TABLE s (id INTEGER PRIMARY KEY, at timestamp NOT NULL, later timestamp GENERATED ALWAYS AS (at + interval '1 hour') STORED);
            INSERT INTO m VALUES (1, '2024-07-01 12:00:00'); INSERT INTO g (id, at) VALUES (1, '2024-07-01 12:00:00'); INSERT INTO x VALUES (1, '2024-07-01 12:00:00'); INSERT INTO p VALUES (1, '2024-07-01 12:00:00'); INSERT INTO f VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO s (id, at) VALUES (1, '2024-07-01 12:00:00');
            CREATE TABLE r (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE POLICY r_recent ON r USING (at > '2020-01-01');
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
            CREATE TABLE w (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE TRIGGER w_when AFTER UPDATE ON w FOR EACH ROW WHEN (OLD.at IS DISTINCT FROM NEW.at) EXECUTE FUNCTION touch();
            CREATE TABLE u (id INTEGER PRIMARY KEY, at timestamp NOT NULL);
            CREATE TRIGGER u_of BEFORE UPDATE OF at ON u FOR EACH ROW EXECUTE FUNCTION touch();
            INSERT INTO r VALUES (1, '2024-07-01 12:00:00'); INSERT INTO w VALUES (1, '2024-07-01 12:00:00'); INSERT INTO u VALUES (1, '2024-07-01 12:00:00');
            """);
        foreach (var (table, names, notNamed) in new[]
        {
            ("m", "materialized view m_daily reads it", "none"), ("g", "generated column day is computed from at", "none"), ("x", "index ix_x_day", "none"),
            ("p", "index ix_p_recent", "none"), ("f", "function last_f()'s BEGIN ATOMIC body reads at", "none"),
            ("s", "generated column later is computed from at.", "computed from later"),
            ("r", "policy r_recent reads at", "none"), ("w", "trigger w_when names at", "none"), ("u", "trigger u_of names at", "none"),
        })
        {
            var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
            {
                Database = target, SourceTimeZone = "America/New_York", Table = [table], SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
            Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
            Assert.Contains(names, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(notNamed, error.Message, StringComparison.Ordinal);
            Assert.Contains("Nothing was changed", error.Message, StringComparison.Ordinal);
            Assert.Equal("2024-07-01 12:00:00", Query(target, $"SELECT at::text FROM {table}").Single()[0]);
            Assert.Equal("timestamp without time zone", Convert.ToString(Query(target, $"SELECT data_type FROM information_schema.columns WHERE table_name = '{table}' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));
        }

        // All found before the run records anything (an index used to be found by the ALTER itself, after the
        // backup), so -WhatIf names them too.
        Assert.Empty(Query(target, "SELECT 1 FROM pg_class WHERE relname = 'dbmigration_tz_runs'"));
        var preview = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Table = ["x", "p", "r", "w"], SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder) { WhatIf = true }, CancellationToken.None));
        Assert.Contains("policy r_recent", preview.Message, StringComparison.Ordinal);
        Assert.Contains("trigger w_when", preview.Message, StringComparison.Ordinal);
        Assert.Contains("index ix_x_day", preview.Message, StringComparison.Ordinal);
        Assert.Contains("index ix_p_recent", preview.Message, StringComparison.Ordinal);
    }

    [Fact]
    public Task A_check_constraint_against_a_local_time_literal_is_kept_and_named_in_a_warning() => AssertALocalCheckConstraintIsNamedAsync();

    [Fact]
    public async Task A_timestamp_column_of_a_table_keyed_by_several_columns_is_converted_recorded_and_undone_by_that_key()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE readings (device text NOT NULL, seq int NOT NULL, at timestamp NOT NULL, PRIMARY KEY (device, seq));
            INSERT INTO readings VALUES ('eu "x",1', 1, '2024-03-10 02:30:00'), ('a', 2, '2024-11-03 01:30:00'), ('a', 3, '2024-07-01 12:00:00'), ('b', 1, 'infinity');
            """);
        string Rows() => string.Join("|", Query(target, "SELECT device, seq, at::text FROM readings ORDER BY device, seq").Select(r => string.Join(",", r.Values)));
        var before = Rows();

        var analysis = Assert.Single(Run(target, whatIf: true).Columns);
        Assert.Equal((1, 1, 1), (analysis.Ambiguous, analysis.Nonexistent, analysis.Unparseable));

        var run = Run(target);
        Assert.True(run.Validation!.Passed, string.Join("; ", run.Validation.Checks));
        var column = Assert.Single(run.Columns);
        Assert.Equal((3, 1, 1, 1), (column.Converted, column.Ambiguous, column.Nonexistent, column.Unparseable));
        Assert.Equal("timestamp with time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'readings' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));
        Assert.Equal(
            ["a,2,2024-11-03 05:30:00", "a,3,2024-07-01 16:00:00", "b,1,infinity", "eu \"x\",1,1,2024-03-10 07:30:00"],
            Query(target, "SELECT device, seq, CASE WHEN isfinite(at) THEN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') ELSE at::text END FROM readings ORDER BY device, seq").Select(r => string.Join(",", r.Values)));

        // The shifted gap value and the infinity are recorded by the row constructor's text, quoting and all.
        var keys = Query(target, $"SELECT row_key FROM {TimezoneMigrationService.Rollback} WHERE run_id = '{run.RunId}' ORDER BY row_key").Select(r => (string)r[0]!).ToList();
        Assert.Equal(Query(target, "SELECT ROW(device, seq)::text FROM readings WHERE seq = 1 ORDER BY 1").Select(r => (string)r[0]!), keys);
        static IEnumerable<string> Strings(System.Text.Json.JsonElement e) => e.ValueKind switch
        {
            System.Text.Json.JsonValueKind.String => [e.GetString()!],
            System.Text.Json.JsonValueKind.Array => e.EnumerateArray().SelectMany(Strings),
            System.Text.Json.JsonValueKind.Object => e.EnumerateObject().SelectMany(p => Strings(p.Value)),
            _ => [],
        };
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run.ReportPath!, "report.json")));
        Assert.Contains(keys.Single(k => k.Contains("eu", StringComparison.Ordinal)), Strings(report.RootElement));

        new UndoTimezoneMigrationCommand { Database = target, Id = run.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
        Assert.Equal("timestamp without time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'readings' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task An_application_role_that_may_not_alter_or_update_a_table_is_refused_before_the_backup()
    {
        // Tables owned by postgres; the application role may change rows of two of them and only read the third.
        var target = await Engine.CreateDatabaseAsync();
        var (user, app) = NewRole(target);
        Query(target, $"""
            CREATE TABLE visits (id int PRIMARY KEY, at timestamp NOT NULL);
            CREATE TABLE notes (id int PRIMARY KEY, seen text);
            CREATE TABLE archive (id int PRIMARY KEY, seen text);
            INSERT INTO visits VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO notes VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO archive VALUES (1, '2024-07-01 12:00:00');
            GRANT CREATE ON SCHEMA public TO {user};
            GRANT SELECT, INSERT, UPDATE, DELETE ON visits, notes TO {user};
            GRANT SELECT ON archive TO {user};
            """);
        string Rows() => string.Join("|", Query(target, "SELECT v.at::text, n.seen, a.seen FROM visits v, notes n, archive a").Single().Values);
        var before = Rows();
        var backups = Path.Combine(ReportFolder, "backups");

        var host = new RecordingHost(ReportFolder);
        var refused = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand { Database = app, SourceTimeZone = "America/New_York", BackupPath = backups, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezonePermissionDenied, refused.ErrorId);
        Assert.Equal(ErrorKind.PermissionDenied, refused.Kind);
        Assert.Contains($"public.visits (at) becomes timestamptz by ALTER TABLE, which only its owner postgres", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"public.archive (seen) is converted by UPDATE, which {user} may not run on it", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("notes", refused.Message, StringComparison.Ordinal);
        Assert.EndsWith("-ExcludeColumn archive.seen, visits.at", refused.Message, StringComparison.Ordinal);

        // Nothing changed, no backup was taken, no run was recorded.
        Assert.Equal(before, Rows());
        Assert.False(Directory.Exists(backups));
        Assert.Empty(Query(target, "SELECT 1 FROM pg_class WHERE relname = 'dbmigration_tz_runs'"));

        // Left out, the table the role may update converts.
        var partial = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = app, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, ExcludeColumn = ["archive.seen", "visits.at"] }.Invoke(partial, CancellationToken.None);
        Assert.Equal("2024-07-01T16:00:00Z", Convert.ToString(Query(target, "SELECT seen FROM notes").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_second_role_writes_to_the_run_records_the_first_created_once_granted()
    {
        // The DBA converted one table; the owner of another converts its own later, as another role.
        var target = await Engine.CreateDatabaseAsync();
        var (user, owner) = NewRole(target);
        Query(target, $"""
            CREATE TABLE a (id int PRIMARY KEY, at timestamp NOT NULL);
            CREATE TABLE b (id int PRIMARY KEY, at timestamp NOT NULL);
            INSERT INTO a VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO b VALUES (1, '2024-07-01 12:00:00');
            GRANT CREATE ON SCHEMA public TO {user};
            ALTER TABLE b OWNER TO {user};
            """);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, Table = ["a"] }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None);
        InvokeTimezoneMigrationCommand OwnersRun() => new() { Database = owner, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, Table = ["b"] };

        var refused = Assert.Throws<DbMigrationException>(() => OwnersRun().Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezonePermissionDenied, refused.ErrorId);
        Assert.Contains($"were created by postgres in an earlier run, and {user} may not write to them", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"GRANT SELECT, INSERT, UPDATE, DELETE ON dbmigration_tz_runs, dbmigration_tz_rollback TO {user}", refused.Message, StringComparison.Ordinal);
        Assert.Equal("timestamp without time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'b' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));

        // Granted as the message says, the owner's run goes through (the existing index is left alone) and undoes.
        Query(target, $"GRANT SELECT, INSERT, UPDATE, DELETE ON dbmigration_tz_runs, dbmigration_tz_rollback TO {user}");
        var host = new RecordingHost(ReportFolder);
        OwnersRun().Invoke(host, CancellationToken.None);
        var run = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal("timestamp with time zone", Convert.ToString(Query(target, "SELECT data_type FROM information_schema.columns WHERE table_name = 'b' AND column_name = 'at'").Single()[0], CultureInfo.InvariantCulture));
        new UndoTimezoneMigrationCommand { Database = owner, Id = run.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, "SELECT at::text FROM b").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task An_undo_the_role_could_not_finish_is_refused_before_any_table_goes_back()
    {
        // The owner converted both tables; the application role may update rows of one and read the other.
        var target = await Engine.CreateDatabaseAsync();
        var (user, app) = NewRole(target);
        Query(target, $"""
            CREATE TABLE a_notes (id int PRIMARY KEY, seen text);
            CREATE TABLE b_visits (id int PRIMARY KEY, at timestamp NOT NULL);
            INSERT INTO a_notes VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO b_visits VALUES (1, '2024-07-01 12:00:00');
            """);
        var run = Run(target);
        Query(target, $"GRANT SELECT, INSERT, UPDATE, DELETE ON a_notes, b_visits, dbmigration_tz_runs, dbmigration_tz_rollback TO {user}");
        string Rows() => string.Join("|", Query(target, "SELECT n.seen, v.at::text FROM a_notes n, b_visits v").Single().Values);
        var converted = Rows();

        var refused = Assert.Throws<DbMigrationException>(() => new UndoTimezoneMigrationCommand { Database = app, Id = run.RunId }.Invoke(new RecordingHost(), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezonePermissionDenied, refused.ErrorId);
        Assert.Contains("public.b_visits (at) goes back to timestamp by ALTER TABLE, which only its owner postgres", refused.Message, StringComparison.Ordinal);
        Assert.EndsWith("Nothing was undone.", refused.Message, StringComparison.Ordinal);
        Assert.Equal(converted, Rows());

        // The owner's undo is whole.
        new UndoTimezoneMigrationCommand { Database = target, Id = run.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal("2024-07-01 12:00:00|2024-07-01 12:00:00", Rows());
    }

    [Fact]
    public async Task A_timestamp_that_is_part_of_a_key_of_several_columns_is_refused_by_name()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE slots (room int NOT NULL, at timestamp NOT NULL, booked timestamp, PRIMARY KEY (room, at));
            INSERT INTO slots VALUES (1, '2024-07-01 12:00:00', '2024-06-01 09:00:00');
            """);
        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.Contains("slots.at is part of the table's primary key (room, at)", refused.Message, StringComparison.Ordinal);
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, "SELECT at::text FROM slots").Single()[0], CultureInfo.InvariantCulture));

        // Left out, the other column converts, recorded by (room, at).
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, ExcludeColumn = ["slots.at"] }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Equal("2024-06-01 13:00:00", Convert.ToString(Query(target, "SELECT to_char(booked AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM slots").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public Task Every_column_a_run_cannot_convert_is_named_in_one_error_with_one_ExcludeColumn_list() => AssertEveryRefusedColumnIsNamedInOneErrorAsync();

    [Fact]
    public Task A_CHECK_that_UTC_values_break_is_named_and_nothing_changes() => AssertACheckRefusingTheConvertedValuesIsNamedAsync("at::text NOT LIKE '%+%'");

    [Fact]
    public Task A_generated_timestamp_column_is_left_to_the_engine_and_refused_by_name() => AssertGeneratedColumnsAreLeftToTheEngineAsync("""
        CREATE TABLE slots (id INTEGER PRIMARY KEY, at timestamp NOT NULL, minute int NOT NULL, made timestamp GENERATED ALWAYS AS (make_timestamp(2024, 7, 1, 12, minute, 0)) STORED);
        INSERT INTO slots (id, at, minute) VALUES (1, '2024-07-01 12:00:00', 5);
        """, "slots", "made", ["2024-07-01 12:05:00"]);

    [Fact]
    public async Task Undo_gives_each_column_back_its_declared_type_and_precision()
    {
        // A plain `timestamp` came back as `timestamp(6)`: the same values, but a schema diff against the original.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE shifts (id INTEGER PRIMARY KEY, started timestamp NOT NULL, ended timestamp(0), logged timestamp(3));
            INSERT INTO shifts VALUES (1, '2024-07-01 12:00:00.123456', '2024-07-01 20:00:00', '2024-07-01 20:00:01.5');
            """);
        string Types() => string.Join("|", Query(target, "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'shifts'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum").Select(r => (string)r[0]!));
        string Rows() => string.Join("|", Query(target, "SELECT started::text, ended::text, logged::text FROM shifts").Select(r => string.Join(",", r.Values)));
        var types = Types();
        var rows = Rows();
        Assert.Equal("id integer|started timestamp without time zone|ended timestamp(0) without time zone|logged timestamp(3) without time zone", types);

        var result = Run(target);
        Assert.Equal("id integer|started timestamp with time zone|ended timestamp(0) with time zone|logged timestamp(3) with time zone", Types());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(types, Types());
        Assert.Equal(rows, Rows());
    }

    [Fact]
    public async Task A_partitioned_table_is_converted_through_its_parent_and_undone_exactly()
    {
        // Discovery lists the partitions as tables too; converting them again after their parent failed the run.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE readings (id INTEGER PRIMARY KEY, at timestamp NOT NULL, note text) PARTITION BY RANGE (id);
            CREATE TABLE readings_1 PARTITION OF readings FOR VALUES FROM (0) TO (100);
            CREATE TABLE readings_2 PARTITION OF readings FOR VALUES FROM (100) TO (200);
            INSERT INTO readings VALUES (1, '2024-07-01 12:00:00', 'a'), (150, '2024-01-15 08:30:00', 'b');
            """);
        string Rows() => string.Join("|", Query(target, "SELECT id, at::text FROM readings ORDER BY id").Select(r => $"{r[0]}:{r[1]}"));
        var before = Rows();

        var refused = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Table = ["readings_1"], SkipBackupMode = true, ReportPath = ReportFolder,
        }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.Contains("partition", refused.Message, StringComparison.Ordinal);

        var result = Run(target);
        Assert.Equal(["public.readings.at"], result.Columns.Select(c => $"{c.Table}.{c.Column}"));
        Assert.True(result.Validation!.Passed);
        Assert.Equal("1:2024-07-01 16:00:00+00|150:2024-01-15 13:30:00+00", Rows());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public Task A_timestamptz_column_is_not_converted_and_naming_it_is_refused() =>
        InstantAndNonDateColumnsAreNotConvertedAsync("timestamptz", "2024-07-01 12:00:00+00", "current_schema()");

    /// <remarks>
    /// The ALTER of 200,000 rows can end between two polls on a loaded machine. An index on another column, through a
    /// function that pauses at every 2,000th row, keeps the rewrite (which rebuilds every index) going for a second.
    /// </remarks>
    [Fact]
    public Task A_typed_run_killed_during_its_ALTER_changes_nothing() =>
        KilledTypedRunAsync("SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'ALTER TABLE%big%'", afterFill: """
            CREATE FUNCTION slow_key(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN IF $1 % 2000 = 0 THEN PERFORM pg_sleep(0.01); END IF; RETURN $1; END $$;
            CREATE INDEX big_slow_key ON big (slow_key(id));
            """);

    /// <summary>
    /// An application keeps inserting while the table is converted. Its inserts queue behind the ALTER's lock and go
    /// in the moment the lock is released; the validation counts under the lock, so those rows are no mismatch.
    /// </summary>
    [Fact]
    public async Task Writers_queued_behind_the_ALTER_do_not_fail_its_validation()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE busy (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at timestamp NOT NULL)");
        Query(target, "INSERT INTO busy (at) SELECT TIMESTAMP '2024-01-01' + g * INTERVAL '17 minutes' FROM generate_series(1, 100000) g");
        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var inserts = 0;
        var writer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO busy (at) VALUES (TIMESTAMP '2024-06-01 12:00:00')";
                await insert.ExecuteNonQueryAsync();
                Interlocked.Increment(ref inserts);
            }
        });
        while (Volatile.Read(ref inserts) < 10)
        {
            await Task.Delay(5);
        }

        TimezoneMigrationResult result;
        try
        {
            result = Run(target);
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }

        var seen = Assert.Single(result.Columns, c => c.Table.EndsWith("busy", StringComparison.Ordinal)).RowsSeen;
        var now = Convert.ToInt64(Query(target, "SELECT COUNT(*) FROM busy").Single()[0], CultureInfo.InvariantCulture);
        Assert.True(now > seen, $"no row was written after the run's scan ({now} rows, {seen} seen): the test proved nothing");
        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbTimezoneEngineTests(MariaDbServer server) : TimezoneEngineTests(server, server.Password)
{
    [Fact]
    public Task A_run_gives_up_waiting_for_a_lock_after_the_statement_lock_timeout() => AssertARunGivesUpWaitingForALockAsync("SELECT id FROM visits WHERE id = 1 FOR UPDATE");

    protected override string AsText(string column) => $"CAST({column} AS CHAR)";

    protected override string? NativeType => "DATETIME(6)";

    protected override string AuditTrigger => "CREATE TRIGGER visits_audit AFTER INSERT ON visits FOR EACH ROW INSERT INTO audit (visit_id) VALUES (NEW.id)";

    [Fact]
    public async Task Text_columns_keyed_by_a_string_convert_alike_with_and_without_the_right_to_create_temporary_tables()
    {
        // Pages go through a temporary staging table shaped like the key (here a case-sensitive string); an account
        // without CREATE TEMPORARY TABLES writes them inline instead, with the same outcome.
        async Task<(DatabaseTarget Target, string Before)> SeedAsync()
        {
            var target = await Engine.CreateDatabaseAsync();
            Query(target, "CREATE TABLE shifts (code VARCHAR(20) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, began VARCHAR(40) NOT NULL, ended VARCHAR(40) NULL)");
            Query(target, "INSERT INTO shifts VALUES ('a', '2024-07-01 12:00:00', '2024-07-01 20:00:00'), ('A', '2024-01-15 08:30:00', NULL), ('b', '2024-07-01T16:00:00Z', 'open'), ('é', '2024-03-10 02:30:00', '2024-11-03 01:30:00')");
            return (target, string.Join("|", Query(target, "SELECT code, began, ended FROM shifts ORDER BY code").Select(r => string.Join(",", r.Values))));
        }

        string Converted(DatabaseTarget target, string runAs, string password)
        {
            var host = new RecordingHost(ReportFolder);
            new InvokeTimezoneMigrationCommand
            {
                Database = target.WithCredential(runAs, password), SourceTimeZone = "America/New_York", Column = ["shifts.began", "shifts.ended"],
                Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(host, CancellationToken.None);
            Assert.Empty(host.Errors);
            var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
            Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
            var after = string.Join("|", Query(target, "SELECT code, began, ended FROM shifts ORDER BY code").Select(r => string.Join(",", r.Values)));
            var undo = new RecordingHost();
            new UndoTimezoneMigrationCommand { Database = target.WithCredential(runAs, password), Id = result.RunId }.Invoke(undo, CancellationToken.None);
            Assert.Empty(undo.Errors);
            Assert.Equal(5, Assert.Single(undo.ObjectsOf<TimezoneUndoResult>()).ValuesRestored);
            return after;
        }

        const string Expected = "A,2024-01-15T13:30:00Z,|a,2024-07-01T16:00:00Z,2024-07-02T00:00:00Z|b,2024-07-01T16:00:00Z,open|é,2024-03-10T07:30:00Z,2024-11-03T05:30:00Z";
        var (staged, stagedBefore) = await SeedAsync();
        Assert.Equal(Expected, Converted(staged, staged.UserName!, server.Password));
        Assert.Equal(stagedBefore, string.Join("|", Query(staged, "SELECT code, began, ended FROM shifts ORDER BY code").Select(r => string.Join(",", r.Values))));

        var (inline, inlineBefore) = await SeedAsync();
        var user = "notmp_" + Guid.NewGuid().ToString("N")[..8];
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `{inline.Database}`.* TO '{user}'@'%';");
        var restricted = inline.WithCredential(user, "pw");
        var provider = DbMigration.Providers.DatabaseProviders.For(restricted);
        await using (var connection = await provider.OpenConnectionAsync(restricted, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            await using var probe = connection.CreateCommand();
            probe.CommandText = "CREATE TEMPORARY TABLE t_probe (id INT)";
            Assert.Equal(1044, (await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => probe.ExecuteNonQueryAsync())).ErrorCode);
        }

        provider.ReleasePooledConnections(restricted);
        Assert.Equal(Expected, Converted(inline, user, "pw"));
        Assert.Equal(inlineBefore, string.Join("|", Query(inline, "SELECT code, began, ended FROM shifts ORDER BY code").Select(r => string.Join(",", r.Values))));
    }

    [Fact]
    public async Task A_table_with_UPDATE_triggers_is_refused_before_anything_changes()
    {
        // MySQL cannot switch triggers off, and this one would stamp every converted row.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE notes (id INT PRIMARY KEY, at DATETIME NOT NULL, updated_at DATETIME NOT NULL)");
        Query(target, "CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW SET NEW.updated_at = NOW()");
        Query(target, "INSERT INTO notes VALUES (1, '2024-07-01 12:00:00', '2020-01-01 00:00:00')");

        var refused = Assert.Throws<DbMigrationException>(() => Run(target));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, refused.ErrorId);
        Assert.Contains("UPDATE trigger notes_touch", refused.Message, StringComparison.Ordinal);
        Assert.Equal("2024-07-01 12:00:00,2020-01-01 00:00:00", string.Join(",", Query(target, "SELECT CAST(at AS CHAR), CAST(updated_at AS CHAR) FROM notes").Single().Values));
        Assert.Empty(Query(target, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'dbmigration_tz%'"));

        // Without it the run goes ahead; a trigger created since does not stop the way back, but is named.
        Query(target, "DROP TRIGGER notes_touch");
        var result = Run(target);
        Query(target, "CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW SET NEW.updated_at = NOW()");
        var undo = new RecordingHost();
        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(undo, CancellationToken.None);
        Assert.Contains(undo.Warnings, w => w.Contains("UPDATE triggers (notes_touch) created since the run", StringComparison.Ordinal));
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, "SELECT CAST(at AS CHAR) FROM notes").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_text_column_converted_and_undone_leaves_ON_UPDATE_CURRENT_TIMESTAMP_columns_as_they_were()
    {
        // MySQL stamps such columns with the time of any UPDATE that does not set them.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE notes (id INT PRIMARY KEY, at_text VARCHAR(40) NOT NULL,
                updated_at DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
                touched TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)
            """);
        Query(target, "INSERT INTO notes VALUES (1, '2024-07-01 12:00:00', '2020-01-01 00:00:00', '2020-01-01 00:00:00'), (2, '2024-01-01 12:00:00', '2020-01-02 00:00:00', '2020-01-02 00:00:00')");
        string Stamps() => string.Join("|", Query(target, "SELECT CAST(updated_at AS CHAR), CAST(touched AS CHAR) FROM notes ORDER BY id").Select(r => $"{r[0]},{r[1]}"));
        var before = Stamps();

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, Column = ["notes.at_text"] }.Invoke(host, CancellationToken.None);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal(["2024-07-01T16:00:00Z", "2024-01-01T17:00:00Z"], Query(target, "SELECT at_text FROM notes ORDER BY id").Select(r => (string)r[0]!));
        Assert.Equal(before, Stamps());

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(["2024-07-01 12:00:00", "2024-01-01 12:00:00"], Query(target, "SELECT at_text FROM notes ORDER BY id").Select(r => (string)r[0]!));
        Assert.Equal(before, Stamps());
    }

    [Fact]
    public Task A_check_constraint_against_a_local_time_literal_is_kept_and_named_in_a_warning() => AssertALocalCheckConstraintIsNamedAsync();

    [Fact]
    public Task A_table_keyed_by_several_columns_is_refused_and_can_be_left_out_with_ExcludeColumn() => AssertACompositeKeyTableIsRefusedAndCanBeLeftOutAsync();

    [Fact]
    public Task Every_column_a_run_cannot_convert_is_named_in_one_error_with_one_ExcludeColumn_list() => AssertEveryRefusedColumnIsNamedInOneErrorAsync();

    [Fact]
    public Task A_CHECK_that_UTC_values_break_is_named_and_nothing_changes() => AssertACheckRefusingTheConvertedValuesIsNamedAsync("HOUR(at) < 18");

    [Fact]
    public Task A_generated_DATETIME_column_is_recomputed_by_the_server_and_refused_by_name() => AssertGeneratedColumnsAreLeftToTheEngineAsync("""
        CREATE TABLE slots (id INT PRIMARY KEY, at DATETIME NOT NULL, later DATETIME AS (at + INTERVAL 1 HOUR) STORED, virt DATETIME AS (at + INTERVAL 2 HOUR) VIRTUAL, KEY ix_later (later));
        INSERT INTO slots (id, at) VALUES (1, '2024-07-01 12:00:00');
        """, "slots", "later", ["2024-07-01 17:00:00", "2024-07-01 13:00:00"]);

    [Fact]
    public async Task A_generated_column_computed_from_a_converted_column_is_named_in_a_warning()
    {
        // MariaDB recomputes it from the UTC values: an order's "day" becomes its UTC day, and its index with it.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, """
            CREATE TABLE orders (id INT PRIMARY KEY, placed DATETIME NOT NULL, day DATE AS (CAST(placed AS DATE)) VIRTUAL, qty INT, twice INT AS (qty * 2) STORED, KEY ix_day (day));
            INSERT INTO orders (id, placed, qty) VALUES (1, '2024-07-01 22:30:00', 1);
            """);
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var warning = Assert.Single(host.Warnings, w => w.Contains("generated column", StringComparison.Ordinal));
        Assert.Contains("generated column day is computed from placed", warning, StringComparison.Ordinal);
        Assert.Equal("2024-07-02", Convert.ToString(Query(target, "SELECT CAST(day AS CHAR) FROM orders").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_system_versioned_table_is_converted_and_undone_with_a_warning_that_its_history_stays_local()
    {
        // Discovery listed base tables only: a versioned table's local times were silently left as they were.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE visit (id INT PRIMARY KEY, at DATETIME NOT NULL, note TEXT) WITH SYSTEM VERSIONING");
        Query(target, "INSERT INTO visit VALUES (1, '2024-07-01 12:00:00', 'a'), (2, '2024-01-15 08:00:00', 'b')");

        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
        Assert.Equal(["visit.at"], result.Columns.Select(c => $"{c.Table}.{c.Column}"));
        Assert.True(result.Validation!.Passed);
        Assert.Contains(host.Warnings, w => w.Contains("visit is system-versioned", StringComparison.Ordinal) && w.Contains("history", StringComparison.Ordinal));
        Assert.Equal(["2024-07-01 16:00:00", "2024-01-15 13:00:00"], Query(target, "SELECT CAST(at AS CHAR) FROM visit ORDER BY id").Select(r => (string)r[0]!));
        // The history keeps the local originals as earlier versions.
        Assert.Equal(2L, Convert.ToInt64(Query(target, "SELECT COUNT(*) FROM visit FOR SYSTEM_TIME ALL WHERE CAST(at AS CHAR) IN ('2024-07-01 12:00:00', '2024-01-15 08:00:00')").Single()[0], CultureInfo.InvariantCulture));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(["2024-07-01 12:00:00", "2024-01-15 08:00:00"], Query(target, "SELECT CAST(at AS CHAR) FROM visit ORDER BY id").Select(r => (string)r[0]!));
    }

    [Fact]
    public async Task A_user_that_may_not_update_a_table_is_refused_before_anything_changes()
    {
        var target = await Engine.CreateDatabaseAsync();
        var user = "app_" + Guid.NewGuid().ToString("N")[..8];
        Query(target, """
            CREATE TABLE visits (id INTEGER PRIMARY KEY, at DATETIME(6) NOT NULL);
            CREATE TABLE archive (id INTEGER PRIMARY KEY, at DATETIME(6) NOT NULL, seen VARCHAR(40));
            INSERT INTO visits VALUES (1, '2024-07-01 12:00:00');
            INSERT INTO archive VALUES (1, '2024-07-01 12:00:00', '2024-07-01 12:00:00');
            """);
        await server.RunSqlAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY 'app-pass'; GRANT SELECT, INSERT, DELETE, CREATE ON `{target.Database}`.* TO '{user}'@'%'; GRANT UPDATE ON `{target.Database}`.`visits` TO '{user}'@'%';");
        var app = target.WithCredential(user, "app-pass");
        string Rows() => string.Join("|", Query(target, "SELECT CAST(v.at AS CHAR), CAST(a.at AS CHAR), a.seen FROM visits v, archive a").Single().Values);
        var before = Rows();

        var refused = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand { Database = app, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(new RecordingHost(ReportFolder), CancellationToken.None));
        Assert.Equal(ErrorIds.TimezonePermissionDenied, refused.ErrorId);
        Assert.Contains("archive (at) is converted by UPDATE, which the connecting user may not run on it", refused.Message, StringComparison.Ordinal);
        Assert.Contains("archive (seen) is converted by UPDATE", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("visits", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, Rows());
        Assert.Empty(Query(target, "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'dbmigration_tz_runs'"));

        // With UPDATE granted, the same user's -WhatIf goes through to the analysis of all three columns.
        await server.RunSqlAsync($"GRANT UPDATE ON `{target.Database}`.`archive` TO '{user}'@'%';");
        var analysis = new RecordingHost(ReportFolder) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = app, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(analysis, CancellationToken.None);
        Assert.Equal(["archive.at", "archive.seen", "visits.at"], Assert.Single(analysis.ObjectsOf<TimezoneMigrationResult>()).Columns.Select(c => $"{c.Table.Split('.')[^1]}.{c.Column}").Order(StringComparer.Ordinal));
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task After_a_failed_run_only_the_tables_it_committed_batches_to_are_skipped()
    {
        // Local 15:00 becomes 19:00 UTC, which the CHECK refuses: batches of 100 commit one by one, and the batch with
        // ids 101-150 fails (in one lane or two) after the first has committed.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, $"""
            CREATE TABLE a_shifts (id INTEGER PRIMARY KEY, at DATETIME(6) NOT NULL, CONSTRAINT early CHECK (HOUR(at) < 18));
            INSERT INTO a_shifts VALUES {string.Join(", ", Enumerable.Range(1, 300).Select(i => $"({i}, '2024-07-01 {(i is > 100 and <= 150 ? 15 : 8):00}:00:00')"))};
            CREATE TABLE b_visits (id INTEGER PRIMARY KEY, at DATETIME(6) NOT NULL);
            INSERT INTO b_visits VALUES (1, '2024-07-01 12:00:00');
            """);
        var failed = await Assert.ThrowsAsync<DbMigrationException>(() => new TimezoneMigrationService().RunAsync(
            new TimezoneMigrationRequest { Target = target, SourceTimeZone = "America/New_York", Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackup = true, ReportPath = ReportFolder, BatchSize = 100, CommitInterval = TimeSpan.Zero },
            null, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, failed.ErrorId);
        var runId = (string)Assert.Single(Query(target, "SELECT run_id FROM dbmigration_tz_runs WHERE status = 'failed'"))[0]!;
        Assert.InRange(Convert.ToInt64(Query(target, "SELECT COUNT(*) FROM a_shifts WHERE HOUR(at) = 12").Single()[0], CultureInfo.InvariantCulture), 100L, 250L);
        Assert.Equal("2024-07-01 12:00:00", Convert.ToString(Query(target, "SELECT CAST(CAST(at AS DATETIME) AS CHAR) FROM b_visits").Single()[0], CultureInfo.InvariantCulture));

        // Again: a_shifts holds converted rows, so it waits for the undo the warning names; b_visits was never reached.
        var host = new RecordingHost(ReportFolder);
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Contains(host.Warnings, w => w.Contains($"a_shifts.at was converted by run {runId}", StringComparison.Ordinal));
        Assert.DoesNotContain(host.Warnings, w => w.Contains("b_visits.at was converted", StringComparison.Ordinal));
        Assert.Equal(["b_visits.at"], Assert.Single(host.ObjectsOf<TimezoneMigrationResult>()).Columns.Select(c => $"{c.Table.Split('.')[^1]}.{c.Column}"));
        Assert.Equal("2024-07-01 16:00:00", Convert.ToString(Query(target, "SELECT CAST(CAST(at AS DATETIME) AS CHAR) FROM b_visits").Single()[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_unique_index_hit_while_converting_in_place_is_named_and_undo_restores_the_rows()
    {
        // Hourly readings, unique per sensor: shifting 01:00 by four hours lands on 05:00 before that row moved.
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor INTEGER NOT NULL, at DATETIME(6) NOT NULL, UNIQUE KEY uq_sensor_at (sensor, at))");
        Query(target, "INSERT INTO readings VALUES " + string.Join(", ", Enumerable.Range(1, 48).Select(i => $"({i}, 1, '{new LocalDateTime(2024, 7, 1, 0, 0).PlusHours(i):uuuu-MM-dd HH:mm:ss}')")));
        string Rows() => string.Join("|", Query(target, "SELECT id, at FROM readings ORDER BY id").Select(r => $"{r[0]}:{((DateTime)r[1]!).Ticks}"));
        var before = Rows();

        var host = new RecordingHost(ReportFolder);
        var error = Assert.Throws<DbMigrationException>(() => new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder, BatchSize = 10,
        }.Invoke(host, CancellationToken.None));
        Assert.Equal(ErrorIds.TimezoneColumnNotConvertible, error.ErrorId);
        Assert.Contains("uq_sensor_at", error.Message, StringComparison.Ordinal);
        Assert.Contains("row by row", error.Message, StringComparison.Ordinal);
        var run = Assert.Single(Query(target, "SELECT run_id, status FROM dbmigration_tz_runs"));
        Assert.Equal("failed", run[1]);
        Assert.Contains(host.Warnings, w => w.Contains($"-Id {run[0]}", StringComparison.Ordinal));

        new UndoTimezoneMigrationCommand { Database = target, Id = (string)run[0]! }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    [Fact]
    public async Task A_DATETIME_that_defaults_to_the_clock_is_named_as_getting_local_times_after_the_run()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE visits (id INTEGER PRIMARY KEY, at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)");
        Query(target, "INSERT INTO visits (id, at) VALUES (1, '2024-07-01 12:00:00')");
        var host = new RecordingHost(ReportFolder) { WhatIf = true };
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", SkipBackupMode = true, ReportPath = ReportFolder }.Invoke(host, CancellationToken.None);
        Assert.Contains(host.Warnings, w => w.Contains("visits.at defaults to", StringComparison.Ordinal) && w.Contains("time_zone = '+00:00'", StringComparison.Ordinal));
    }

    [Fact]
    public Task A_TIMESTAMP_column_is_not_converted_and_naming_it_is_refused() =>
        InstantAndNonDateColumnsAreNotConvertedAsync("TIMESTAMP", "2024-07-01 12:00:00", "DATABASE()");

    [Fact]
    public async Task Zero_and_partial_dates_are_left_as_they_are_listed_by_key_and_undo_is_exact()
    {
        // A legacy table: MariaDB's default sql_mode allows them. They are no instant: never converted (arithmetic on
        // them gives NULL), and never lost.
        var target = await Engine.CreateDatabaseAsync();
        await server.RunSqlAsync($"""
            SET SESSION sql_mode = '';
            CREATE TABLE `{target.Database}`.legacy (id INT PRIMARY KEY, at DATETIME NULL);
            INSERT INTO `{target.Database}`.legacy VALUES (1, '0000-00-00 00:00:00'), (2, '2024-00-01 10:00:00'), (3, '2024-07-01 12:00:00'), (4, NULL), (5, '2024-03-10 02:30:00');
            """);
        string Rows() => string.Join("|", Query(target, "SELECT id, CAST(at AS CHAR) FROM legacy ORDER BY id").Select(r => $"{r[0]},{r[1]}"));
        var before = Rows();

        var result = Run(target);
        Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
        var column = Assert.Single(result.Columns);
        Assert.Equal((2L, 2L, 1L), (column.Converted, column.Unparseable, column.Nonexistent));
        Assert.Equal("1,0000-00-00 00:00:00|2,2024-00-01 10:00:00|3,2024-07-01 16:00:00|4,|5,2024-03-10 07:30:00", Rows());
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.ReportPath!, "report.json")));
        Assert.Equal(["1:0000-00-00 00:00:00", "2:2024-00-01 10:00:00"], report.RootElement.GetProperty("issues").EnumerateArray()
            .Where(i => i.GetProperty("issue").GetString() == "unparseable").Select(i => $"{i.GetProperty("key").GetString()}:{i.GetProperty("value").GetString()}").Order(StringComparer.Ordinal));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    /// <summary>
    /// Every batch commits (a zero commit interval): the kill falls between committed batches, once both key windows
    /// have committed some, so undo has two windows' progress to follow.
    /// </summary>
    [Fact]
    public Task A_typed_run_killed_between_batches_is_undone_exactly() =>
        KilledTypedRunAsync("SELECT COUNT(*) FROM dbmigration_tz_progress WHERE converted_to IS NOT NULL HAVING COUNT(*) >= 2", commitIntervalSeconds: "0");

    [Fact]
    public Task A_table_of_more_than_one_batch_is_converted_in_two_key_windows_and_undone_exactly() =>
        ConvertAndUndoInWindowsAsync(["0::1000", "1:1000:2000"]);

    /// <summary>
    /// Statement-based binary logging cannot log InnoDB writes made under READ COMMITTED (error 1665), which the key
    /// windows use: such a server gets one window under REPEATABLE READ, and the same exact result.
    /// </summary>
    [Fact]
    public async Task Under_statement_based_binary_logging_the_table_is_converted_as_one_window_and_undone_exactly()
    {
        Assert.Equal("1", (await server.RunSqlAsync("SELECT @@log_bin")).Trim());
        var format = (await server.RunSqlAsync("SELECT @@GLOBAL.binlog_format")).Trim();
        await server.RunSqlAsync("SET GLOBAL binlog_format = 'STATEMENT'");
        try
        {
            // Pooled sessions keep the format they started with.
            DbMigration.Providers.DatabaseProviders.For(server.Admin).ReleasePooledConnections(server.Admin);
            await ConvertAndUndoInWindowsAsync(["0::2000"]);
        }
        finally
        {
            await server.RunSqlAsync($"SET GLOBAL binlog_format = '{format}'");
            DbMigration.Providers.DatabaseProviders.For(server.Admin).ReleasePooledConnections(server.Admin);
        }
    }

    [Fact]
    public async Task Under_statement_based_binary_logging_text_columns_convert_through_the_staging_table_and_undo_exactly()
    {
        var format = (await server.RunSqlAsync("SELECT @@GLOBAL.binlog_format")).Trim();
        await server.RunSqlAsync("SET GLOBAL binlog_format = 'STATEMENT'");
        try
        {
            DbMigration.Providers.DatabaseProviders.For(server.Admin).ReleasePooledConnections(server.Admin);
            var target = await Engine.CreateDatabaseAsync();
            Query(target, "CREATE TABLE visits (id INTEGER PRIMARY KEY, arrived VARCHAR(40) NOT NULL, left_at VARCHAR(40) NULL)");
            Query(target, "INSERT INTO visits VALUES " + string.Join(", ", Enumerable.Range(1, 300).Select(i => $"({i}, '2024-03-10 0{i % 4}:30:00', {(i % 5 == 0 ? "NULL" : $"'2024-11-03 01:{i % 60:00}:00'")})")));
            var before = string.Join("|", Query(target, "SELECT id, arrived, left_at FROM visits ORDER BY id").Select(r => string.Join(",", r.Values)));

            var host = new RecordingHost(ReportFolder);
            new InvokeTimezoneMigrationCommand
            {
                Database = target, SourceTimeZone = "America/New_York", Column = ["visits.arrived", "visits.left_at"], BatchSize = 100,
                Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackupMode = true, ReportPath = ReportFolder,
            }.Invoke(host, CancellationToken.None);
            Assert.Empty(host.Errors);
            var result = Assert.Single(host.ObjectsOf<TimezoneMigrationResult>());
            Assert.True(result.Validation!.Passed, string.Join("\n", result.Validation.Checks));
            Assert.Equal(300, result.Columns.Single(c => c.Column == "arrived").Converted);
            Assert.Equal(240, result.Columns.Single(c => c.Column == "left_at").Converted);
            Assert.Equal("2024-03-10T07:30:00Z", Convert.ToString(Query(target, "SELECT arrived FROM visits WHERE id = 2").Single()[0], CultureInfo.InvariantCulture));

            new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
            Assert.Equal(before, string.Join("|", Query(target, "SELECT id, arrived, left_at FROM visits ORDER BY id").Select(r => string.Join(",", r.Values))));
        }
        finally
        {
            await server.RunSqlAsync($"SET GLOBAL binlog_format = '{format}'");
            DbMigration.Providers.DatabaseProviders.For(server.Admin).ReleasePooledConnections(server.Admin);
        }
    }

    /// <summary>
    /// 2000 rows with DST edges planted on both sides of the key midpoint, converted in batches of 100: every value is
    /// checked against NodaTime, the progress rows (lane:after:converted_to) against <paramref name="progress"/>, and
    /// undo must give back the exact originals.
    /// </summary>
    private async Task ConvertAndUndoInWindowsAsync(string[] progress)
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE lanes (id INTEGER PRIMARY KEY, at DATETIME(6) NULL, seen DATETIME(6) NOT NULL)");
        var start = new LocalDateTime(2023, 1, 1, 0, 0);
        var edges = new Dictionary<int, LocalDateTime>
        {
            [10] = new(2023, 3, 12, 2, 30),       // gap, first window
            [20] = new(2023, 11, 5, 1, 30),       // overlap, first window
            [1500] = new(2024, 3, 10, 2, 15, 7),  // gap, second window
            [1600] = new(2024, 11, 3, 1, 45),     // overlap, second window
        };
        LocalDateTime? At(int id) => id % 97 == 0 ? null : edges.TryGetValue(id, out var edge) ? edge : start.PlusMinutes(id * 541L).PlusNanoseconds(id * 1000L);
        LocalDateTime Seen(int id) => start.PlusMinutes(id * 263L);
        string Literal(LocalDateTime? value) => value is null ? "NULL" : $"'{value:uuuu-MM-dd HH:mm:ss.ffffff}'";
        foreach (var chunk in Enumerable.Range(1, 2000).Chunk(500))
        {
            Query(target, "INSERT INTO lanes (id, at, seen) VALUES " + string.Join(", ", chunk.Select(i => $"({i}, {Literal(At(i))}, {Literal(Seen(i))})")));
        }

        string Rows() => string.Join("|", Query(target, "SELECT id, at, seen FROM lanes ORDER BY id").Select(r => string.Join(",", r.Values.Select(v => v is DateTime d ? d.Ticks.ToString(CultureInfo.InvariantCulture) : "NULL"))));
        var before = Rows();

        var host = new RecordingHost();
        using var reports = new TempDirectory();
        new InvokeTimezoneMigrationCommand
        {
            Database = target, SourceTimeZone = "America/New_York", Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward,
            BatchSize = 100, SkipBackupMode = true, ReportPath = reports.Path,
        }
            .Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        var result = host.ObjectsOf<TimezoneMigrationResult>().Single();
        Assert.True(result.Validation!.Passed, string.Join("; ", result.Validation.Checks));
        // The edges planted in both windows, and any the generated values hit, as NodaTime classifies them.
        var zone = DateTimeZoneProviders.Tzdb["America/New_York"];
        var ids = Enumerable.Range(1, 2000).ToList();
        int[] Mapped(int count) => ids.Where(i => At(i) is { } local && zone.MapLocal(local).Count == count).ToArray();
        Assert.Subset(Mapped(0).ToHashSet(), new HashSet<int> { 10, 1500 });
        Assert.Subset(Mapped(2).ToHashSet(), new HashSet<int> { 20, 1600 });
        var at = result.Columns.Single(c => c.Column == "at");
        Assert.Equal((2000L - 2000 / 97, (long)Mapped(2).Length, (long)Mapped(0).Length), (at.Converted, at.Ambiguous, at.Nonexistent));
        Assert.Equal(2000, result.Columns.Single(c => c.Column == "seen").Converted);

        // Every value is what NodaTime makes of it: earlier offset in overlaps, gaps read with the offset before them.
        var resolver = Resolvers.CreateMappingResolver(Resolvers.ReturnEarlier, Resolvers.ReturnForwardShifted);
        long? Utc(LocalDateTime? local) => local is null ? null : local.Value.InZone(zone, resolver).ToDateTimeUtc().Ticks;
        var converted = Query(target, "SELECT id, at, seen FROM lanes ORDER BY id");
        Assert.Equal(2000, converted.Count);
        foreach (var row in converted)
        {
            var id = Convert.ToInt32(row[0], CultureInfo.InvariantCulture);
            Assert.Equal(Utc(At(id)), (row[1] as DateTime?)?.Ticks);
            Assert.Equal(Utc(Seen(id)), ((DateTime)row[2]!).Ticks);
        }

        // Each window converted to its end; the gap originals of every window are recorded.
        Assert.Equal(progress, Query(target, $"SELECT lane, lane_after, converted_to FROM dbmigration_tz_progress WHERE run_id = '{result.RunId}' ORDER BY lane")
            .Select(r => string.Join(":", r.Values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)))));
        Assert.Equal(Mapped(0).Select(i => i.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal),
            Query(target, $"SELECT row_key FROM dbmigration_tz_rollback WHERE run_id = '{result.RunId}' AND column_name = 'at'").Select(r => (string)r[0]!).Order(StringComparer.Ordinal));

        new UndoTimezoneMigrationCommand { Database = target, Id = result.RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, Rows());
    }

    /// <summary>The default interval keeps the batches in one transaction: a kill mid-way rolls them all back.</summary>
    [Fact]
    public Task A_typed_run_killed_inside_its_transaction_changes_nothing() =>
        // Inside its transaction: past 2000 rows, or blocked on the held row inside an UPDATE whose modified rows
        // InnoDB reports only when the statement ends (a first key range can reach the held row). InnoDB refreshes
        // INNODB_TRX only after 100 ms without a read (CACHE_MIN_IDLE_TIME_NS in trx0i_s.cc): a faster poll keeps
        // reading a snapshot taken before the run began, until some pause of 100 ms (23 s and 45 s in two runs here).
        KilledTypedRunAsync("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 2000 OR trx_state = 'LOCK WAIT'", expectUntouched: true, probeIntervalMilliseconds: 150);

    /// <summary>
    /// The second window meets a row another session holds past the lock wait timeout: the run fails with that error,
    /// the first window (converted, waiting to commit with the second) rolls back, and nothing has changed.
    /// </summary>
    [Fact]
    public async Task A_window_that_fails_stops_the_other_and_leaves_the_table_unchanged()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE stalled (id INTEGER PRIMARY KEY, at DATETIME(6) NOT NULL)");
        Query(target, "INSERT INTO stalled (id, at) VALUES " + string.Join(", ", Enumerable.Range(1, 2000).Select(i => $"({i}, '{new LocalDateTime(2024, 1, 1, 12, 0).PlusMinutes(i * 7L):uuuu-MM-dd HH:mm:ss}')")));
        string Rows() => string.Join("|", Query(target, "SELECT at FROM stalled ORDER BY id").Select(r => ((DateTime)r[0]!).Ticks));
        var before = Rows();

        var provider = DbMigration.Providers.DatabaseProviders.For(target);
        await using var holder = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var admin = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        await using var hold = await holder.BeginTransactionAsync();
        await using (var lockRow = holder.CreateCommand())
        {
            lockRow.Transaction = hold;
            lockRow.CommandText = "SELECT id FROM stalled WHERE id = 1500 FOR UPDATE";
            await lockRow.ExecuteScalarAsync();
        }

        async Task Global(string sql)
        {
            await using var command = admin.CreateCommand();
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }

        // New sessions (the run's) wait 1 s for a row lock instead of 50 s.
        await Global("SET GLOBAL innodb_lock_wait_timeout = 1");
        try
        {
            using var reports = new TempDirectory();
            var ex = await Assert.ThrowsAnyAsync<Exception>(() => new TimezoneMigrationService().RunAsync(
                new TimezoneMigrationRequest { Target = target, SourceTimeZone = "America/New_York", Ambiguous = AmbiguousTimePolicy.Earlier, Nonexistent = NonexistentTimePolicy.ShiftForward, SkipBackup = true, ReportPath = reports.Path, BatchSize = 100 },
                null, CancellationToken.None));
            Assert.Contains("Lock wait timeout", ex.ToString(), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            await Global("SET GLOBAL innodb_lock_wait_timeout = 50");
            await hold.RollbackAsync();
        }

        Assert.Equal(before, Rows());
        Assert.Equal(["0:", "1:"], Query(target, "SELECT lane, converted_to FROM dbmigration_tz_progress ORDER BY lane").Select(r => $"{r[0]}:{r[1]}"));
        // The run says how it ended, rather than reading as still running.
        Assert.Equal("failed", Assert.Single(Query(target, "SELECT status FROM dbmigration_tz_runs"))[0]);
    }

    [Fact]
    public async Task Columns_stamped_on_update_keep_their_values()
    {
        var target = await Engine.CreateDatabaseAsync();
        Query(target, "CREATE TABLE stamped (id INTEGER PRIMARY KEY, at DATETIME(6) NULL, touched TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)");
        Query(target, "INSERT INTO stamped VALUES (1, '2024-07-01 12:00:00', '2001-02-03 04:05:06'), (2, '2024-01-01 00:00:00', '2001-02-03 04:05:06')");
        string Touched() => string.Join(",", Query(target, "SELECT touched FROM stamped ORDER BY id").Select(r => ((DateTime)r[0]!).ToString("s", CultureInfo.InvariantCulture)));

        var host = new RecordingHost();
        new InvokeTimezoneMigrationCommand { Database = target, SourceTimeZone = "America/New_York", Column = ["stamped.at"], SkipBackupMode = true, ReportPath = Path.GetTempPath() }.Invoke(host, CancellationToken.None);
        Assert.Empty(host.Errors);
        Assert.Equal("2024-07-01T16:00:00", ((DateTime)Query(target, "SELECT at FROM stamped WHERE id = 1").Single()[0]!).ToString("s", CultureInfo.InvariantCulture));
        Assert.Equal("2001-02-03T04:05:06,2001-02-03T04:05:06", Touched());

        new UndoTimezoneMigrationCommand { Database = target, Id = host.ObjectsOf<TimezoneMigrationResult>().Single().RunId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal("2024-07-01T12:00:00", ((DateTime)Query(target, "SELECT at FROM stamped WHERE id = 1").Single()[0]!).ToString("s", CultureInfo.InvariantCulture));
        Assert.Equal("2001-02-03T04:05:06,2001-02-03T04:05:06", Touched());
    }
}
