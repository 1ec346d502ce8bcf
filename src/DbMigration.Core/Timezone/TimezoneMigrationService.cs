using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Providers.PostgreSql;
using DbMigration.Targets;
using NodaTime;

namespace DbMigration.Timezone;

/// <summary>
/// Converts naive local timestamps to UTC. Discovery, then an analysis pass where a policy could refuse, a safety
/// backup, then each table in one of three ways, every one of them recoverable at any point:
/// <list type="bullet">
/// <item>SQLite: the table rebuilt in one transaction by an INSERT … SELECT that calls our converter per value, the
/// original kept, renamed, as the run's rollback table (sqlite-update);</item>
/// <item>PostgreSQL timestamp: one ALTER … TYPE timestamptz USING a CASE over the zone's offsets (alter-case);</item>
/// <item>MariaDB/MySQL DATETIME: batched UPDATEs with the same CASE, and how far they got recorded with each
/// batch (update-case);</item>
/// <item>text on PostgreSQL and MariaDB: values read, converted here and written back with their originals (rewrite).</item>
/// </list>
/// The CASE is built from NodaTime's tzdb for the range the data spans, so servers never use their own zone data.
/// Validation and a report close every run.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    internal const string Runs = "dbmigration_tz_runs";
    internal const string Rollback = "dbmigration_tz_rollback";
    internal const string Progress = "dbmigration_tz_progress";
    internal const string LockName = "timezone";
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(5);
    private const int SampleSize = 200;

    /// <summary>Finds or checks the columns, and counts what each holds. Reads only: this is -WhatIf.</summary>
    public async Task<TimezoneMigrationResult> AnalyzeAsync(TimezoneMigrationRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var zone = TimezoneResolver.Resolve(request.SourceTimeZone);
        var converter = new TimezoneConverter(zone, request.Ambiguous, request.Nonexistent);
        var provider = DatabaseProviders.For(request.Target);
        await using var connection = await provider.OpenConnectionAsync(request.Target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var refused = new List<Refusal>();
        var plans = Plan(provider, await DiscoverAsync(provider, connection, request, refused, progress, cancellationToken).ConfigureAwait(false));
        await RefuseUnalterableAsync(provider, connection, plans, refused, cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(refused, request.Target);
        var issues = new List<TimestampIssue>();
        var results = await AnalyzePlansAsync(provider, connection, request, converter, plans, issues, progress, cancellationToken).ConfigureAwait(false);
        return new TimezoneMigrationResult
        {
            RunId = "analysis",
            SourceTimeZone = zone.Id,
            TzdbVersion = TimezoneResolver.TzdbVersion,
            Columns = results,
            Duration = stopwatch.Elapsed,
            RowsPerSecond = Rate(results, stopwatch.Elapsed),
            AnalysisOnly = true,
        };
    }

    public async Task<TimezoneMigrationResult> RunAsync(TimezoneMigrationRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var zone = TimezoneResolver.Resolve(request.SourceTimeZone);
        var converter = new TimezoneConverter(zone, request.Ambiguous, request.Nonexistent);
        var target = request.Target;
        var provider = DatabaseProviders.For(target);
        var runId = "tz-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture) + "-" + System.Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        EnsureReportFolderWritable(request);

        await using var connection = await provider.OpenConnectionAsync(target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await provider.LimitLockWaitAsync(connection, request.StatementLockTimeout, cancellationToken).ConfigureAwait(false);
        await using var runLock = await LockAsync(provider, connection, target, cancellationToken).ConfigureAwait(false);
        var refusals = new List<Refusal>();
        var plans = Plan(provider, await DiscoverAsync(provider, connection, request, refusals, progress, cancellationToken).ConfigureAwait(false));
        await RefuseUnalterableAsync(provider, connection, plans, refusals, cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(refusals, target);

        // A policy that refuses is checked before anything changes.
        var issues = new List<TimestampIssue>();
        if (request.Ambiguous == AmbiguousTimePolicy.Fail || request.Nonexistent == NonexistentTimePolicy.Fail)
        {
            var analysis = await AnalyzePlansAsync(provider, connection, request, converter, plans, issues, progress, cancellationToken).ConfigureAwait(false);
            Refuse(request, zone, analysis, issues);
            issues.Clear();
        }

        string? backupId = null;
        if (!request.SkipBackup)
        {
            if (request.BackupPath is null)
            {
                throw new DbMigrationException(ErrorIds.MigrationBackupRequired, ErrorKind.InvalidArgument, "A PreMigration backup is taken first: pass -BackupPath, or -SkipBackup to go without one.") { Target = target.ToString() };
            }

            provider.ReleasePooledConnections(target);
            backupId = (await new BackupService().CreateAsync(new BackupRequest { Source = target, Path = request.BackupPath, Category = BackupCategory.PreMigration, Tags = ["timezone", runId] }, progress, cancellationToken).ConfigureAwait(false)).Id;
        }

        await using (var setup = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await EnsureTablesAsync(provider, connection, cancellationToken, setup).ConfigureAwait(false);
            var runColumns = plans.SelectMany((plan, index) => plan.Columns.Select((c, slot) => new RunColumn(
                c.Table.ToString(), c.Column, plan.Key, c.Typed, plan.Method, plan.IntegerKey,
                plan.Method == SqliteUpdate ? SqliteRollbackTable(runId, index) : null, slot, plan.KeyColumns))).ToList();
            await RecordRunAsync(provider, connection, runId, request, zone, backupId, runColumns, cancellationToken, setup).ConfigureAwait(false);
            await setup.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        var text = new Lazy<TextTimestampConverter>(() => new TextTimestampConverter(converter, request.OutputFormat));
        var outcome = new RunOutcome();
        try
        {
            await ConvertPlansAsync(provider, connection, request, converter, text, runId, plans, issues, outcome, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Stopped (Ctrl+C) or failed part-way: the run must not read as still running, and its record stays.
            // SQLite reports a statement interrupted by the stop as its own error.
            var stopped = ex is OperationCanceledException || cancellationToken.IsCancellationRequested;
            await EndUnfinishedRunAsync(provider, connection, target, runId, stopped ? Stopped : Failed).ConfigureAwait(false);
            progress.Warning(UnfinishedRunWarning(runId, target, outcome, stopped));
            if (stopped && ex is not OperationCanceledException)
            {
                throw new OperationCanceledException($"Run {runId} was stopped.", ex, cancellationToken);
            }

            if (provider.IsLockWaitTimeout(ex))
            {
                throw new DbMigrationException(ErrorIds.TimezoneLockWaitTimeout, ErrorKind.ResourceBusy,
                    $"{outcome.Current?.Table.ToString() ?? "A table"}: a statement gave up waiting for a lock that another session holds (an open transaction on the table; Test-MigrationPreflight names the sessions). Once they have finished, run again (after the Undo-TimezoneMigration the warning names, if it says the run changed anything), or allow a longer wait with -StatementLockTimeout (0 waits as long as the server allows, while later queries on the table queue behind the conversion).", ex)
                { Target = target.ToString() };
            }

            if (outcome.Current is { } plan && UniqueConflict(ex) is { } duplicate)
            {
                // The final values may well be unique, but a unique index is checked row by row as an UPDATE goes.
                throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                    $"{plan.Table}: converting {string.Join(", ", plan.Columns.Select(c => c.Column))} in place hit a unique index ({duplicate.Message}). Either two rows hold the same instant (one local, one already in UTC), or, as the database checks uniqueness row by row, a converted value landed on another row's value before that row was converted: then drop the unique index for the conversion and create it again afterwards.", duplicate)
                { Target = target.ToString() };
            }

            if (outcome.Current is { } refused && CheckConflict(ex) is { } check)
            {
                throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                    $"{refused.Table}: a CHECK constraint refuses the converted values of {string.Join(", ", refused.Columns.Select(c => c.Column))} ({check.Message}). A run writes UTC: text as 2024-03-10T07:30:00Z, or 2024-03-10 07:30:00+00:00 with -OutputFormat Native, and typed columns as UTC instants. Change the constraint so it holds for those, or leave the column out with -ExcludeColumn.", check)
                { Target = target.ToString() };
            }

            throw;
        }

        var validation = new TimezoneValidation(outcome.Passed, outcome.Checks, outcome.Sampled);
        await SetRunStatusAsync(provider, connection, runId, validation.Passed ? "completed" : "validation_failed", cancellationToken).ConfigureAwait(false);
        var result = new TimezoneMigrationResult
        {
            RunId = runId,
            BackupId = backupId,
            SourceTimeZone = zone.Id,
            TzdbVersion = TimezoneResolver.TzdbVersion,
            Columns = OrderLike(plans, outcome.Columns),
            Duration = stopwatch.Elapsed,
            RowsPerSecond = Rate(outcome.Columns, stopwatch.Elapsed),
            Validation = validation,
        };
        string? reportPath = null;
        try
        {
            reportPath = WriteReport(request, result, issues);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The data is converted and its record kept: losing the result over the report would hide the run id.
            progress.Warning($"The run's report could not be written to {ReportRoot(request)}: {ex.Message} The run itself is complete and recorded in the database; undo it with Undo-TimezoneMigration -Database '{target}' -Id {runId}.");
        }

        progress?.Report(new ProgressUpdate(7, "Invoke-TimezoneMigration", "Done", 100, Completed: true));
        return result with { ReportPath = reportPath };
    }

    private static async Task ConvertPlansAsync(IDatabaseProvider provider, DbConnection connection, TimezoneMigrationRequest request, TimezoneConverter converter, Lazy<TextTimestampConverter> text,
        string runId, List<TablePlan> plans, List<TimestampIssue> issues, RunOutcome outcome, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        for (var index = 0; index < plans.Count; index++)
        {
            var plan = plans[index];
            outcome.Current = plan;
            var context = new ConvertContext(provider, connection, request, converter, text, runId, issues, outcome, progress);
            switch (plan.Method)
            {
                case SqliteUpdate:
                    await ConvertSqliteAsync(context, plan, SqliteRollbackTable(runId, index), cancellationToken).ConfigureAwait(false);
                    break;
                case AlterCase:
                    await ConvertPostgresTypedAsync(context, plan, cancellationToken).ConfigureAwait(false);
                    break;
                case UpdateCase:
                    await ConvertMySqlTypedAsync(context, plan, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    await ConvertByRewriteAsync(context, plan, cancellationToken).ConfigureAwait(false);
                    break;
            }

            outcome.TablesDone.Add(plan.Table.ToString());
            outcome.Current = null;
        }
    }

    /// <summary>What a run that ended part-way leaves: converted tables, and a table that commits in batches may be half done.</summary>
    private static string UnfinishedRunWarning(string runId, DatabaseTarget target, RunOutcome outcome, bool stopped)
    {
        var how = stopped ? "was stopped" : "failed";
        var partly = outcome.Current is { Method: UpdateCase or Rewrite } current ? current.Table.ToString() : null;
        if (outcome.TablesDone.Count == 0 && partly is null)
        {
            return $"Run {runId} {how} before it converted any table: nothing was changed.";
        }

        var done = outcome.TablesDone.Count == 0 ? string.Empty : $"{string.Join(", ", outcome.TablesDone)} stay{(outcome.TablesDone.Count == 1 ? "s" : string.Empty)} converted";
        var half = partly is null ? string.Empty : $"{partly} may be partly converted (its batches commit as they go)";
        return $"Run {runId} {how} part-way: {string.Join("; ", new[] { done, half }.Where(t => t.Length > 0))}. Undo-TimezoneMigration -Database '{target}' -Id {runId} puts back what it changed.";
    }

    /// <summary>A unique violation (PostgreSQL 23505, MySQL 1062, SQLite's UNIQUE constraint) that ended a conversion, wherever it is wrapped.</summary>
    private static DbException? UniqueConflict(Exception? error)
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is DbException { SqlState: "23505" } or DbException { ErrorCode: 1062, SqlState: "23000" } or Microsoft.Data.Sqlite.SqliteException { SqliteExtendedErrorCode: 2067 })
            {
                return (DbException)error;
            }
        }

        return null;
    }

    /// <summary>A CHECK constraint's refusal: PostgreSQL 23514, MariaDB 4025 and MySQL 3819, SQLITE_CONSTRAINT_CHECK.</summary>
    private static DbException? CheckConflict(Exception? error)
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is DbException { SqlState: "23514" } or DbException { ErrorCode: 4025 or 3819 } or Microsoft.Data.Sqlite.SqliteException { SqliteExtendedErrorCode: 275 })
            {
                return (DbException)error;
            }
        }

        return null;
    }

    private const string Stopped = "stopped";
    private const string Failed = "failed";

    /// <summary>
    /// Marks a run that ended part-way, on its own connection if the statement that failed left that one unusable.
    /// Best effort: the error that ended the run is the one to report, and undo works whatever the status says.
    /// </summary>
    private static async Task EndUnfinishedRunAsync(IDatabaseProvider provider, DbConnection connection, DatabaseTarget target, string runId, string status)
    {
        try
        {
            await SetRunStatusAsync(provider, connection, runId, status, CancellationToken.None).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException)
        {
            // Fall through to a fresh connection.
        }

        try
        {
            await using var fresh = await provider.OpenConnectionAsync(target, ConnectTimeout, CancellationToken.None).ConfigureAwait(false);
            await SetRunStatusAsync(provider, fresh, runId, status, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or DbMigrationException)
        {
            // The server is gone; the run still reads "running", which undo handles the same way.
        }
    }

    /// <summary>The run's lock, held in the run's own session (disposed before the connection, so it is released first).</summary>
    private static async Task<IDatabaseLock> LockAsync(IDatabaseProvider provider, DbConnection connection, DatabaseTarget target, CancellationToken cancellationToken)
    {
        try
        {
            return await provider.AcquireLockAsync(connection, target, LockName, LockTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
        {
            throw new DbMigrationException(ErrorIds.TimezoneRunInProgress, ErrorKind.ResourceBusy,
                $"Another timezone migration or undo is running on {target}; wait for it to finish.", ex) { Target = target.ToString() };
        }
    }

    private static void Refuse(TimezoneMigrationRequest request, DateTimeZone zone, IReadOnlyList<TimezoneColumnResult> analysis, List<TimestampIssue> issues)
    {
        var refused = analysis.Where(a => request.Ambiguous == AmbiguousTimePolicy.Fail && a.Ambiguous > 0 || request.Nonexistent == NonexistentTimePolicy.Fail && a.Nonexistent > 0).ToList();
        if (refused.Count == 0)
        {
            return;
        }

        var examples = issues.Where(i => i.Issue is "ambiguous" or "nonexistent").Take(5).Select(i => $"{i.Table}.{i.Column} key {i.Key} = '{i.Value}' ({i.Issue})");
        throw new DbMigrationException(
            refused.Any(r => r.Ambiguous > 0 && request.Ambiguous == AmbiguousTimePolicy.Fail) ? ErrorIds.TimezoneAmbiguousTime : ErrorIds.TimezoneNonexistentTime,
            ErrorKind.InvalidData,
            "Nothing was changed: " + string.Join("; ", refused.Select(r => $"{r.Table}.{r.Column} has {r.Ambiguous} ambiguous and {r.Nonexistent} nonexistent local time(s) in {zone.Id}")) +
            $". For example: {string.Join("; ", examples)}. Choose -Ambiguous Earlier|Later and -Nonexistent ShiftForward to convert them.")
        { Target = request.Target.ToString() };
    }

    private static async Task<IReadOnlyList<TimezoneColumnResult>> AnalyzePlansAsync(
        IDatabaseProvider provider, DbConnection connection, TimezoneMigrationRequest request, TimezoneConverter converter, IReadOnlyList<TablePlan> plans,
        List<TimestampIssue> issues, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var text = new Lazy<TextTimestampConverter>(() => new TextTimestampConverter(converter, request.OutputFormat));
        var outcome = new RunOutcome();
        var context = new ConvertContext(provider, connection, request, converter, text, null, issues, outcome, progress);
        foreach (var plan in plans)
        {
            switch (plan.Method)
            {
                case SqliteUpdate:
                    await AnalyzeSqliteAsync(context, plan, cancellationToken).ConfigureAwait(false);
                    break;
                case AlterCase:
                case UpdateCase:
                    await AnalyzeTypedAsync(context, plan, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    outcome.Columns.AddRange(await RewriteTableAsync(context, plan, cancellationToken).ConfigureAwait(false));
                    break;
            }
        }

        return OrderLike(plans, outcome.Columns);
    }

    private static IReadOnlyList<TimezoneColumnResult> OrderLike(IReadOnlyList<TablePlan> plans, List<TimezoneColumnResult> results)
    {
        var order = plans.SelectMany(p => p.Columns).Select((c, i) => (c.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
        return results.OrderBy(r => order.GetValueOrDefault($"{r.Table}.{r.Column}", int.MaxValue)).ToList();
    }

    private static double Rate(IReadOnlyList<TimezoneColumnResult> results, TimeSpan elapsed) =>
        results.Count == 0 ? 0 : results.GroupBy(r => r.Table).Sum(g => g.Max(r => r.RowsSeen)) / Math.Max(elapsed.TotalSeconds, 1e-6);

    // ---- plans: how each table's columns are converted ----

    internal const string SqliteUpdate = "sqlite-update";
    internal const string AlterCase = "alter-case";
    internal const string UpdateCase = "update-case";
    internal const string Rewrite = "rewrite";

    /// <summary>A column (or a table's columns) a run cannot convert, and the -ExcludeColumn names that leave it out.</summary>
    private sealed record Refusal(IReadOnlyList<string> Exclude, DbMigrationException Error);

    private static Refusal RefusalOf(TablePlan plan, DbMigrationException error) =>
        new(plan.Columns.Select(c => $"{plan.Table.Name}.{c.Column}").ToList(), error);

    /// <summary>
    /// Every refusal in one error, before anything is recorded: a sysadmin leaves them all out in one go instead of
    /// meeting them one run at a time. One refusal keeps its own error; several share the id when they agree.
    /// </summary>
    private static void ThrowIfRefused(List<Refusal> refused, DatabaseTarget target)
    {
        if (refused.Count == 0)
        {
            return;
        }

        if (refused.Count == 1)
        {
            var only = refused[0].Error;
            throw new DbMigrationException(only.ErrorId, only.Kind, only.Message) { Target = target.ToString() };
        }

        var ids = refused.Select(r => r.Error.ErrorId).Distinct(StringComparer.Ordinal).ToList();
        var kinds = refused.Select(r => r.Error.Kind).Distinct().ToList();
        var items = refused.Select(r => "- " + r.Error.Message.Replace(NothingChanged + " ", string.Empty, StringComparison.Ordinal).Replace(" " + NothingChanged, string.Empty, StringComparison.Ordinal));
        var exclude = refused.SelectMany(r => r.Exclude).Distinct(StringComparer.OrdinalIgnoreCase);
        throw new DbMigrationException(ids.Count == 1 ? ids[0] : ErrorIds.TimezoneColumnNotConvertible, kinds.Count == 1 ? kinds[0] : ErrorKind.InvalidOperation,
            $"{refused.Count} of the columns found cannot be converted. {NothingChanged}{Environment.NewLine}{string.Join(Environment.NewLine, items)}{Environment.NewLine}To leave them all out: -ExcludeColumn {string.Join(", ", exclude)}")
        { Target = target.ToString() };
    }

    private const string NothingChanged = "Nothing was changed.";

    /// <summary>Finds, before anything is recorded, tables whose columns a run cannot convert where they are.</summary>
    private static async Task RefuseUnalterableAsync(IDatabaseProvider provider, DbConnection connection, List<TablePlan> plans, List<Refusal> refused, CancellationToken cancellationToken)
    {
        // A SQLite table without a one-column key is tracked by rowid, which a WITHOUT ROWID table does not have.
        foreach (var plan in plans.Where(p => p.Method == SqliteUpdate && p.Key == "rowid"))
        {
            await using var command = connection.CreateCommand("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = @t").AddParameter("@t", plan.Table.Name);
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string create && create.Contains("WITHOUT ROWID", StringComparison.OrdinalIgnoreCase))
            {
                refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezoneNoPrimaryKey, ErrorKind.InvalidOperation,
                    $"{plan.Table} is a WITHOUT ROWID table with a primary key of several columns: a run records, checks and undoes rows by one key (a rowid, or a one-column primary key). Nothing was changed. Leave its columns out with {string.Join(", ", plan.Columns.Select(c => $"-ExcludeColumn {plan.Table.Name}.{c.Column}"))}, or convert them by hand.")));
            }
        }

        // SQLite converts with foreign key checks off: a converted column on either side of a foreign key would stop
        // matching the other side's in silence, and the application's next write to those rows would fail.
        foreach (var plan in plans.Where(p => p.Method == SqliteUpdate))
        {
            await RefuseForeignKeysAsync(provider.Engine, connection, plan, refused, cancellationToken).ConfigureAwait(false);
        }

        // MySQL cannot switch triggers off: its UPDATE triggers would fire for every converted row, and one that sets
        // NEW.updated_at = NOW() loses every row's value.
        foreach (var plan in provider.Engine == DatabaseEngine.MySql ? plans : [])
        {
            var triggers = new List<string>();
            await using (var command = connection.CreateCommand("SELECT trigger_name FROM information_schema.triggers WHERE event_object_schema = DATABASE() AND event_object_table = @t AND event_manipulation = 'UPDATE' ORDER BY trigger_name").AddParameter("@t", plan.Table.Name))
            {
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    triggers.Add(reader.GetString(0));
                }
            }

            if (triggers.Count > 0)
            {
                refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                    $"{plan.Table} has UPDATE trigger{(triggers.Count == 1 ? string.Empty : "s")} {string.Join(", ", triggers)}, which would fire for every converted row (stamping times or writing audit rows), and MySQL cannot switch triggers off for one session. Nothing was changed. Keep their text (SHOW CREATE TRIGGER), drop them for the conversion and create them again afterwards, or leave the table out with -ExcludeColumn.")));
            }

            // A foreign key on either side: each converted value would stop matching the other side's (a batch that
            // already committed could not be followed by the rest).
            await RefuseForeignKeysAsync(provider.Engine, connection, plan, refused, cancellationToken).ConfigureAwait(false);
        }

        foreach (var plan in plans.Where(p => p.Method == AlterCase))
        {
            var columns = plan.Columns.Select(c => c.Column).ToList();
            var blockers = await PostgresBlockersAsync(connection, provider.QuoteTable(plan.Table), columns, cancellationToken).ConfigureAwait(false);
            if (blockers.Count > 0)
            {
                refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                    $"{plan.Table} ({string.Join(", ", columns)}) cannot become timestamptz: {string.Join("; ", blockers)}. PostgreSQL cannot change a column's type under those, and DbMigration only recreates plain views. Nothing was changed. Drop them and create them again after the run, or leave the column out with -ExcludeColumn.")));
            }
            else if (await IndexesNotImmutableAsync(provider, connection, provider.QuoteTable(plan.Table), columns, cancellationToken).ConfigureAwait(false) is { Count: > 0 } indexes)
            {
                refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation, IndexNotImmutableMessage(provider.QuoteTable(plan.Table), columns, indexes))));
            }
        }

        await RefuseWithoutRightsAsync(provider, connection, plans, refused, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// SQLite and MariaDB: refuses the plan when a converted column is on either side of a foreign key (PostgreSQL's
    /// are among <see cref="PostgresBlockersAsync"/>). Each row: the constraint's name (SQLite's have none), the
    /// referencing table and column, the referenced table and column.
    /// </summary>
    private static async Task RefuseForeignKeysAsync(DatabaseEngine engine, DbConnection connection, TablePlan plan, List<Refusal> refused, CancellationToken cancellationToken)
    {
        var names = string.Join(", ", plan.Columns.Select((_, i) => $"@c{i}"));
        var sql = engine == DatabaseEngine.Sqlite
            ? $"SELECT '', m.name, f.\"from\", f.\"table\", coalesce(f.\"to\", '(its primary key)') FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND (m.name = @t AND f.\"from\" IN ({names}) OR f.\"table\" = @t AND f.\"to\" IN ({names})) ORDER BY 2, 3"
            : $"SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL AND (TABLE_NAME = @t AND COLUMN_NAME IN ({names}) OR REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = @t AND REFERENCED_COLUMN_NAME IN ({names})) ORDER BY 1, 2, 3";
        var keys = new List<string>();
        await using (var command = connection.CreateCommand(sql).AddParameter("@t", plan.Table.Name))
        {
            for (var i = 0; i < plan.Columns.Count; i++)
            {
                command.AddParameter($"@c{i}", plan.Columns[i].Column);
            }

            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var name = reader.GetString(0);
                keys.Add($"{(name.Length == 0 ? "a foreign key" : "foreign key " + name)} ({reader.GetString(1)}.{reader.GetString(2)} references {reader.GetString(3)}.{reader.GetString(4)})");
            }
        }

        if (keys.Count > 0)
        {
            refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                $"{plan.Table} ({string.Join(", ", plan.Columns.Select(c => c.Column))}) is in {string.Join("; ", keys)}: converted values would no longer match the other side's. Nothing was changed. Drop the foreign key, convert both columns, and add it again, or leave the column out with -ExcludeColumn.")));
        }
    }

    /// <summary>
    /// Tables the connecting role may not convert, found before the backup and before any table changes: otherwise
    /// an application role (rows, not tables) fails on the first table it may not alter, after converting the others.
    /// </summary>
    private static async Task RefuseWithoutRightsAsync(IDatabaseProvider provider, DbConnection connection, List<TablePlan> plans, List<Refusal> refused, CancellationToken cancellationToken)
    {
        if (plans.Count > 0 && await RecordsProblemAsync(provider, connection, cancellationToken).ConfigureAwait(false) is { } records)
        {
            throw new DbMigrationException(ErrorIds.TimezonePermissionDenied, ErrorKind.PermissionDenied, $"{records.Problem}. {NothingChanged} {records.Remedy}.");
        }

        foreach (var plan in plans)
        {
            if (await RightsProblemAsync(provider, connection, plan.Table.ToString(), provider.QuoteTable(plan.Table), plan.Method, plan.Columns.Select(c => c.Column).ToList(), undo: false, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                refused.Add(RefusalOf(plan, new DbMigrationException(ErrorIds.TimezonePermissionDenied, ErrorKind.PermissionDenied,
                    $"{problem.Problem}. {NothingChanged} {problem.Remedy}, or leave the column out with -ExcludeColumn.")));
            }
        }
    }

    /// <summary>What the connecting role lacks to change a table as a run (or its undo) does, and who or what can fix it.</summary>
    private sealed record RightsProblem(string Problem, string Remedy);

    /// <remarks>PostgreSQL: a typed column's ALTER is for the table's owner (a member of the owning role, or a superuser), text needs UPDATE.</remarks>
    private static async Task<RightsProblem?> RightsProblemAsync(IDatabaseProvider provider, DbConnection connection, string display, string table, string method, IReadOnlyList<string> columns, bool undo, CancellationToken cancellationToken)
    {
        var named = $"{display} ({string.Join(", ", columns)})";
        if (provider.Engine == DatabaseEngine.PostgreSql)
        {
            await using var command = connection.CreateCommand("SELECT pg_has_role(c.relowner, 'USAGE'), has_table_privilege(c.oid, 'UPDATE'), pg_get_userbyid(c.relowner), current_user::text FROM pg_class c WHERE c.oid = @t::regclass").AddParameter("@t", table);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var (owner, user) = (reader.GetString(2), reader.GetString(3));
            if (method == AlterCase && !reader.GetBoolean(0))
            {
                return new RightsProblem($"{named} {(undo ? "goes back to timestamp" : "becomes timestamptz")} by ALTER TABLE, which only its owner {owner} (a member of that role, or a superuser) may run, and {user} is none of those", $"Run as {owner}");
            }

            return method != AlterCase && !reader.GetBoolean(1)
                ? new RightsProblem($"{named} is {(undo ? "put back" : "converted")} by UPDATE, which {user} may not run on it", $"Grant UPDATE or run as its owner {owner}")
                : null;
        }

        if (provider.Engine != DatabaseEngine.MySql)
        {
            return null;
        }

        // MySQL resolves grants through roles and wildcards, so the server itself is asked: EXPLAIN checks an UPDATE's
        // privileges without running it (nothing written or logged, as -WhatIf wants).
        var assignments = string.Join(", ", columns.Select(c => $"{provider.QuoteIdentifier(c)} = {provider.QuoteIdentifier(c)}"));
        try
        {
            await connection.ExecuteAsync($"EXPLAIN UPDATE {table} SET {assignments} WHERE FALSE", cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (DbException ex) when (ex.ErrorCode is 1142 or 1143)
        {
            return new RightsProblem($"{named} is {(undo ? "put back" : "converted")} by UPDATE, which the connecting user may not run on it ({ex.Message})", "Grant UPDATE on it");
        }
    }

    /// <summary>PostgreSQL: the run records belong to the role that ran first; another role's run or undo writes to them too.</summary>
    private static async Task<RightsProblem?> RecordsProblemAsync(IDatabaseProvider provider, DbConnection connection, CancellationToken cancellationToken)
    {
        if (provider.Engine != DatabaseEngine.PostgreSql)
        {
            return null;
        }

        return await UnwritableTables.FindAsync(connection, [Runs, Rollback], cancellationToken).ConfigureAwait(false) is { } unwritable
            ? new RightsProblem($"The timezone run records ({string.Join(", ", unwritable.Tables)}) were created by {unwritable.Owner} in an earlier run, and {unwritable.User} may not write to them",
                $"As {unwritable.Owner}: {unwritable.Grant}; or run as {unwritable.Owner}")
            : null;
    }

    /// <summary>The columns of one table converted the same way, in one pass.</summary>
    private sealed record TablePlan(TableName Table, string Key, bool IntegerKey, IReadOnlyList<TimestampColumn> Columns, string Method, string[]? KeyColumns = null);

    private static List<TablePlan> Plan(IDatabaseProvider provider, IReadOnlyList<TimestampColumn> columns) =>
        columns.GroupBy(c => (c.Table, c.Key, c.IntegerKey, Method: MethodFor(provider.Engine, c)))
            .Select(g => new TablePlan(g.Key.Table, g.Key.Key, g.Key.IntegerKey, g.ToList(), g.Key.Method, g.First().KeyColumns))
            .ToList();

    /// <summary>
    /// How SQL names a row: rowid, the key column, or (PostgreSQL, a key of several columns) the row constructor's
    /// text, such as (eu-1,42), which the rollback and edge records store and undo joins on.
    /// </summary>
    private static string KeyExpression(IDatabaseProvider provider, string key, string[]? keyColumns, string? alias = null)
    {
        var prefix = alias is null ? string.Empty : alias + ".";
        return keyColumns is { Length: > 1 }
            ? $"ROW({string.Join(", ", keyColumns.Select(k => prefix + provider.QuoteIdentifier(k)))})::text"
            : key == "rowid" ? prefix + "rowid" : prefix + provider.QuoteIdentifier(key);
    }

    private static string MethodFor(DatabaseEngine engine, TimestampColumn column) => engine switch
    {
        DatabaseEngine.Sqlite => SqliteUpdate,
        DatabaseEngine.PostgreSql when column.Typed => AlterCase,
        DatabaseEngine.MySql when column.Typed => UpdateCase,
        _ => Rewrite,
    };

    private static string SqliteRollbackTable(string runId, int planIndex) =>
        $"{Rollback}_{runId.Replace('-', '_').ToLowerInvariant()}_{planIndex}";

    /// <summary>Everything a table's conversion needs; <see cref="RunId"/> is null for analysis.</summary>
    private sealed record ConvertContext(
        IDatabaseProvider Provider, DbConnection Connection, TimezoneMigrationRequest Request, TimezoneConverter Converter, Lazy<TextTimestampConverter> TextConverter,
        string? RunId, List<TimestampIssue> Issues, RunOutcome Outcome, IProgress<OperationUpdate>? Progress)
    {
        /// <summary>Built on first use: typed columns never need it.</summary>
        public TextTimestampConverter Text => TextConverter.Value;

        public string Quote(string identifier) => Provider.QuoteIdentifier(identifier);

        public string Table(TablePlan plan) => Provider.QuoteTable(plan.Table);

        public string Key(TablePlan plan) => KeyExpression(Provider, plan.Key, plan.KeyColumns);
    }

    /// <summary>Results and validation checks gathered table by table.</summary>
    private sealed class RunOutcome
    {
        public List<TimezoneColumnResult> Columns { get; } = [];

        public List<string> Checks { get; } = [];

        /// <summary>Tables converted and committed so far, and the one being converted (null between tables).</summary>
        public List<string> TablesDone { get; } = [];

        public TablePlan? Current { get; set; }

        public bool Passed { get; private set; } = true;

        public int Sampled { get; set; }

        public void Check(bool ok, string text)
        {
            Passed &= ok;
            Checks.Add((ok ? "ok: " : "FAILED: ") + text);
        }
    }

    private static TimezoneColumnResult Result(TimestampColumn column, TimestampTally tally, TimezoneConverter converter, string method) => new()
    {
        Table = column.Table.ToString(),
        Column = column.Column,
        DataType = column.DataType,
        Reason = column.Reason,
        RowsSeen = tally.Rows,
        Converted = tally.Converted,
        AlreadyUtc = tally.AlreadyUtc,
        Epoch = tally.Epoch,
        Unparseable = tally.Unparseable,
        Ambiguous = tally.Ambiguous,
        Nonexistent = tally.Nonexistent,
        AmbiguousResolution = converter.Ambiguous.ToString(),
        NonexistentResolution = converter.Nonexistent.ToString(),
        Method = method,
    };

    private static void ReportProgress(ConvertContext context, string what, long done, long total, Stopwatch stopwatch)
    {
        var rate = stopwatch.Elapsed.TotalSeconds > 0 ? done / stopwatch.Elapsed.TotalSeconds : 0;
        context.Progress?.Report(new ProgressUpdate(7, context.RunId is null ? "Analysing timestamps" : "Invoke-TimezoneMigration", $"{what}: {done:N0} of {total:N0} rows",
            Math.Min(100, 100.0 * done / Math.Max(1, total)), rate > 0 && total > done ? TimeSpan.FromSeconds((total - done) / rate) : null));
    }

    // ---- batches by key range ----

    /// <summary>Rows with After &lt; key &lt;= Through (After null: from the first row).</summary>
    private sealed record KeyRange(object? After, object Through)
    {
        public string Predicate(string key) => (After is null ? string.Empty : $"{key} > @after AND ") + $"{key} <= @through";

        public void Bind(DbCommand command)
        {
            if (After is not null)
            {
                command.AddParameter("@after", After);
            }

            command.AddParameter("@through", Through);
        }
    }

    /// <summary>
    /// Consecutive key ranges of about <paramref name="batchSize"/> rows, after <paramref name="start"/> and up to
    /// <paramref name="end"/> when given: by arithmetic on dense integer keys (no scan), otherwise by asking the key
    /// index for every batchSize-th key.
    /// </summary>
    private static async IAsyncEnumerable<KeyRange> KeyRangesAsync(
        DbConnection connection, string table, string key, bool integerKey, int batchSize, long rows, object? start, object? end,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var batch = Math.Max(100, batchSize);
        var bounds = new List<string>();
        if (start is not null)
        {
            bounds.Add($"{key} > @start");
        }

        if (end is not null)
        {
            bounds.Add($"{key} <= @end");
        }

        DbCommand Command(string sql)
        {
            var command = connection.CreateCommand(sql, timeoutSeconds: 0);
            if (start is not null)
            {
                command.AddParameter("@start", start);
            }

            if (end is not null)
            {
                command.AddParameter("@end", end);
            }

            return command;
        }

        string Where(params string[] more)
        {
            var all = bounds.Concat(more).ToList();
            return all.Count == 0 ? string.Empty : " WHERE " + string.Join(" AND ", all);
        }

        if (integerKey)
        {
            long? min = null, max = null;
            await using (var command = Command($"SELECT MIN({key}), MAX({key}) FROM {table}{Where()}"))
            {
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && !reader.IsDBNull(0))
                {
                    min = System.Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture);
                    max = System.Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture);
                }
            }

            if (min is null || max is null)
            {
                yield break;
            }

            // Sparse keys would make many empty ranges: those take the index walk below.
            if ((double)max.Value - min.Value < Math.Max(rows, 1) * 4.0)
            {
                object? after = start;
                for (var low = min.Value; ; low += batch)
                {
                    var through = max.Value - low < batch ? max.Value : low + batch - 1;
                    yield return new KeyRange(after, through);
                    if (through == max.Value)
                    {
                        yield break;
                    }

                    after = through;
                }
            }
        }

        var last = start;
        while (true)
        {
            var where = Where(last is null ? [] : [$"{key} > @last"]);
            object? upper;
            await using (var next = Command($"SELECT {key} FROM {table}{where} ORDER BY {key} LIMIT 1 OFFSET {batch - 1}"))
            {
                if (last is not null)
                {
                    next.AddParameter("@last", last);
                }

                upper = await next.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }

            if (upper is null or DBNull)
            {
                await using var final = Command($"SELECT MAX({key}) FROM {table}{where}");
                if (last is not null)
                {
                    final.AddParameter("@last", last);
                }

                upper = await final.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                if (upper is not null and not DBNull)
                {
                    yield return new KeyRange(last, upper);
                }

                yield break;
            }

            yield return new KeyRange(last, upper);
            last = upper;
        }
    }

    // ---- counts shared by baseline and validation ----

    /// <summary>Rows; per column non-NULL values and (text) values already ending in the output format's UTC marker.</summary>
    private sealed record TableCounts(long Rows, long[] NonNull, long[] Marked)
    {
        public TableCounts Add(TableCounts other) =>
            new(Rows + other.Rows, NonNull.Zip(other.NonNull, (a, b) => a + b).ToArray(), Marked.Zip(other.Marked, (a, b) => a + b).ToArray());
    }

    private static string MarkedPredicate(DatabaseEngine engine, string column, TimestampOutputFormat format) => engine switch
    {
        DatabaseEngine.Sqlite => $"{column} GLOB '{(format == TimestampOutputFormat.Native ? "*+00:00" : "*Z")}'",
        _ => $"{column} LIKE '{(format == TimestampOutputFormat.Native ? "%+00:00" : "%Z")}'",
    };

    private static Task<TableCounts> CountAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken, DbTransaction? transaction = null) =>
        CountAsync(context, plan, context.Connection, null, cancellationToken, transaction);

    private static async Task<TableCounts> CountAsync(ConvertContext context, TablePlan plan, DbConnection connection, string? where, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        var parts = new List<string> { "COUNT(*)" };
        foreach (var column in plan.Columns)
        {
            var quoted = context.Quote(column.Column);
            parts.Add(column.Nullable ? $"COUNT({quoted})" : "NULL");
            parts.Add(column.Typed ? "0" : $"SUM(CASE WHEN {MarkedPredicate(context.Provider.Engine, quoted, context.Request.OutputFormat)} THEN 1 ELSE 0 END)");
        }

        await using var command = connection.CreateCommand($"SELECT {string.Join(", ", parts)} FROM {context.Table(plan)}{(where is null ? string.Empty : " WHERE " + where)}", transaction, 0);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        long Get(int i) => reader.IsDBNull(i) ? 0 : System.Convert.ToInt64(reader.GetValue(i), CultureInfo.InvariantCulture);
        var n = plan.Columns.Count;
        var rows = Get(0);

        // A NOT NULL column holds a value in every row: the database enforces it, so it is not counted again.
        return new TableCounts(rows, Enumerable.Range(0, n).Select(i => plan.Columns[i].Nullable ? Get(1 + 2 * i) : rows).ToArray(), Enumerable.Range(0, n).Select(i => Get(2 + 2 * i)).ToArray());
    }

    /// <summary>
    /// The table's counts, scanned as the key ranges up to and after <paramref name="middle"/> on two connections at
    /// once, so the database uses both cores; one scan when there is no integer key to split on.
    /// </summary>
    private static async Task<TableCounts> CountInHalvesAsync(ConvertContext context, TablePlan plan, long? middle, CancellationToken cancellationToken)
    {
        if (middle is null)
        {
            return await CountAsync(context, plan, cancellationToken).ConfigureAwait(false);
        }

        var key = context.Key(plan);
        async Task<TableCounts> Scan(string where)
        {
            await using var connection = await context.Provider.OpenConnectionAsync(context.Request.Target, context.Request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            return await CountAsync(context, plan, connection, where, cancellationToken).ConfigureAwait(false);
        }

        var low = Task.Run(() => Scan($"{key} <= {middle}"), cancellationToken);
        var high = Task.Run(() => Scan($"{key} > {middle}"), cancellationToken);
        return (await low.ConfigureAwait(false)).Add(await high.ConfigureAwait(false));
    }

    /// <summary>Rows and NULLs unchanged; for text, every converted value now carries the UTC marker.</summary>
    private static void CheckCounts(ConvertContext context, TablePlan plan, TableCounts before, TableCounts after, IReadOnlyList<long> converted)
    {
        for (var i = 0; i < plan.Columns.Count; i++)
        {
            var name = plan.Columns[i].Name;
            context.Outcome.Check(after.Rows == before.Rows, $"{name}: {after.Rows} row(s), as before");
            context.Outcome.Check(after.NonNull[i] == before.NonNull[i], plan.Columns[i].Nullable
                ? $"{name}: {after.Rows - after.NonNull[i]} NULL(s), as before (none introduced)"
                : $"{name}: NOT NULL, enforced by the database (no NULL introduced)");
            if (!plan.Columns[i].Typed)
            {
                var expected = before.Marked[i] + converted[i];
                context.Outcome.Check(after.Marked[i] == expected,
                    $"{name}: every converted value is in UTC format" + (after.Marked[i] == expected ? string.Empty : $" ({expected} expected, {after.Marked[i]} found)"));
            }
        }
    }

    /// <summary>Up to <paramref name="count"/> distinct random integers in [low, high], to sample rows by key without scanning.</summary>
    private static List<long> RandomKeys(long low, long high, int count)
    {
        var keys = new HashSet<long>();
        var span = high - low + 1;
        if (span <= count)
        {
            for (var k = low; k <= high; k++)
            {
                keys.Add(k);
            }

            return [.. keys];
        }

        while (keys.Count < count)
        {
            keys.Add(low + Random.Shared.NextInt64(span));
        }

        return [.. keys];
    }

    /// <summary>Whether a converted value, turned back into the zone's local time, is the original (shifted, for a gap).</summary>
    private static bool RoundTrips(object? current, string original, TimezoneConverter converter)
    {
        Instant instant;
        switch (current)
        {
            case DateTime dt when dt.Kind == DateTimeKind.Utc:
                instant = Instant.FromDateTimeUtc(dt);
                break;
            case DateTime dt:
                instant = Instant.FromDateTimeUtc(DateTime.SpecifyKind(dt, DateTimeKind.Utc));
                break;
            case DateTimeOffset dto:
                instant = Instant.FromDateTimeOffset(dto);
                break;
            case string text when text.EndsWith('Z') || text.EndsWith("+00:00", StringComparison.Ordinal):
                var utc = TimestampParser.Parse(text);
                if (utc.Kind != TimestampKind.AlreadyUtc)
                {
                    return false;
                }

                instant = utc.Local.InUtc().ToInstant();
                break;
            case string text:
                var pattern = NodaTime.Text.OffsetDateTimePattern.ExtendedIso.Parse(text.Replace(' ', 'T'));
                if (!pattern.Success)
                {
                    return false;
                }

                instant = pattern.Value.ToInstant();
                break;
            default:
                return false;
        }

        var parsed = TimestampParser.Parse(original);
        if (parsed.Kind is TimestampKind.EpochSeconds or TimestampKind.EpochMilliseconds)
        {
            return parsed.Instant == instant;
        }

        var back = converter.ToLocal(instant);
        var mappings = converter.Zone.MapLocal(parsed.Local).Count;
        return mappings == 0
            ? back > parsed.Local && back <= parsed.Local.PlusHours(2)
            : back == parsed.Local;
    }

    private static void CheckSamples(ConvertContext context, TimestampColumn column, int samples, int mismatches)
    {
        context.Outcome.Sampled += samples;
        context.Outcome.Check(mismatches == 0,
            $"{column.Name}: {samples} random converted value(s) turned back into {context.Converter.Zone.Id} local time match the originals" + (mismatches == 0 ? string.Empty : $" ({mismatches} do not)"));
    }

    private static string FormatOriginal(object value) => value switch
    {
        DateTime dt => dt.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture),
        _ => System.Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty,
    };

    private static string KeyText(object key) => System.Convert.ToString(key, CultureInfo.InvariantCulture)!;

    // ---- discovery ----

    private static async Task<IReadOnlyList<TimestampColumn>> DiscoverAsync(IDatabaseProvider provider, DbConnection connection, TimezoneMigrationRequest request, List<Refusal> refused, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var engine = provider.Engine;
        var allTables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var tables = allTables.Where(t => !MigrationJournal.IsJournalTable(t.Name.Name)).ToList();
        var parents = engine == DatabaseEngine.PostgreSql ? await ParentTablesAsync(connection, cancellationToken).ConfigureAwait(false) : [];
        var localDomains = engine == DatabaseEngine.PostgreSql && request.Columns.Count == 0 ? await LocalTimeDomainsAsync(connection, cancellationToken).ConfigureAwait(false) : [];
        bool IsTable(TableSchema t, string name) => string.Equals(t.Name.Name, name, StringComparison.OrdinalIgnoreCase) || string.Equals(t.Name.ToString(), name, StringComparison.OrdinalIgnoreCase);

        // A view named where a table belongs gets said so, rather than "does not exist".
        var named = request.Tables.Concat(request.Columns.Where(c => c.LastIndexOf('.') > 0).Select(c => c[..c.LastIndexOf('.')]));
        var views = named.Any(n => !tables.Any(t => IsTable(t, n)))
            ? (await provider.GetDefinitionsAsync(connection, cancellationToken).ConfigureAwait(false)).Where(d => d.Kind == DefinitionKind.View).Select(d => d.Name).ToList()
            : [];
        TableSchema FindTable(string name)
        {
            if (tables.FirstOrDefault(t => IsTable(t, name)) is not { } table)
            {
                throw views.Any(v => string.Equals(v, name, StringComparison.OrdinalIgnoreCase) || string.Equals(v[(v.LastIndexOf('.') + 1)..], name, StringComparison.OrdinalIgnoreCase))
                    ? new DbMigrationException(ErrorIds.TimezoneTableNotFound, ErrorKind.InvalidArgument,
                        $"'{name}' is a view, not a table: its values are the tables' it reads. Convert those tables; a view over a converted column is kept and shows the converted values.") { Target = request.Target.ToString() }
                    : new DbMigrationException(ErrorIds.TimezoneTableNotFound, ErrorKind.ObjectNotFound,
                        $"Table '{name}' does not exist. Tables: {string.Join(", ", tables.Select(t => t.Name.Name))}.") { Target = request.Target.ToString() };
            }

            return parents.TryGetValue(table.Name.ToString(), out var parent)
                ? throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidArgument,
                    $"{table.Name} is a partition (or child) of {parent}: converting {parent} converts its rows too, and PostgreSQL changes a column's type only there. Name {parent}.") { Target = request.Target.ToString() }
                : table;
        }

        foreach (var name in request.Tables)
        {
            FindTable(name);
        }

        var chosen = new List<TimestampColumn>();
        void Choose(TableSchema table, ColumnSchema column, string reason)
        {
            try
            {
                chosen.Add(Describe(engine, table, column, reason));
            }
            catch (DbMigrationException ex)
            {
                refused.Add(new Refusal([$"{table.Name.Name}.{column.Name}"], ex));
            }
        }

        if (request.Columns.Count > 0)
        {
            foreach (var qualified in request.Columns)
            {
                var dot = qualified.LastIndexOf('.');
                if (dot <= 0)
                {
                    throw new DbMigrationException(ErrorIds.TimezoneColumnNotFound, ErrorKind.InvalidArgument, $"-Column takes table.column; '{qualified}' has no table.");
                }

                var table = FindTable(qualified[..dot]);
                var column = table.Columns.FirstOrDefault(c => string.Equals(c.Name, qualified[(dot + 1)..], StringComparison.OrdinalIgnoreCase))
                    ?? throw new DbMigrationException(ErrorIds.TimezoneColumnNotFound, ErrorKind.ObjectNotFound,
                        $"Column '{qualified[(dot + 1)..]}' does not exist in {table.Name}. Columns: {string.Join(", ", table.Columns.Select(c => c.Name))}.") { Target = request.Target.ToString() };
                if (column.IsGenerated)
                {
                    throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidArgument,
                        $"{table.Name}.{column.Name} cannot be converted: it is a generated column, whose values the engine computes from other columns. Convert the columns it is computed from.") { Target = request.Target.ToString() };
                }

                if (NotConvertible(engine, column.DataType) is { } why)
                {
                    throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidArgument,
                        $"{table.Name}.{column.Name} cannot be converted: it is {column.DataType}, {why}.") { Target = request.Target.ToString() };
                }

                Choose(table, column, "named by -Column");
            }
        }
        else
        {
            foreach (var table in tables.Where(t => request.Tables.Count == 0 || request.Tables.Any(n => string.Equals(n, t.Name.Name, StringComparison.OrdinalIgnoreCase) || string.Equals(n, t.Name.ToString(), StringComparison.OrdinalIgnoreCase))))
            {
                if (parents.TryGetValue(table.Name.ToString(), out var parent))
                {
                    progress.Verbose($"{table.Name} is a partition (or child) of {parent}: converted with it.");
                    continue;
                }

                foreach (var column in table.Columns)
                {
                    // Left out before it is looked at: a column that could not be converted is refused as it is described.
                    if (Excluded(request, table.Name, column.Name))
                    {
                        continue;
                    }

                    // Its values follow the columns it is computed from; MariaDB refuses to have them set.
                    if (column.IsGenerated)
                    {
                        progress.Verbose($"{table.Name}.{column.Name} is a generated column: the engine computes it, so it is not converted.");
                        continue;
                    }

                    if (engine == DatabaseEngine.Sqlite && IsDeclaredDate(column.DataType))
                    {
                        // SQLite's types are advice: a DATE column may hold date-times, or days such as birthdays.
                        var (sampled, _, withTime) = await SampleAsync(provider, connection, table.Name, column.Name, cancellationToken).ConfigureAwait(false);
                        if (withTime > 0 && withTime >= sampled * 0.8)
                        {
                            Choose(table, column, $"declared type {column.DataType}, and {withTime} of {sampled} sampled values have a time of day");
                        }
                        else if (sampled > 0)
                        {
                            progress.Warning($"{table.Name}.{column.Name} is not converted: it is declared {column.DataType} and {sampled - withTime} of {sampled} sampled values are days without a time of day, which are no instant (a birthday stays on its day). Name it with -Column to convert it anyway.");
                        }
                    }
                    else if (IsTypedTimestamp(engine, column.DataType))
                    {
                        Choose(table, column, $"declared type {column.DataType}");
                    }
                    else if (IsInstantType(engine, column.DataType))
                    {
                        progress.Verbose($"{table.Name}.{column.Name} is {column.DataType}, which already holds instants: not converted.");
                    }
                    else if (IsText(engine, column.DataType))
                    {
                        var (sampled, dates, _) = await SampleAsync(provider, connection, table.Name, column.Name, cancellationToken).ConfigureAwait(false);
                        if (dates > 0 && dates >= sampled * 0.8)
                        {
                            Choose(table, column, $"text column: {dates} of {sampled} sampled values are date-times");
                        }
                        else if (dates > 0)
                        {
                            // Left alone, but said: a column that is mostly timestamps with some junk should not be
                            // skipped without a word.
                            progress.Warning($"{table.Name}.{column.Name} is not converted: {dates} of {sampled} sampled values are date-times, and a text column is picked at 80%. Name it with -Column to convert its date-times; values that are not date-times are kept and reported.");
                        }
                    }
                    else if (engine == DatabaseEngine.PostgreSql && HoldsLocalTimes(column.DataType, localDomains))
                    {
                        // Said, not skipped silently: these hold the same local times, in a shape a run does not rewrite.
                        progress.Warning($"{table.Name}.{column.Name} is not converted: it is {column.DataType}, which holds local times in a form a run does not rewrite (an array, a range or a domain of timestamp without time zone). Its values stay local; convert it by hand, e.g. with ALTER … TYPE … USING and AT TIME ZONE '{request.SourceTimeZone}'.");
                    }
                }
            }
        }

        if (engine == DatabaseEngine.MySql && chosen.Any(c => c.Typed) && tables.Count > 0)
        {
            var converted = await ConvertedTypedColumnsAsync(allTables, connection, cancellationToken, unfinishedByProgress: true).ConfigureAwait(false);
            foreach (var column in chosen.Where(c => c.Typed && converted.ContainsKey(c.Name)).ToList())
            {
                progress.Warning($"{column.Name} was converted by run {converted[column.Name]} and a DATETIME cannot show that it is UTC now; skipped. Undo that run first to convert it again.");
                chosen.Remove(column);
            }
        }

        chosen.RemoveAll(c => Excluded(request, c.Table, c.Column));
        await WarnAboutDependentsAsync(provider, connection, chosen, progress, cancellationToken).ConfigureAwait(false);
        foreach (var column in chosen)
        {
            progress.Verbose($"{column.Name}: {column.Reason}.");
            if (LocalDefault(column.Default) is { } local)
            {
                progress.Warning($"{column.Name} defaults to '{local}', a local time; the default is kept as it is. Change it if new rows should get that instant in UTC.");
            }
            else if (ClockDefaultWarning(engine, column) is { } clock)
            {
                progress.Warning(clock);
            }
        }

        return chosen;
    }

    /// <summary>Whether -ExcludeColumn names the column, as table.column or schema.table.column.</summary>
    private static bool Excluded(TimezoneMigrationRequest request, TableName table, string column) =>
        request.ExcludeColumns.Any(x => string.Equals(x, $"{table}.{column}", StringComparison.OrdinalIgnoreCase) || string.Equals(x, $"{table.Name}.{column}", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A default that reads the clock: on SQLite CURRENT_TIMESTAMP and datetime('now') write UTC, so rows that took
    /// it are not local times at all; with 'localtime', and on MariaDB, new rows keep getting local times after the run.
    /// </summary>
    private static string? ClockDefaultWarning(DatabaseEngine engine, TimestampColumn column)
    {
        var expression = column.Default?.ToLowerInvariant();
        if (expression is null)
        {
            return null;
        }

        // CURRENT_TIMESTAMP, MariaDB's now(), SQLite's datetime('now'): not a literal such as 'unknown'.
        var clock = expression.Contains("current_timestamp", StringComparison.Ordinal) || expression.Contains("now(", StringComparison.Ordinal) || expression.Contains("'now'", StringComparison.Ordinal);
        return engine switch
        {
            DatabaseEngine.Sqlite when clock && expression.Contains("localtime", StringComparison.Ordinal) =>
                $"{column.Name} defaults to {column.Default}, a local time: rows added after the run get local times again. Change the default to strftime('%Y-%m-%dT%H:%M:%SZ', 'now') so they are UTC too.",
            DatabaseEngine.Sqlite when clock =>
                $"{column.Name} defaults to {column.Default}, which SQLite writes in UTC: rows that took this default hold UTC already, and the run reads every value as a local time, so it would shift them. Leave the column out with -ExcludeColumn {column.Table.Name}.{column.Column} unless its rows were written as local times.",
            DatabaseEngine.MySql when clock && column.Typed =>
                $"{column.Name} defaults to {column.Default}, which MariaDB writes in the session's time zone: rows added after the run get local times again unless the application's sessions use time_zone = '+00:00'.",
            _ => null,
        };
    }

    /// <summary>
    /// What keeps working but changes meaning: a CHECK constraint that compares a converted column with a local
    /// date-time literal is kept as written, but its boundary moves once the values are UTC (and PostgreSQL reads a
    /// timestamp literal against a timestamptz in each session's time zone); a MariaDB generated column computed from
    /// a converted column is computed from UTC values; a MariaDB system-versioned table's history stays local. SQLite's
    /// text rebuild fails such a constraint by name instead.
    /// </summary>
    private static async Task WarnAboutDependentsAsync(IDatabaseProvider provider, DbConnection connection, IReadOnlyList<TimestampColumn> chosen, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        if (provider.Engine == DatabaseEngine.Sqlite || chosen.Count == 0)
        {
            return;
        }

        var versioned = provider.Engine != DatabaseEngine.MySql ? [] : (await connection.ReadRowsAsync("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SYSTEM VERSIONED'", null, cancellationToken).ConfigureAwait(false))
            .Select(r => (string)r[0]!).ToHashSet(StringComparer.Ordinal);
        foreach (var table in chosen.GroupBy(c => c.Table))
        {
            if (versioned.Contains(table.Key.Name))
            {
                progress.Warning($"{table.Key.Name} is system-versioned: the run converts its current rows, and its history keeps every earlier version as it was, in local time (the conversion and any undo add versions of their own).");
            }

            var checks = new List<(string Name, string Definition)>();
            await using (var command = provider.Engine == DatabaseEngine.PostgreSql
                ? connection.CreateCommand("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = @t::regclass AND contype = 'c' ORDER BY conname").AddParameter("@t", provider.QuoteTable(table.Key))
                : connection.CreateCommand("SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = @t ORDER BY CONSTRAINT_NAME").AddParameter("@t", table.Key.Name))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    checks.Add((reader.GetString(0), reader.GetString(1)));
                }
            }

            // MariaDB recomputes a generated column from the converted values (PostgreSQL refuses to alter under one).
            var generated = new List<(string Name, string Definition)>();
            if (provider.Engine == DatabaseEngine.MySql)
            {
                await using var command = connection.CreateCommand("SELECT COLUMN_NAME, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = @t AND IS_GENERATED = 'ALWAYS' AND GENERATION_EXPRESSION NOT IN ('ROW START', 'ROW END') ORDER BY ORDINAL_POSITION").AddParameter("@t", table.Key.Name);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    generated.Add((reader.GetString(0), reader.GetString(1)));
                }
            }

            foreach (var (name, definition) in generated)
            {
                var columns = Mentioned(table, definition);
                if (columns.Count > 0)
                {
                    progress.Warning($"{table.Key}: generated column {name} is computed from {string.Join(", ", columns)} ({definition}); after the run it is computed from UTC values, as are indexes on it. Check that this is what it should hold.");
                }
            }

            foreach (var (name, definition) in checks)
            {
                var columns = Mentioned(table, definition);
                if (columns.Count > 0 && LocalLiteral(definition) is { } literal)
                {
                    progress.Warning($"{table.Key}: check constraint {name} compares {string.Join(", ", columns)} with '{literal}', a local time; it is kept as it is, but after the run the values are UTC{(provider.Engine == DatabaseEngine.PostgreSql ? " and PostgreSQL reads the literal in each session's time zone" : string.Empty)}, so its boundary moves. Change it to the UTC instant if it should stay where it was.");
                }
            }
        }

        static List<string> Mentioned(IEnumerable<TimestampColumn> columns, string expression) =>
            columns.Where(c => System.Text.RegularExpressions.Regex.IsMatch(expression, $@"(?<![\w$]){System.Text.RegularExpressions.Regex.Escape(c.Column)}(?![\w$])",
                System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))).Select(c => c.Column).ToList();
    }

    /// <summary>The first quoted literal of an expression that is a naive local date-time.</summary>
    private static string? LocalLiteral(string expression)
    {
        for (var start = expression.IndexOf('\''); start >= 0; start = expression.IndexOf('\'', start + 1))
        {
            var end = expression.IndexOf('\'', start + 1);
            if (end < 0)
            {
                return null;
            }

            var literal = expression[(start + 1)..end];
            if (TimestampParser.Parse(literal).Kind == TimestampKind.Local)
            {
                return literal;
            }

            start = end;
        }

        return null;
    }

    /// <summary>The quoted date-time literal of a column default, when it is a naive local time.</summary>
    private static string? LocalDefault(string? expression) => expression is null ? null : LocalLiteral(expression);

    /// <summary>Up to 200 values: how many parse as date-times, and how many of those have a time of day.</summary>
    private static async Task<(int Sampled, int Dates, int WithTime)> SampleAsync(IDatabaseProvider provider, DbConnection connection, TableName table, string column, CancellationToken cancellationToken)
    {
        var quoted = provider.QuoteIdentifier(column);
        await using var command = connection.CreateCommand($"SELECT {quoted} FROM {provider.QuoteTable(table)} WHERE {quoted} IS NOT NULL LIMIT 200");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        int sampled = 0, dates = 0, withTime = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sampled++;
            if (reader.GetValue(0) is string text && TimestampParser.Parse(text) is { Kind: not TimestampKind.Unparseable } parsed)
            {
                dates++;
                withTime += parsed.Kind == TimestampKind.Local && !parsed.DateOnly ? 1 : 0;
            }
        }

        return (sampled, dates, withTime);
    }

    /// <summary>PostgreSQL partitions and inheritance children, by name, with their parent: a statement on the parent reaches their rows.</summary>
    /// <summary>PostgreSQL domains over timestamp without time zone (or an array or range of it), as format_type names them.</summary>
    private static async Task<HashSet<string>> LocalTimeDomainsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        await using var command = connection.CreateCommand("""
            SELECT format_type(t.oid, NULL)
            FROM pg_type t
            JOIN pg_type b ON b.oid = t.typbasetype
            WHERE t.typtype = 'd' AND (b.oid = 'timestamp'::regtype OR b.typelem = 'timestamp'::regtype OR b.oid = 'tsrange'::regtype)
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>A PostgreSQL column type that holds local times but is no single timestamp: an array, a range, a domain.</summary>
    private static bool HoldsLocalTimes(string type, HashSet<string> localDomains)
    {
        var t = type.ToLowerInvariant();
        var element = t.EndsWith("[]", StringComparison.Ordinal) ? t[..t.IndexOf('[', StringComparison.Ordinal)] : t;
        return element.StartsWith("timestamp without time zone", StringComparison.Ordinal)
            || element.StartsWith("timestamp(", StringComparison.Ordinal) && !element.Contains("with time zone", StringComparison.Ordinal)
            || element is "tsrange" or "tsmultirange"
            || localDomains.Contains(element);
    }

    private static async Task<Dictionary<string, string>> ParentTablesAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var parents = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = connection.CreateCommand("""
            SELECT cn.nspname, c.relname, pn.nspname, p.relname
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
            JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            parents[new TableName(reader.GetString(0), reader.GetString(1)).ToString()] = new TableName(reader.GetString(2), reader.GetString(3)).ToString();
        }

        return parents;
    }

    /// <summary>
    /// Typed columns converted by runs that were not undone (so a second run leaves them alone). With
    /// <paramref name="unfinishedByProgress"/> (MariaDB, whose batches commit with their progress), a run that failed,
    /// was stopped or killed counts only for tables where a batch committed: a table it never reached, or whose first
    /// batch rolled back, holds no converted value.
    /// </summary>
    internal static async Task<Dictionary<string, string>> ConvertedTypedColumnsAsync(IReadOnlyList<TableSchema> tables, DbConnection connection, CancellationToken cancellationToken, bool unfinishedByProgress = false)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!tables.Any(t => t.Name.Name == Runs))
        {
            return result;
        }

        unfinishedByProgress &= tables.Any(t => t.Name.Name == Progress);
        var unfinished = new List<(string RunId, List<RunColumn> Columns)>();
        await using (var command = connection.CreateCommand($"SELECT run_id, columns_json, status FROM {Runs} WHERE status <> 'undone'"))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var columns = JsonSerializer.Deserialize(reader.GetString(1), RunJson.Default.ListRunColumn)!.Where(c => c.Typed).ToList();
                if (unfinishedByProgress && reader.GetString(2) is "running" or Stopped or Failed)
                {
                    unfinished.Add((reader.GetString(0), columns));
                    continue;
                }

                foreach (var column in columns)
                {
                    result[$"{column.Table}.{column.Column}"] = reader.GetString(0);
                }
            }
        }

        foreach (var (runId, columns) in unfinished)
        {
            var touched = new HashSet<string>(StringComparer.Ordinal);
            await using var command = connection.CreateCommand($"SELECT DISTINCT table_name FROM {Progress} WHERE run_id = @run AND converted_to IS NOT NULL").AddParameter("@run", runId);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                touched.Add(reader.GetString(0));
            }

            foreach (var column in columns.Where(c => touched.Contains(c.Table)))
            {
                result[$"{column.Table}.{column.Column}"] = runId;
            }
        }

        return result;
    }

    private static bool LeadsAnIndex(TableSchema table, string column) =>
        table.Indexes.Any(i => i.Columns.Count > 0 && string.Equals(i.Columns[0], column, StringComparison.Ordinal));

    private static TimestampColumn Describe(DatabaseEngine engine, TableSchema table, ColumnSchema column, string reason)
    {
        var typed = engine != DatabaseEngine.Sqlite && IsTypedTimestamp(engine, column.DataType);
        if (table.PrimaryKey.Count == 1 && string.Equals(table.PrimaryKey[0], column.Name, StringComparison.Ordinal))
        {
            throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                $"{table.Name}.{column.Name} is the table's primary key: a run records, checks and undoes rows by their key, and converting this column would change every key. Nothing was changed. Leave it out with -ExcludeColumn {table.Name.Name}.{column.Name}, or convert it by hand.");
        }

        if (table.PrimaryKey.Count == 1)
        {
            var key = table.Columns.First(c => c.Name == table.PrimaryKey[0]);
            var integer = key.DataType.Contains("int", StringComparison.OrdinalIgnoreCase);
            return new TimestampColumn(table.Name, column.Name, column.DataType, typed, key.Name, integer, reason, column.DefaultExpression, column.IsNullable, LeadsAnIndex(table, column.Name));
        }

        if (engine == DatabaseEngine.Sqlite)
        {
            return new TimestampColumn(table.Name, column.Name, column.DataType, typed, "rowid", true, reason, column.DefaultExpression, column.IsNullable, LeadsAnIndex(table, column.Name));
        }

        // PostgreSQL converts a timestamp column in one ALTER, which names rows only in its records: a key of several
        // columns serves as its row constructor's text. Batched conversions page by the key, so they need one column.
        if (table.PrimaryKey.Count > 1 && engine == DatabaseEngine.PostgreSql && typed)
        {
            if (table.PrimaryKey.Contains(column.Name, StringComparer.Ordinal))
            {
                throw new DbMigrationException(ErrorIds.TimezoneColumnNotConvertible, ErrorKind.InvalidOperation,
                    $"{table.Name}.{column.Name} is part of the table's primary key ({string.Join(", ", table.PrimaryKey)}): a run records, checks and undoes rows by their key, and converting this column would change the keys. Nothing was changed. Leave it out with -ExcludeColumn {table.Name.Name}.{column.Name}, or convert it by hand.");
            }

            return new TimestampColumn(table.Name, column.Name, column.DataType, typed, $"({string.Join(", ", table.PrimaryKey)})", false, reason, column.DefaultExpression, column.IsNullable, LeadsAnIndex(table, column.Name), [.. table.PrimaryKey]);
        }

        var why = table.PrimaryKey.Count > 1
            ? $"its primary key has several columns ({string.Join(", ", table.PrimaryKey)}), and {(engine == DatabaseEngine.PostgreSql ? "a text column is" : "MariaDB and MySQL columns are")} converted in batches that page through the table by one key (PostgreSQL timestamp columns of such tables are converted)"
            : $"{table.Name} has no primary key, and a run records, checks and undoes every changed row by one key";
        throw new DbMigrationException(ErrorIds.TimezoneNoPrimaryKey, ErrorKind.InvalidOperation,
            $"{table.Name}.{column.Name} cannot be converted: {why}. Nothing was changed. Leave it out with -ExcludeColumn {table.Name.Name}.{column.Name} (or name the other tables with -Table), or convert it by hand.");
    }

    private static bool IsTypedTimestamp(DatabaseEngine engine, string type)
    {
        var t = type.ToLowerInvariant();
        return engine switch
        {
            // Not an array of them (timestamp[]): a run converts single values.
            DatabaseEngine.PostgreSql => !t.EndsWith(']') && (t.StartsWith("timestamp without time zone", StringComparison.Ordinal) || t.StartsWith("timestamp(", StringComparison.Ordinal) && !t.Contains("with time zone", StringComparison.Ordinal)),
            DatabaseEngine.MySql => t.StartsWith("datetime", StringComparison.Ordinal),
            _ => t.Contains("date", StringComparison.Ordinal) || t.Contains("time", StringComparison.Ordinal),
        };
    }

    /// <summary>A SQLite column declared as a date without a time (DATE), which may hold days rather than instants.</summary>
    private static bool IsDeclaredDate(string type) =>
        type.Contains("date", StringComparison.OrdinalIgnoreCase) && !type.Contains("time", StringComparison.OrdinalIgnoreCase);

    /// <summary>PostgreSQL timestamptz and MariaDB TIMESTAMP store UTC instants; the session's time zone only shows them.</summary>
    private static bool IsInstantType(DatabaseEngine engine, string type)
    {
        var t = type.ToLowerInvariant();
        return engine switch
        {
            DatabaseEngine.PostgreSql => t.StartsWith("timestamp", StringComparison.Ordinal) && t.Contains("with time zone", StringComparison.Ordinal) && !t.Contains("without", StringComparison.Ordinal),
            DatabaseEngine.MySql => t.StartsWith("timestamp", StringComparison.Ordinal),
            _ => false,
        };
    }

    /// <summary>Why a column named by -Column cannot be converted, or null when it can (SQLite's declared types are only advice).</summary>
    private static string? NotConvertible(DatabaseEngine engine, string type)
    {
        if (engine == DatabaseEngine.Sqlite || IsTypedTimestamp(engine, type) || IsText(engine, type))
        {
            return null;
        }

        if (engine == DatabaseEngine.PostgreSql && HoldsLocalTimes(type, []))
        {
            return "an array or a range of local times, which a run does not rewrite: convert it by hand with ALTER … TYPE … USING";
        }

        return IsInstantType(engine, type)
            ? engine == DatabaseEngine.PostgreSql
                ? "which stores UTC instants already: there is nothing to convert"
                : "which MariaDB and MySQL store as UTC instants already (shown in the session's time zone): there is nothing to convert"
            : $"not a local date-time: only {(engine == DatabaseEngine.PostgreSql ? "timestamp without time zone" : "DATETIME")} and text columns hold naive local times";
    }

    private static bool IsText(DatabaseEngine engine, string type)
    {
        var t = type.ToLowerInvariant();
        if (engine == DatabaseEngine.PostgreSql && t.EndsWith(']'))
        {
            return false; // text[]: an array, not a value
        }

        return t.Length == 0 && engine == DatabaseEngine.Sqlite || t.Contains("char", StringComparison.Ordinal) || t.Contains("text", StringComparison.Ordinal) || t.Contains("clob", StringComparison.Ordinal);
    }

    // ---- run record and report ----

    /// <summary>What undo needs to know about a converted column.</summary>
    private sealed record RunColumn(string Table, string Column, string Key, bool Typed, string Method, bool IntegerKey = true, string? RollbackTable = null, int Slot = 0, string[]? KeyColumns = null);

    /// <summary>The run record's JSON (reflection defaults: names as declared, enums as numbers), generated at compile time.</summary>
    [JsonSerializable(typeof(List<RunColumn>))]
    [JsonSerializable(typeof(RunOptions))]
    private sealed partial class RunJson : JsonSerializerContext;

    /// <summary>
    /// A row's key as text: as long as any key the engine allows (a MariaDB primary key holds at most 3,072 bytes,
    /// so as many characters), since session tokens and URLs make keys far longer than a name.
    /// </summary>
    internal static string KeyText(DatabaseEngine engine) => engine == DatabaseEngine.MySql ? "VARCHAR(3072)" : "TEXT";

    private static async Task EnsureTablesAsync(IDatabaseProvider provider, DbConnection connection, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        var engine = provider.Engine;
        await connection.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS {Runs} (
                run_id VARCHAR(64) NOT NULL PRIMARY KEY,
                started_utc {EngineSql.Timestamp(engine)} NOT NULL,
                finished_utc {EngineSql.Timestamp(engine)} NULL,
                zone VARCHAR(64) NOT NULL,
                tzdb_version VARCHAR(16) NOT NULL,
                status VARCHAR(20) NOT NULL,
                backup_id VARCHAR(64) NULL,
                options_json VARCHAR(200) NOT NULL,
                columns_json {EngineSql.LongText(engine)} NOT NULL)
            """, cancellationToken, transaction).ConfigureAwait(false);
        await connection.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS {Rollback} (
                id {EngineSql.Identity(engine)},
                run_id VARCHAR(64) NOT NULL,
                table_name VARCHAR(128) NOT NULL,
                column_name VARCHAR(128) NOT NULL,
                row_key {KeyText(engine)} NOT NULL,
                original {EngineSql.LongText(engine)} NOT NULL,
                converted {EngineSql.LongText(engine)} NULL)
            """, cancellationToken, transaction).ConfigureAwait(false);
        // PostgreSQL wants the table's owner even for an index that exists: another role's later run only looks.
        if (engine != DatabaseEngine.PostgreSql || !await connection.ScalarAsync<bool>($"SELECT to_regclass('ix_{Rollback}') IS NOT NULL", cancellationToken, transaction).ConfigureAwait(false))
        {
            // InnoDB indexes at most 3,072 bytes: a prefix of the key finds the row as well.
            var rowKey = engine == DatabaseEngine.MySql ? "row_key(128)" : "row_key";
            await connection.ExecuteAsync($"CREATE INDEX IF NOT EXISTS ix_{Rollback} ON {Rollback} (run_id, table_name, column_name, {rowKey})", cancellationToken, transaction).ConfigureAwait(false);
        }

        // How far MySQL's batched DATETIME conversions (and their undo) got in each key window (lane_after < key), so
        // a killed run or undo is undone exactly. The other engines convert typed columns in one transaction.
        if (engine != DatabaseEngine.MySql)
        {
            return;
        }

        await connection.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS {Progress} (
                run_id VARCHAR(64) NOT NULL,
                table_name VARCHAR(128) NOT NULL,
                lane INTEGER NOT NULL,
                lane_after {KeyText(engine)} NULL,
                converted_to {KeyText(engine)} NULL,
                undone_to {KeyText(engine)} NULL,
                PRIMARY KEY (run_id, table_name, lane))
            """, cancellationToken, transaction).ConfigureAwait(false);
    }

    /// <summary>The policies a run converted with; undo needs them to recognise the values the run wrote.</summary>
    private sealed record RunOptions(AmbiguousTimePolicy Ambiguous, NonexistentTimePolicy Nonexistent, TimestampOutputFormat OutputFormat);

    private static async Task RecordRunAsync(IDatabaseProvider provider, DbConnection connection, string runId, TimezoneMigrationRequest request, DateTimeZone zone, string? backupId, IReadOnlyList<RunColumn> columns, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        await using var insert = connection.CreateCommand($"INSERT INTO {Runs} (run_id, started_utc, zone, tzdb_version, status, backup_id, options_json, columns_json) VALUES (@id, @at, @zone, @tzdb, 'running', @backup, @options, @json)", transaction);
        insert.AddParameter("@id", runId).AddParameter("@at", EngineSql.Time(provider.Engine, DateTimeOffset.UtcNow)).AddParameter("@zone", zone.Id)
            .AddParameter("@tzdb", TimezoneResolver.TzdbVersion).AddParameter("@backup", backupId)
            .AddParameter("@options", RunOptionsJson(request))
            .AddParameter("@json", RunColumnsJson(columns));
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // The run record's two JSON documents, written by hand in the shape RunJson reads back (names as declared, the two
    // policies as numbers, the output format by name as its enum's converter says): a cold process then never builds
    // the serializer's metadata for a run.
    private static string RunOptionsJson(TimezoneMigrationRequest request) => WriteJson(writer =>
    {
        writer.WriteStartObject();
        writer.WriteNumber(nameof(RunOptions.Ambiguous), (int)request.Ambiguous);
        writer.WriteNumber(nameof(RunOptions.Nonexistent), (int)request.Nonexistent);
        writer.WriteString(nameof(RunOptions.OutputFormat), request.OutputFormat.ToString());
        writer.WriteEndObject();
    });

    private static string RunColumnsJson(IReadOnlyList<RunColumn> columns) => WriteJson(writer =>
    {
        writer.WriteStartArray();
        foreach (var column in columns)
        {
            writer.WriteStartObject();
            writer.WriteString(nameof(RunColumn.Table), column.Table);
            writer.WriteString(nameof(RunColumn.Column), column.Column);
            writer.WriteString(nameof(RunColumn.Key), column.Key);
            writer.WriteBoolean(nameof(RunColumn.Typed), column.Typed);
            writer.WriteString(nameof(RunColumn.Method), column.Method);
            writer.WriteBoolean(nameof(RunColumn.IntegerKey), column.IntegerKey);
            writer.WriteString(nameof(RunColumn.RollbackTable), column.RollbackTable);
            writer.WriteNumber(nameof(RunColumn.Slot), column.Slot);
            if (column.KeyColumns is { } keyColumns)
            {
                writer.WriteStartArray(nameof(RunColumn.KeyColumns));
                foreach (var name in keyColumns)
                {
                    writer.WriteStringValue(name);
                }

                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    });

    private static string WriteJson(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static async Task SetRunStatusAsync(IDatabaseProvider provider, DbConnection connection, string runId, string status, CancellationToken cancellationToken)
    {
        await using var update = connection.CreateCommand($"UPDATE {Runs} SET status = @status, finished_utc = @at WHERE run_id = @id");
        update.AddParameter("@status", status).AddParameter("@at", EngineSql.Time(provider.Engine, DateTimeOffset.UtcNow)).AddParameter("@id", runId);
        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string ReportRoot(TimezoneMigrationRequest request) =>
        Path.GetFullPath(request.ReportPath ?? Path.Combine(Environment.CurrentDirectory, "dbmigration-reports"));

    /// <summary>A report folder that cannot be written is bad input: refused before anything changes, not after.</summary>
    private static void EnsureReportFolderWritable(TimezoneMigrationRequest request)
    {
        var root = ReportRoot(request);
        string? problem;
        try
        {
            Directory.CreateDirectory(root);
            problem = IO.DirectoryProbe.CheckWritable(root);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = File.Exists(root) ? $"'{root}' is a file, not a folder." : ex.Message;
        }

        if (problem is not null)
        {
            throw new DbMigrationException(ErrorIds.TimezoneReportPathNotWritable, ErrorKind.WriteError,
                $"The run's report cannot be written to {root}: {problem} Nothing was changed; pass a writable -ReportPath.")
            { Target = root };
        }
    }

    private static string WriteReport(TimezoneMigrationRequest request, TimezoneMigrationResult result, List<TimestampIssue> issues)
    {
        var folder = Path.Combine(ReportRoot(request), result.RunId);
        Directory.CreateDirectory(folder);
        var report = new TimezoneReport(
            result.RunId,
            result.BackupId,
            request.Target.ToString(),
            result.SourceTimeZone,
            result.TzdbVersion,
            new TimezoneReportPolicies(request.Ambiguous.ToString(), request.Nonexistent.ToString(), request.OutputFormat.ToString()),
            TimestampParser.EpochRule,
            result.Columns,
            result.Duration.TotalSeconds,
            result.RowsPerSecond,
            result.Validation,
            issues,
            $"Undo-TimezoneMigration -Database '{request.Target}' -Id {result.RunId}");
        File.WriteAllText(Path.Combine(folder, "report.json"), JsonSerializer.Serialize(report, BackupManifest.Options));
        var summary = new System.Text.StringBuilder();
        summary.AppendLine(CultureInfo.InvariantCulture, $"Timezone migration {result.RunId} of {request.Target}");
        summary.AppendLine(CultureInfo.InvariantCulture, $"From {result.SourceTimeZone} (tzdb {result.TzdbVersion}) to UTC; ambiguous: {request.Ambiguous}; nonexistent: {request.Nonexistent}.");
        summary.AppendLine(CultureInfo.InvariantCulture, $"Backup: {result.BackupId ?? "none (-SkipBackup)"}. Duration {result.Duration.TotalSeconds:0.0} s, {result.RowsPerSecond:N0} rows/s.");
        foreach (var column in result.Columns)
        {
            summary.AppendLine(CultureInfo.InvariantCulture, $"  {column} [{column.Method}; {column.Reason}]");
        }

        summary.AppendLine(CultureInfo.InvariantCulture, $"Validation: {(result.Validation?.Passed == true ? "passed" : "FAILED")}");
        foreach (var check in result.Validation?.Checks ?? [])
        {
            summary.AppendLine("  " + check);
        }

        summary.AppendLine(CultureInfo.InvariantCulture, $"{issues.Count} value(s) needed judgement or were left unchanged; see report.json (by primary key).");
        summary.AppendLine(CultureInfo.InvariantCulture, $"Undo: {report.UndoWith}");
        summary.AppendLine(CultureInfo.InvariantCulture, $"Once the data is checked, release the rollback record (on SQLite a copy of each converted table): Remove-TimezoneMigrationRecord -Database '{request.Target}' -Id {result.RunId}");
        File.WriteAllText(Path.Combine(folder, "summary.txt"), summary.ToString());
        return folder;
    }

    // ---- undo ----

    /// <summary>
    /// Puts back the original value of every row a run changed (also after an interrupted run). Each statement waits
    /// at most <paramref name="statementLockTimeout"/> (zero: as long as the server allows) for a lock
    /// another session holds; an undo that gives up can be run again and carries on.
    /// </summary>
    public async Task<TimezoneUndoResult> UndoAsync(DatabaseTarget target, string runId, TimeSpan statementLockTimeout, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        var stopwatch = Stopwatch.StartNew();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await provider.LimitLockWaitAsync(connection, statementLockTimeout, cancellationToken).ConfigureAwait(false);
        await using var runLock = await LockAsync(provider, connection, target, cancellationToken).ConfigureAwait(false);
        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var (json, status, zoneId, optionsJson, backupId) = await ReadRunAsync(connection, tables, target, runId, cancellationToken).ConfigureAwait(false);
        if (status == "undone")
        {
            throw new DbMigrationException(ErrorIds.TimezoneRunNotFound, ErrorKind.InvalidOperation, $"Run {runId} was already undone.") { Target = target.ToString() };
        }

        if (status == RecordRemoved)
        {
            throw new DbMigrationException(ErrorIds.TimezoneRecordRemoved, ErrorKind.InvalidOperation,
                $"Run {runId} cannot be undone: its rollback record was removed (Remove-TimezoneMigrationRecord). {RestoreHint(target, backupId)}") { Target = target.ToString() };
        }

        var zone = TimezoneResolver.Resolve(zoneId);
        var options = JsonSerializer.Deserialize(optionsJson, RunJson.Default.RunOptions)!;
        var columns = JsonSerializer.Deserialize(json, RunJson.Default.ListRunColumn)!;
        // Undo goes table by table: one that is gone would stop it half-way, so every one is looked for first.
        var missing = columns.Where(c => !tables.Any(t => t.Name.ToString() == c.Table && t.Columns.Any(col => col.Name == c.Column))).Select(c => $"{c.Table}.{c.Column}").ToList();
        if (missing.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.TimezoneTableNotFound, ErrorKind.ObjectNotFound,
                $"Run {runId} converted {string.Join(", ", missing)}, which no longer exist{(missing.Count == 1 ? "s" : string.Empty)} as the run left {(missing.Count == 1 ? "it" : "them")} (dropped or renamed since). Nothing was undone. {RestoreHint(target, backupId)}")
            { Target = target.ToString() };
        }

        if (provider.Engine == DatabaseEngine.MySql)
        {
            // The run refused such tables; a trigger created since fires for every restored row. Undo still goes
            // ahead: it is the way back.
            foreach (var table in columns.Select(c => c.Table).Distinct(StringComparer.Ordinal))
            {
                await using var command = connection.CreateCommand("SELECT GROUP_CONCAT(trigger_name ORDER BY trigger_name SEPARATOR ', ') FROM information_schema.triggers WHERE event_object_schema = DATABASE() AND event_object_table = @t AND event_manipulation = 'UPDATE'").AddParameter("@t", table);
                if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string triggers && triggers.Length > 0)
                {
                    progress.Warning($"{table} has UPDATE triggers ({triggers}) created since the run; they fire for every restored row, so check what they changed.");
                }
            }
        }

        var undo = new UndoContext(provider, connection, runId, new TimezoneConverter(zone, options.Ambiguous, options.Nonexistent), options.OutputFormat, progress);
        // Undo goes table by table, so a table the role may not change would stop it half-way: all are checked first.
        var problems = new List<string>();
        if (await RecordsProblemAsync(provider, connection, cancellationToken).ConfigureAwait(false) is { } records)
        {
            problems.Add($"{records.Problem} ({records.Remedy})");
        }

        foreach (var group in columns.GroupBy(c => (c.Table, c.Method)).Where(g => g.Key.Method != SqliteUpdate))
        {
            if (await RightsProblemAsync(provider, connection, group.Key.Table, undo.Table(group.Key.Table), group.Key.Method, group.Select(c => c.Column).ToList(), undo: true, cancellationToken).ConfigureAwait(false) is { } problem)
            {
                problems.Add($"{problem.Problem} ({problem.Remedy})");
            }
        }

        if (problems.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.TimezonePermissionDenied, ErrorKind.PermissionDenied,
                $"Run {runId} cannot be undone as the connecting role: {string.Join("; ", problems)}. Nothing was undone.")
            { Target = target.ToString() };
        }

        long restored = 0;
        var done = new List<string>();
        foreach (var group in columns.GroupBy(c => (c.Table, c.Method, c.RollbackTable)).Reverse())
        {
            var tableColumns = group.OrderBy(c => c.Slot).ToList();
            try
            {
                restored += group.Key.Method switch
                {
                    SqliteUpdate => await UndoSqliteAsync(undo, tableColumns, cancellationToken).ConfigureAwait(false),
                    AlterCase => await UndoPostgresTypedAsync(undo, tableColumns, cancellationToken).ConfigureAwait(false),
                    UpdateCase => await UndoMySqlTypedAsync(undo, tableColumns, cancellationToken).ConfigureAwait(false),
                    _ => await UndoRewriteAsync(undo, tableColumns, cancellationToken).ConfigureAwait(false),
                };
            }
            catch (Exception ex) when (provider.IsLockWaitTimeout(ex))
            {
                throw new DbMigrationException(ErrorIds.TimezoneLockWaitTimeout, ErrorKind.ResourceBusy,
                    $"{group.Key.Table}: the undo gave up waiting for a lock that another session holds (an open transaction on the table; Test-MigrationPreflight names the sessions). {(done.Count == 0 ? "No table was restored yet" : $"Restored so far: {string.Join(", ", done)}")}; the run stays undoable. Once they have finished, run Undo-TimezoneMigration again (it carries on where this one stopped), or allow a longer wait with -StatementLockTimeout (0 waits as long as the server allows).", ex)
                { Target = target.ToString() };
            }

            done.Add(group.Key.Table);
            progress.Verbose($"{group.Key.Table}: {string.Join(", ", tableColumns.Select(c => c.Column))} restored.");
        }

        await SetRunStatusAsync(provider, connection, runId, "undone", cancellationToken).ConfigureAwait(false);
        return new TimezoneUndoResult(runId, restored, columns.Select(c => $"{c.Table}.{c.Column}").ToList(), stopwatch.Elapsed);
    }

    private const string RecordRemoved = "record_removed";

    /// <summary>A run's row in the runs table, or a clear error when there is none.</summary>
    private static async Task<(string ColumnsJson, string Status, string Zone, string OptionsJson, string? BackupId)> ReadRunAsync(
        DbConnection connection, IReadOnlyList<TableSchema> tables, DatabaseTarget target, string runId, CancellationToken cancellationToken)
    {
        if (tables.Any(t => t.Name.Name == Runs))
        {
            await using var read = connection.CreateCommand($"SELECT columns_json, status, zone, options_json, backup_id FROM {Runs} WHERE run_id = @id").AddParameter("@id", runId);
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return (reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4));
            }
        }

        throw new DbMigrationException(ErrorIds.TimezoneRunNotFound, ErrorKind.ObjectNotFound, $"No timezone migration run '{runId}' on {target}.") { Target = target.ToString() };
    }

    private static string RestoreHint(DatabaseTarget target, string? backupId) => backupId is null
        ? "The run took no backup (-SkipBackup)."
        : $"Its PreMigration backup is {backupId}: Restore-MigrationBackup -Database '{target}' -Path <the run's -BackupPath> -Id {backupId}.";

    /// <summary>
    /// Releases a finished run's rollback record: a SQLite run's copy of each converted table, and the run's rows in
    /// the rollback and progress tables. The converted data is untouched; the run can no longer be undone, only
    /// its backup restored. A run that did not finish, or failed its validation (unless forced), keeps its record.
    /// </summary>
    public async Task<TimezoneRecordRemoval> RemoveRecordAsync(DatabaseTarget target, string runId, bool force, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        var stopwatch = Stopwatch.StartNew();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await using var runLock = await LockAsync(provider, connection, target, cancellationToken).ConfigureAwait(false);
        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var (json, status, _, _, backupId) = await ReadRunAsync(connection, tables, target, runId, cancellationToken).ConfigureAwait(false);
        var where = target.ToString();
        switch (status)
        {
            case "undone":
                throw new DbMigrationException(ErrorIds.TimezoneRunNotFound, ErrorKind.InvalidOperation, $"Run {runId} was undone: it has no record left to remove.") { Target = where };
            case RecordRemoved:
                throw new DbMigrationException(ErrorIds.TimezoneRecordRemoved, ErrorKind.InvalidOperation, $"Run {runId}'s rollback record was already removed.") { Target = where };
            case "running" or Stopped or Failed:
                // Ended part-way (a live run holds the lock we hold now): the record is the way back.
                throw new DbMigrationException(ErrorIds.TimezoneRunNotFinished, ErrorKind.InvalidOperation,
                    $"Run {runId} did not finish, so its rollback record is what recovers it: run Undo-TimezoneMigration -Database '{target}' -Id {runId} first.") { Target = where };
            case "validation_failed" when !force:
                throw new DbMigrationException(ErrorIds.TimezoneValidationFailed, ErrorKind.InvalidOperation,
                    $"Run {runId} failed its validation; its rollback record is kept so it can be undone (Undo-TimezoneMigration -Id {runId}). Pass -Force to remove it anyway.") { Target = where };
        }

        var columns = JsonSerializer.Deserialize(json, RunJson.Default.ListRunColumn)!;
        var existing = tables.Select(t => t.Name.Name).ToHashSet(StringComparer.Ordinal);
        var dropped = columns.Select(c => c.RollbackTable).OfType<string>().Distinct(StringComparer.Ordinal).Where(existing.Contains).ToList();
        long deleted = 0;
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var table in dropped)
            {
                progress.Verbose($"Dropping {table}, run {runId}'s copy of the original rows.");
                await connection.ExecuteAsync($"DROP TABLE {provider.QuoteIdentifier(table)}", cancellationToken, transaction).ConfigureAwait(false);
            }

            foreach (var table in new[] { Rollback, Progress }.Where(existing.Contains))
            {
                await using var delete = connection.CreateCommand($"DELETE FROM {table} WHERE run_id = @id", transaction, 0).AddParameter("@id", runId);
                var rows = await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                deleted += table == Rollback ? rows : 0;
            }

            await using (var update = connection.CreateCommand($"UPDATE {Runs} SET status = @status WHERE run_id = @id", transaction))
            {
                await update.AddParameter("@status", RecordRemoved).AddParameter("@id", runId).ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return new TimezoneRecordRemoval(runId, backupId, dropped, deleted, stopwatch.Elapsed);
    }

    private sealed record UndoContext(IDatabaseProvider Provider, DbConnection Connection, string RunId, TimezoneConverter Converter, TimestampOutputFormat OutputFormat, IProgress<OperationUpdate>? Progress)
    {
        public DateTimeZone Zone => Converter.Zone;

        public string Quote(string identifier) => Provider.QuoteIdentifier(identifier);

        public string Table(string table)
        {
            var dot = table.IndexOf('.', StringComparison.Ordinal);
            return dot < 0 || Provider.Engine != DatabaseEngine.PostgreSql
                ? Provider.QuoteIdentifier(table)
                : Provider.QuoteTable(new TableName(table[..dot], table[(dot + 1)..]));
        }

        public string Key(RunColumn column, string? alias = null) => KeyExpression(Provider, column.Key, column.KeyColumns, alias);
    }

    /// <summary>Joins a table to its rollback rows on the key, cast on the rollback side so the table's key index is used.</summary>
    private static string RollbackJoin(IDatabaseProvider provider, string key, bool integerKey, string rollback) =>
        integerKey
            ? $"{key} = CAST({rollback}.row_key AS {(provider.Engine switch { DatabaseEngine.PostgreSql => "bigint", DatabaseEngine.MySql => "SIGNED", _ => "INTEGER" })})"
            : $"{key} = {rollback}.row_key";

    /// <summary>Restores the values recorded in the shared rollback table for one column.</summary>
    private static async Task<long> RestoreRecordedAsync(UndoContext undo, RunColumn column, string assign, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var provider = undo.Provider;
        var table = undo.Table(column.Table);
        var columnName = undo.Quote(column.Column);
        // A value the run wrote and nobody changed since is restored; one changed since is left alone.
        // Aliases no user table is likely to be named: PostgreSQL refuses a table named like the alias beside it.
        var filter = "dbm_r.run_id = @run AND dbm_r.table_name = @table AND dbm_r.column_name = @column AND (dbm_r.converted IS NULL OR " +
                     (provider.Engine == DatabaseEngine.PostgreSql ? "{0}::text" : "{0}") + " = dbm_r.converted)";
        // MySQL would stamp ON UPDATE CURRENT_TIMESTAMP columns with the time of the undo.
        var keep = provider.Engine == DatabaseEngine.MySql
            ? string.Concat((await AutoUpdatedColumnsAsync(undo.Connection, column.Table, cancellationToken).ConfigureAwait(false)).Where(c => c != column.Column).Select(c => $", dbm_t.{undo.Quote(c)} = dbm_t.{undo.Quote(c)}"))
            : string.Empty;
        var sql = provider.Engine switch
        {
            DatabaseEngine.PostgreSql => $"UPDATE {table} SET {columnName} = {string.Format(CultureInfo.InvariantCulture, assign, "dbm_r.original")} FROM {Rollback} dbm_r WHERE {string.Format(CultureInfo.InvariantCulture, filter, $"{table}.{columnName}")} AND {RollbackJoin(provider, undo.Key(column, table), column.IntegerKey, "dbm_r")}",
            DatabaseEngine.MySql => $"UPDATE {table} dbm_t JOIN {Rollback} dbm_r ON {string.Format(CultureInfo.InvariantCulture, filter, $"dbm_t.{columnName}")} AND {RollbackJoin(provider, undo.Key(column, "dbm_t"), column.IntegerKey, "dbm_r")} SET dbm_t.{columnName} = {string.Format(CultureInfo.InvariantCulture, assign, "dbm_r.original")}{keep}",
            _ => throw new InvalidOperationException("SQLite runs keep their originals in their own rollback table."),
        };
        var triggers = provider.Engine == DatabaseEngine.PostgreSql ? await PostgresUpdateTriggersAsync(undo.Connection, table, transaction, cancellationToken).ConfigureAwait(false) : [];
        await SetTriggersAsync(undo.Connection, transaction, table, triggers, enable: false, cancellationToken).ConfigureAwait(false);
        await using var command = undo.Connection.CreateCommand(sql, transaction, 0);
        command.AddParameter("@run", undo.RunId).AddParameter("@table", column.Table).AddParameter("@column", column.Column);
        var restored = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await SetTriggersAsync(undo.Connection, transaction, table, triggers, enable: true, cancellationToken).ConfigureAwait(false);
        return restored;
    }
}
