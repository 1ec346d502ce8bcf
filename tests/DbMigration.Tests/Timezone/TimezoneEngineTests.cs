using System.Globalization;
using System.Text.Json;
using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.Query;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;
using DbMigration.Timezone;

namespace DbMigration.Tests.Timezone;

/// <summary>Invoke-TimezoneMigration and Undo-TimezoneMigration on every engine, on mixed real-world values.</summary>
public abstract class TimezoneEngineTests(IEngineUnderTest engine, string? password) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

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

    private static List<QueryRow> Query(DatabaseTarget target, string sql)
    {
        var host = new RecordingHost();
        new InvokeDatabaseQueryCommand { Database = target, Query = sql }.Invoke(host, CancellationToken.None);
        return host.ObjectsOf<QueryRow>().ToList();
    }

    private async Task<DatabaseTarget> SeededAsync()
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

    private string Fingerprint(DatabaseTarget target) =>
        string.Join("|", Query(target, "SELECT id, created_at" + (NativeType is null ? string.Empty : ", logged_at") + " FROM events ORDER BY id")
            .Select(r => string.Join(",", r.Values.Select(v => v switch { null => "NULL", DateTime d => d.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture), _ => Convert.ToString(v, CultureInfo.InvariantCulture) }))));

    private TimezoneMigrationResult Run(DatabaseTarget target, bool whatIf = false, AmbiguousTimePolicy ambiguous = AmbiguousTimePolicy.Earlier, NonexistentTimePolicy nonexistent = NonexistentTimePolicy.ShiftForward)
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

    private string Value(DatabaseTarget target, int id, string column = "created_at")
    {
        var value = Query(target, $"SELECT {column} FROM events WHERE id = {id}").Single()[0];
        return value switch
        {
            DateTime d => d.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        };
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
    public async Task Converts_to_UTC_validates_reports_and_a_rerun_is_a_no_op()
    {
        var target = await SeededAsync();
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
    }

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
        await using (var run = TestHostProcess.Start(password, "tz", target.ToString(), "Europe/London", "100"))
        {
            Assert.Equal("STARTED", await run.NextLineAsync(TimeSpan.FromSeconds(60)));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && !run.HasExited && !await RollbackHasRowsAsync(watch))
            {
                await Task.Delay(5);
            }

            Assert.False(run.HasExited, "the run finished before it could be interrupted");
            run.Kill();
            await run.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        // Every row is either original or recorded: undo brings back exactly the original data.
        var runId = Convert.ToString(Query(target, "SELECT run_id FROM dbmigration_tz_runs").Single()[0], CultureInfo.InvariantCulture)!;
        new UndoTimezoneMigrationCommand { Database = target, Id = runId }.Invoke(new RecordingHost(), CancellationToken.None);
        Assert.Equal(before, string.Join("|", Query(target, "SELECT at FROM big ORDER BY id").Select(r => r[0])));
    }

    private static async Task<bool> RollbackHasRowsAsync(System.Data.Common.DbConnection connection)
    {
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM dbmigration_tz_rollback";
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
    protected override string? NativeType => null;
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlTimezoneEngineTests(PostgresServer server) : TimezoneEngineTests(server, server.Password)
{
    protected override string? NativeType => "timestamp";
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbTimezoneEngineTests(MariaDbServer server) : TimezoneEngineTests(server, server.Password)
{
    protected override string? NativeType => "DATETIME(6)";
}
