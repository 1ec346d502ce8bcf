using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;
using NodaTime;

namespace DbMigration.Timezone;

/// <summary>
/// Converts naive local timestamps to UTC. Discovery, then an analysis pass where a policy could refuse, a safety
/// backup, then batches that each update the values and record the originals in one transaction, so an interrupted
/// run is always recoverable. Validation and a report close every run.
/// </summary>
public sealed class TimezoneMigrationService
{
    internal const string Runs = "dbmigration_tz_runs";
    internal const string Rollback = "dbmigration_tz_rollback";
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);
    private const int SampleSize = 200;

    /// <summary>Finds or checks the columns, and counts what each holds. Reads only: this is -WhatIf.</summary>
    public async Task<TimezoneMigrationResult> AnalyzeAsync(TimezoneMigrationRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var stopwatch = Stopwatch.StartNew();
        var zone = TimezoneResolver.Resolve(request.SourceTimeZone);
        var provider = DatabaseProviders.For(request.Target);
        await using var connection = await provider.OpenConnectionAsync(request.Target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var columns = await DiscoverAsync(provider, connection, request, progress, cancellationToken).ConfigureAwait(false);
        var converter = new TimezoneConverter(zone, request.Ambiguous, request.Nonexistent);
        var results = new List<TimezoneColumnResult>();
        var issues = new List<TimestampIssue>();
        foreach (var column in columns)
        {
            results.Add(await PassAsync(provider, connection, request, column, converter, null, issues, progress, cancellationToken).ConfigureAwait(false));
        }

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

        await using var connection = await provider.OpenConnectionAsync(target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var columns = await DiscoverAsync(provider, connection, request, progress, cancellationToken).ConfigureAwait(false);

        // A policy that refuses is checked before anything changes; so is the PostgreSQL ALTER's eligibility.
        var issues = new List<TimestampIssue>();
        if (request.Ambiguous == AmbiguousTimePolicy.Fail || request.Nonexistent == NonexistentTimePolicy.Fail)
        {
            var analysis = new List<TimezoneColumnResult>();
            foreach (var column in columns)
            {
                analysis.Add(await PassAsync(provider, connection, request, column, converter, null, issues, progress, cancellationToken).ConfigureAwait(false));
            }

            var refused = analysis.Where(a => request.Ambiguous == AmbiguousTimePolicy.Fail && a.Ambiguous > 0 || request.Nonexistent == NonexistentTimePolicy.Fail && a.Nonexistent > 0).ToList();
            if (refused.Count > 0)
            {
                var examples = issues.Where(i => i.Issue is "ambiguous" or "nonexistent").Take(5).Select(i => $"{i.Table}.{i.Column} key {i.Key} = '{i.Value}' ({i.Issue})");
                throw new DbMigrationException(
                    refused.Any(r => r.Ambiguous > 0 && request.Ambiguous == AmbiguousTimePolicy.Fail) ? ErrorIds.TimezoneAmbiguousTime : ErrorIds.TimezoneNonexistentTime,
                    ErrorKind.InvalidData,
                    "Nothing was changed: " + string.Join("; ", refused.Select(r => $"{r.Table}.{r.Column} has {r.Ambiguous} ambiguous and {r.Nonexistent} nonexistent local time(s) in {zone.Id}")) +
                    $". For example: {string.Join("; ", examples)}. Choose -Ambiguous Earlier|Later and -Nonexistent ShiftForward to convert them.")
                { Target = target.ToString() };
            }

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

        await EnsureTablesAsync(provider, connection, cancellationToken).ConfigureAwait(false);
        var baseline = new Dictionary<string, (long Rows, long Nulls)>();
        foreach (var column in columns)
        {
            baseline[column.Name] = await CountAsync(provider, connection, column, cancellationToken).ConfigureAwait(false);
        }

        await RecordRunAsync(provider, connection, runId, zone, backupId, columns, "running", cancellationToken).ConfigureAwait(false);
        var results = new List<TimezoneColumnResult>();
        var run = new RunContext(runId);
        foreach (var column in columns)
        {
            results.Add(await PassAsync(provider, connection, request, column, converter, run, issues, progress, cancellationToken).ConfigureAwait(false));
        }

        var validation = await ValidateAsync(provider, connection, columns, results, baseline, converter, runId, cancellationToken).ConfigureAwait(false);
        await SetRunStatusAsync(provider, connection, runId, validation.Passed ? "completed" : "validation_failed", cancellationToken).ConfigureAwait(false);
        var result = new TimezoneMigrationResult
        {
            RunId = runId,
            BackupId = backupId,
            SourceTimeZone = zone.Id,
            TzdbVersion = TimezoneResolver.TzdbVersion,
            Columns = results,
            Duration = stopwatch.Elapsed,
            RowsPerSecond = Rate(results, stopwatch.Elapsed),
            Validation = validation,
        };
        var reportPath = WriteReport(request, result, issues);
        progress?.Report(new ProgressUpdate(7, "Invoke-TimezoneMigration", "Done", 100, Completed: true));
        return result with { ReportPath = reportPath };
    }

    private static double Rate(IReadOnlyList<TimezoneColumnResult> results, TimeSpan elapsed) =>
        results.Count == 0 ? 0 : results.Max(r => r.RowsSeen) * results.Select(r => r.Table).Distinct().Count() / Math.Max(elapsed.TotalSeconds, 1e-6);

    private sealed class RunContext(string runId)
    {
        public string RunId { get; } = runId;
    }

    // ---- discovery ----

    private static async Task<IReadOnlyList<TimestampColumn>> DiscoverAsync(IDatabaseProvider provider, DbConnection connection, TimezoneMigrationRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var engine = provider.Engine;
        var tables = (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false))
            .Where(t => !MigrationJournal.IsJournalTable(t.Name.Name))
            .ToList();
        TableSchema FindTable(string name) =>
            tables.FirstOrDefault(t => string.Equals(t.Name.Name, name, StringComparison.OrdinalIgnoreCase) || string.Equals(t.Name.ToString(), name, StringComparison.OrdinalIgnoreCase))
            ?? throw new DbMigrationException(ErrorIds.TimezoneTableNotFound, ErrorKind.ObjectNotFound,
                $"Table '{name}' does not exist. Tables: {string.Join(", ", tables.Select(t => t.Name.Name))}.") { Target = request.Target.ToString() };

        foreach (var name in request.Tables)
        {
            FindTable(name);
        }

        var chosen = new List<TimestampColumn>();
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
                chosen.Add(Describe(engine, table, column, "named by -Column"));
            }
        }
        else
        {
            foreach (var table in tables.Where(t => request.Tables.Count == 0 || request.Tables.Any(n => string.Equals(n, t.Name.Name, StringComparison.OrdinalIgnoreCase) || string.Equals(n, t.Name.ToString(), StringComparison.OrdinalIgnoreCase))))
            {
                foreach (var column in table.Columns)
                {
                    if (IsTypedTimestamp(engine, column.DataType))
                    {
                        chosen.Add(Describe(engine, table, column, $"declared type {column.DataType}"));
                    }
                    else if (IsText(engine, column.DataType))
                    {
                        var (sampled, dates) = await SampleAsync(provider, connection, table.Name, column.Name, cancellationToken).ConfigureAwait(false);
                        if (dates > 0 && dates >= sampled * 0.8)
                        {
                            chosen.Add(Describe(engine, table, column, $"text column: {dates} of {sampled} sampled values are date-times"));
                        }
                    }
                }
            }
        }

        if (engine == DatabaseEngine.MySql && chosen.Any(c => c.Typed) && tables.Count > 0)
        {
            var converted = await ConvertedTypedColumnsAsync(provider, connection, cancellationToken).ConfigureAwait(false);
            foreach (var column in chosen.Where(c => c.Typed && converted.ContainsKey(c.Name)).ToList())
            {
                progress.Warning($"{column.Name} was converted by run {converted[column.Name]} and a DATETIME cannot show that it is UTC now; skipped. Undo that run first to convert it again.");
                chosen.Remove(column);
            }
        }

        chosen.RemoveAll(c => request.ExcludeColumns.Any(x => string.Equals(x, c.Name, StringComparison.OrdinalIgnoreCase) || string.Equals(x, $"{c.Table.Name}.{c.Column}", StringComparison.OrdinalIgnoreCase)));
        foreach (var column in chosen)
        {
            progress.Verbose($"{column.Name}: {column.Reason}.");
        }

        return chosen;
    }

    /// <summary>Typed columns converted by runs that were not undone (so a second run leaves them alone).</summary>
    private static async Task<Dictionary<string, string>> ConvertedTypedColumnsAsync(IDatabaseProvider provider, DbConnection connection, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!(await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Any(t => t.Name.Name == Runs))
        {
            return result;
        }

        await using var command = connection.CreateCommand($"SELECT run_id, columns_json FROM {Runs} WHERE status <> 'undone'");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var column in JsonSerializer.Deserialize<List<RunColumn>>(reader.GetString(1))!.Where(c => c.Typed))
            {
                result[$"{column.Table}.{column.Column}"] = reader.GetString(0);
            }
        }

        return result;
    }

    private static TimestampColumn Describe(DatabaseEngine engine, TableSchema table, ColumnSchema column, string reason)
    {
        var typed = engine != DatabaseEngine.Sqlite && IsTypedTimestamp(engine, column.DataType);
        if (table.PrimaryKey.Count == 1)
        {
            var key = table.Columns.First(c => c.Name == table.PrimaryKey[0]);
            var integer = key.DataType.Contains("int", StringComparison.OrdinalIgnoreCase);
            return new TimestampColumn(table.Name, column.Name, column.DataType, typed, key.Name, integer, reason);
        }

        if (engine == DatabaseEngine.Sqlite)
        {
            return new TimestampColumn(table.Name, column.Name, column.DataType, typed, "rowid", true, reason);
        }

        throw new DbMigrationException(ErrorIds.TimezoneNoPrimaryKey, ErrorKind.InvalidOperation,
            $"{table.Name}.{column.Name} cannot be converted: {table.Name} needs a single-column primary key so every changed row can be recorded and restored.");
    }

    private static bool IsTypedTimestamp(DatabaseEngine engine, string type)
    {
        var t = type.ToLowerInvariant();
        return engine switch
        {
            DatabaseEngine.PostgreSql => t.StartsWith("timestamp without time zone", StringComparison.Ordinal) || t.StartsWith("timestamp(", StringComparison.Ordinal) && !t.Contains("with time zone", StringComparison.Ordinal),
            DatabaseEngine.MySql => t.StartsWith("datetime", StringComparison.Ordinal),
            _ => t.Contains("date", StringComparison.Ordinal) || t.Contains("time", StringComparison.Ordinal),
        };
    }

    private static bool IsText(DatabaseEngine engine, string type)
    {
        var t = type.ToLowerInvariant();
        return t.Length == 0 && engine == DatabaseEngine.Sqlite || t.Contains("char", StringComparison.Ordinal) || t.Contains("text", StringComparison.Ordinal) || t.Contains("clob", StringComparison.Ordinal);
    }

    private static async Task<(int Sampled, int Dates)> SampleAsync(IDatabaseProvider provider, DbConnection connection, TableName table, string column, CancellationToken cancellationToken)
    {
        var quoted = provider.QuoteIdentifier(column);
        await using var command = connection.CreateCommand($"SELECT {quoted} FROM {provider.QuoteTable(table)} WHERE {quoted} IS NOT NULL LIMIT 200");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        int sampled = 0, dates = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sampled++;
            if (reader.GetValue(0) is string text && TimestampParser.Parse(text).Kind != TimestampKind.Unparseable)
            {
                dates++;
            }
        }

        return (sampled, dates);
    }

    // ---- one pass over a column: counts only (analysis), or counts and conversion (run) ----

    private sealed class Tally
    {
        public long Rows;
        public long Converted;
        public long AlreadyUtc;
        public long Epoch;
        public long Unparseable;
        public long Ambiguous;
        public long Nonexistent;
    }

    private async Task<TimezoneColumnResult> PassAsync(
        IDatabaseProvider provider, DbConnection connection, TimezoneMigrationRequest request, TimestampColumn column, TimezoneConverter converter,
        RunContext? run, List<TimestampIssue> issues, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var engine = provider.Engine;
        var tally = new Tally();
        var method = column.Typed ? (engine == DatabaseEngine.PostgreSql ? "alter-using" : "client-side") : "rewrite";
        var total = Math.Max(1, await connection.ScalarAsync<long>($"SELECT COUNT(*) FROM {provider.QuoteTable(column.Table)}", cancellationToken).ConfigureAwait(false));
        var fixups = new List<(object Key, object Value, string Original)>();
        var stopwatch = Stopwatch.StartNew();
        var batch = Math.Max(100, request.BatchSize);
        var convertPerRow = run is not null && method != "alter-using";

        object? last = null;
        while (true)
        {
            var page = await ReadPageAsync(provider, connection, column, last, batch, cancellationToken).ConfigureAwait(false);
            var updates = new List<(object Key, object Value, string Original)>(page.Count);
            foreach (var (key, value) in page)
            {
                tally.Rows++;
                if (value is null)
                {
                    continue;
                }

                var (replacement, original, issue) = Convert(value, converter, request.OutputFormat, tally);
                if (issue is not null)
                {
                    issues.Add(new TimestampIssue(column.Table.ToString(), column.Column, System.Convert.ToString(key, CultureInfo.InvariantCulture)!, original, issue));
                }

                if (replacement is not null)
                {
                    // The ALTER converts every row the way PostgreSQL resolves gaps and overlaps (the later instant, shifted forward);
                    // only rows our policy resolves differently are rewritten afterwards.
                    if (method == "alter-using")
                    {
                        if (value is DateTime dt && converter.Ambiguous == AmbiguousTimePolicy.Earlier && converter.Zone.MapLocal(LocalDateTime.FromDateTime(dt)).Count == 2)
                        {
                            fixups.Add((key, replacement, original));
                        }
                    }
                    else
                    {
                        updates.Add((key, replacement, original));
                    }
                }
            }

            if (convertPerRow && updates.Count > 0)
            {
                await WriteBatchAsync(provider, connection, column, run!.RunId, updates, cancellationToken).ConfigureAwait(false);
            }

            var rate = stopwatch.Elapsed.TotalSeconds > 0 ? tally.Rows / stopwatch.Elapsed.TotalSeconds : 0;
            progress?.Report(new ProgressUpdate(7, run is null ? "Analysing timestamps" : "Invoke-TimezoneMigration", $"{column.Name}: {tally.Rows:N0} of {total:N0} rows",
                Math.Min(100, 100.0 * tally.Rows / total), rate > 0 ? TimeSpan.FromSeconds((total - tally.Rows) / rate) : null));
            if (page.Count < batch)
            {
                break;
            }

            last = page[^1].Key;
        }

        if (run is not null && method == "alter-using")
        {
            await AlterUsingAsync(provider, connection, column, converter.Zone, run.RunId, fixups, cancellationToken).ConfigureAwait(false);
        }

        return new TimezoneColumnResult
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
    }

    /// <summary>The replacement for one stored value (null: leave it), its original text, and an issue to report.</summary>
    private static (object? Replacement, string Original, string? Issue) Convert(object value, TimezoneConverter converter, TimestampOutputFormat format, Tally tally)
    {
        switch (value)
        {
            case string text:
                {
                    var parsed = TimestampParser.Parse(text);
                    switch (parsed.Kind)
                    {
                        case TimestampKind.AlreadyUtc:
                            tally.AlreadyUtc++;
                            return (null, text, null);
                        case TimestampKind.EpochSeconds:
                        case TimestampKind.EpochMilliseconds:
                            tally.Epoch++;
                            tally.Converted++;
                            return (Format(parsed.Instant, parsed.FractionDigits, format), text, null);
                        case TimestampKind.Local:
                            var (instant, resolution) = converter.ToUtc(parsed.Local);
                            var issue = Count(resolution, converter, parsed.Local, tally);
                            if (resolution == Resolution.Refused)
                            {
                                return (null, text, issue);
                            }

                            tally.Converted++;
                            return (Format(instant, parsed.FractionDigits, format), text, issue);
                        default:
                            tally.Unparseable++;
                            return (null, text, "unparseable");
                    }
                }

            case DateTime dateTime:
                {
                    var original = dateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
                    var local = LocalDateTime.FromDateTime(dateTime);
                    var (instant, resolution) = converter.ToUtc(local);
                    var issue = Count(resolution, converter, local, tally);
                    if (resolution == Resolution.Refused)
                    {
                        return (null, original, issue);
                    }

                    tally.Converted++;
                    return (instant.ToDateTimeUtc(), original, issue);
                }

            case long or int:
                {
                    // An integer column keeps its type: epoch numbers are already UTC instants and stay as they are.
                    var digits = System.Convert.ToString(value, CultureInfo.InvariantCulture)!;
                    var parsed = TimestampParser.Parse(digits);
                    if (parsed.Kind is TimestampKind.EpochSeconds or TimestampKind.EpochMilliseconds)
                    {
                        tally.Epoch++;
                        return (null, digits, null);
                    }

                    tally.Unparseable++;
                    return (null, digits, "unparseable");
                }

            default:
                tally.Unparseable++;
                return (null, System.Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty, "unparseable");
        }
    }

    private static string? Count(Resolution resolution, TimezoneConverter converter, LocalDateTime local, Tally tally)
    {
        var mappings = converter.Zone.MapLocal(local).Count;
        if (mappings == 2)
        {
            tally.Ambiguous++;
            return "ambiguous";
        }

        if (mappings == 0)
        {
            tally.Nonexistent++;
            return "nonexistent";
        }

        return resolution == Resolution.Refused ? "refused" : null;
    }

    private static string Format(Instant instant, int fractionDigits, TimestampOutputFormat format)
    {
        var iso = TimestampParser.FormatUtc(instant, fractionDigits);
        return format == TimestampOutputFormat.Native ? iso.Replace('T', ' ')[..^1] + "+00:00" : iso;
    }

    private static async Task<List<(object Key, object? Value)>> ReadPageAsync(IDatabaseProvider provider, DbConnection connection, TimestampColumn column, object? last, int batch, CancellationToken cancellationToken)
    {
        var key = column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key);
        var sql = $"SELECT {key}, {provider.QuoteIdentifier(column.Column)} FROM {provider.QuoteTable(column.Table)}" +
                  (last is null ? string.Empty : $" WHERE {key} > @last") + $" ORDER BY {key} LIMIT {batch}";
        await using var command = connection.CreateCommand(sql, timeoutSeconds: 0);
        if (last is not null)
        {
            command.AddParameter("@last", last);
        }

        var page = new List<(object, object?)>(batch);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            page.Add((reader.GetValue(0), reader.IsDBNull(1) ? null : reader.GetValue(1)));
        }

        return page;
    }

    // ---- writing: each batch updates the values and records the originals in one transaction ----

    private static async Task WriteBatchAsync(IDatabaseProvider provider, DbConnection connection, TimestampColumn column, string runId, List<(object Key, object Value, string Original)> updates, CancellationToken cancellationToken)
    {
        var table = provider.QuoteTable(column.Table);
        var columnName = provider.QuoteIdentifier(column.Column);
        var key = column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        switch (provider.Engine)
        {
            case DatabaseEngine.PostgreSql:
                {
                    var keys = updates.Select(u => u.Key).ToArray();
                    await using (var update = connection.CreateCommand($"UPDATE {table} SET {columnName} = s.v FROM (SELECT unnest(@keys) AS k, unnest(@values) AS v) s WHERE {table}.{key} = s.k", transaction, 0))
                    {
                        update.AddParameter("@keys", ToTypedArray(keys));
                        update.AddParameter("@values", updates[0].Value is DateTime ? updates.Select(u => (DateTime)u.Value).ToArray() : updates.Select(u => (string)u.Value).ToArray());
                        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original) SELECT @run, @table, @column, unnest(@keys), unnest(@originals)", transaction, 0);
                    record.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column)
                        .AddParameter("@keys", keys.Select(k => System.Convert.ToString(k, CultureInfo.InvariantCulture)!).ToArray())
                        .AddParameter("@originals", updates.Select(u => u.Original).ToArray());
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    break;
                }

            case DatabaseEngine.MySql:
                {
                    // Text protocol: a few multi-row statements per batch instead of two round trips per row.
                    foreach (var chunk in updates.Chunk(1000))
                    {
                        var values = string.Join(" UNION ALL ", chunk.Select((_, i) => $"SELECT @k{i} AS k, @v{i} AS v"));
                        await using (var update = connection.CreateCommand($"UPDATE {table} t JOIN ({values}) s ON t.{key} = s.k SET t.{columnName} = s.v", transaction, 0))
                        {
                            for (var i = 0; i < chunk.Length; i++)
                            {
                                update.AddParameter("@k" + i, chunk[i].Key).AddParameter("@v" + i, chunk[i].Value);
                            }

                            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                        }

                        var rows = string.Join(", ", chunk.Select((_, i) => $"(@run, @table, @column, @k{i}, @o{i})"));
                        await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original) VALUES {rows}", transaction, 0);
                        record.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
                        for (var i = 0; i < chunk.Length; i++)
                        {
                            record.AddParameter("@k" + i, System.Convert.ToString(chunk[i].Key, CultureInfo.InvariantCulture)).AddParameter("@o" + i, chunk[i].Original);
                        }

                        await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    break;
                }

            default:
                {
                    await using var update = connection.CreateCommand($"UPDATE {table} SET {columnName} = @v WHERE {key} = @k", transaction, 0);
                    var v = update.CreateParameter();
                    v.ParameterName = "@v";
                    var k = update.CreateParameter();
                    k.ParameterName = "@k";
                    update.Parameters.Add(v);
                    update.Parameters.Add(k);
                    await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original) VALUES (@run, @table, @column, @rk, @o)", transaction, 0);
                    record.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
                    var rk = record.CreateParameter();
                    rk.ParameterName = "@rk";
                    var o = record.CreateParameter();
                    o.ParameterName = "@o";
                    record.Parameters.Add(rk);
                    record.Parameters.Add(o);
                    update.Prepare();
                    record.Prepare();
                    foreach (var (keyValue, value, original) in updates)
                    {
                        v.Value = value;
                        k.Value = keyValue;
                        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                        rk.Value = System.Convert.ToString(keyValue, CultureInfo.InvariantCulture);
                        o.Value = original;
                        await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    break;
                }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static Array ToTypedArray(object[] keys) => keys switch
    {
        _ when keys.All(k => k is long) => keys.Cast<long>().ToArray(),
        _ when keys.All(k => k is int) => keys.Cast<int>().ToArray(),
        _ when keys.All(k => k is Guid) => keys.Cast<Guid>().ToArray(),
        _ => keys.Select(k => System.Convert.ToString(k, CultureInfo.InvariantCulture)!).ToArray(),
    };

    /// <summary>PostgreSQL typed columns: originals recorded, one ALTER … USING … AT TIME ZONE, and the policy's exceptions, in one transaction.</summary>
    private static async Task AlterUsingAsync(IDatabaseProvider provider, DbConnection connection, TimestampColumn column, DateTimeZone zone, string runId, List<(object Key, object Value, string Original)> fixups, CancellationToken cancellationToken)
    {
        var table = provider.QuoteTable(column.Table);
        var columnName = provider.QuoteIdentifier(column.Column);
        var key = provider.QuoteIdentifier(column.Key);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var record = connection.CreateCommand(
            $"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original) SELECT @run, @table, @column, {key}::text, {columnName}::text FROM {table} WHERE {columnName} IS NOT NULL", transaction, 0))
        {
            record.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // Zone ids are tzdb names (letters, digits, '/', '_', '-', '+'); checked, then quoted as a literal.
        if (!zone.Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '+'))
        {
            throw new DbMigrationException(ErrorIds.TimezoneUnknownZone, ErrorKind.InvalidArgument, $"Unexpected zone id '{zone.Id}'.");
        }

        await AlterKeepingViewsAsync(connection, transaction, column.Table.ToString(), column.Column,
            $"ALTER TABLE {table} ALTER COLUMN {columnName} TYPE timestamptz USING {columnName} AT TIME ZONE '{zone.Id}'", cancellationToken).ConfigureAwait(false);
        foreach (var (keyValue, value, _) in fixups)
        {
            await using var update = connection.CreateCommand($"UPDATE {table} SET {columnName} = @v WHERE {key} = @k", transaction, 0).AddParameter("@v", value).AddParameter("@k", keyValue);
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// PostgreSQL refuses to change the type of a column a view uses: the views' definitions are kept, the views
    /// dropped, the ALTER run and the views recreated, all in the caller's transaction.
    /// </summary>
    private static async Task AlterKeepingViewsAsync(DbConnection connection, DbTransaction transaction, string table, string column, string alter, CancellationToken cancellationToken)
    {
        var views = await DependentViewsAsync(connection, transaction, table, column, cancellationToken).ConfigureAwait(false);
        foreach (var (name, _) in views)
        {
            await connection.ExecuteAsync($"DROP VIEW {name}", cancellationToken, transaction).ConfigureAwait(false);
        }

        await connection.ExecuteAsync(alter, cancellationToken, transaction).ConfigureAwait(false);
        foreach (var (name, definition) in Enumerable.Reverse(views))
        {
            await connection.ExecuteAsync($"CREATE VIEW {name} AS {definition}", cancellationToken, transaction).ConfigureAwait(false);
        }
    }

    private static async Task<List<(string Name, string Definition)>> DependentViewsAsync(DbConnection connection, DbTransaction transaction, string table, string column, CancellationToken cancellationToken)
    {
        var views = new List<(string, string)>();
        await using var command = connection.CreateCommand("""
            SELECT DISTINCT v.oid::regclass::text, pg_get_viewdef(v.oid)
            FROM pg_depend d
            JOIN pg_rewrite r ON r.oid = d.objid
            JOIN pg_class v ON v.oid = r.ev_class
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.refobjid = @table::regclass AND a.attname = @column AND v.oid <> d.refobjid AND v.relkind = 'v'
            """, transaction);
        command.AddParameter("@table", table).AddParameter("@column", column);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            views.Add((reader.GetString(0), reader.GetString(1)));
        }

        return views;
    }

    // ---- run record, validation, report ----

    private sealed record RunColumn(string Table, string Column, string Key, bool Typed, string Method, bool IntegerKey = true);

    private static async Task EnsureTablesAsync(IDatabaseProvider provider, DbConnection connection, CancellationToken cancellationToken)
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
                columns_json {EngineSql.LongText(engine)} NOT NULL)
            """, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS {Rollback} (
                id {EngineSql.Identity(engine)},
                run_id VARCHAR(64) NOT NULL,
                table_name VARCHAR(128) NOT NULL,
                column_name VARCHAR(128) NOT NULL,
                row_key VARCHAR(128) NOT NULL,
                original {EngineSql.LongText(engine)} NOT NULL)
            """, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"CREATE INDEX IF NOT EXISTS ix_{Rollback} ON {Rollback} (run_id, table_name, column_name, row_key)", cancellationToken).ConfigureAwait(false);
    }

    private static async Task RecordRunAsync(IDatabaseProvider provider, DbConnection connection, string runId, DateTimeZone zone, string? backupId, IReadOnlyList<TimestampColumn> columns, string status, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.Serialize(columns.Select(c => new RunColumn(c.Table.ToString(), c.Column, c.Key, c.Typed, c.Typed && provider.Engine == DatabaseEngine.PostgreSql ? "alter-using" : c.Typed ? "client-side" : "rewrite", c.IntegerKey)).ToList());
        await using var insert = connection.CreateCommand($"INSERT INTO {Runs} (run_id, started_utc, zone, tzdb_version, status, backup_id, columns_json) VALUES (@id, @at, @zone, @tzdb, @status, @backup, @json)");
        insert.AddParameter("@id", runId).AddParameter("@at", EngineSql.Time(provider.Engine, DateTimeOffset.UtcNow)).AddParameter("@zone", zone.Id)
            .AddParameter("@tzdb", TimezoneResolver.TzdbVersion).AddParameter("@status", status).AddParameter("@backup", backupId).AddParameter("@json", json);
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task SetRunStatusAsync(IDatabaseProvider provider, DbConnection connection, string runId, string status, CancellationToken cancellationToken)
    {
        await using var update = connection.CreateCommand($"UPDATE {Runs} SET status = @status, finished_utc = @at WHERE run_id = @id");
        update.AddParameter("@status", status).AddParameter("@at", EngineSql.Time(provider.Engine, DateTimeOffset.UtcNow)).AddParameter("@id", runId);
        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<(long Rows, long Nulls)> CountAsync(IDatabaseProvider provider, DbConnection connection, TimestampColumn column, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand($"SELECT COUNT(*), COUNT(*) - COUNT({provider.QuoteIdentifier(column.Column)}) FROM {provider.QuoteTable(column.Table)}", timeoutSeconds: 0);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return (System.Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), System.Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Row counts and NULL counts unchanged; no local-time value left in a converted text column; and a random
    /// sample of changed rows converted back to local time equals what was stored before.
    /// </summary>
    private async Task<TimezoneValidation> ValidateAsync(
        IDatabaseProvider provider, DbConnection connection, IReadOnlyList<TimestampColumn> columns, IReadOnlyList<TimezoneColumnResult> results,
        Dictionary<string, (long Rows, long Nulls)> baseline, TimezoneConverter converter, string runId, CancellationToken cancellationToken)
    {
        var checks = new List<string>();
        var passed = true;
        var sampled = 0;
        foreach (var column in columns)
        {
            var (rows, nulls) = await CountAsync(provider, connection, column, cancellationToken).ConfigureAwait(false);
            var before = baseline[column.Name];
            Check(rows == before.Rows, $"{column.Name}: {rows} row(s), as before");
            Check(nulls == before.Nulls, $"{column.Name}: {nulls} NULL(s), as before (none introduced)");

            if (!column.Typed)
            {
                var quoted = "t." + provider.QuoteIdentifier(column.Column);
                await using var check = connection.CreateCommand(
                    $"SELECT COUNT(*) FROM {Rollback} r JOIN {provider.QuoteTable(column.Table)} t ON {KeyJoin(provider, column, "t", "r")} " +
                    $"WHERE r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND {quoted} NOT LIKE '%Z' AND {quoted} NOT LIKE '%+00:00'", timeoutSeconds: 0);
                check.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
                var local = System.Convert.ToInt64(await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
                Check(local == 0, $"{column.Name}: every converted value is in UTC format" + (local == 0 ? string.Empty : $" ({local} are not)"));
            }

            sampled += await SampleBackAsync(provider, connection, column, converter, runId, checks, ok => passed &= ok, cancellationToken).ConfigureAwait(false);
        }

        return new TimezoneValidation(passed, checks, sampled);

        void Check(bool ok, string text)
        {
            passed &= ok;
            checks.Add((ok ? "ok: " : "FAILED: ") + text);
        }
    }

    /// <summary>Joins a table to its rollback rows on the key, cast on the rollback side so the table's key index is used.</summary>
    private static string KeyJoin(IDatabaseProvider provider, TimestampColumn column, string table, string rollback)
    {
        var key = $"{table}.{(column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key))}";
        if (!column.IntegerKey)
        {
            return $"{key} = {rollback}.row_key";
        }

        var type = provider.Engine switch
        {
            DatabaseEngine.PostgreSql => "bigint",
            DatabaseEngine.MySql => "SIGNED",
            _ => "INTEGER",
        };
        return $"{key} = CAST({rollback}.row_key AS {type})";
    }

    private static async Task<int> SampleBackAsync(IDatabaseProvider provider, DbConnection connection, TimestampColumn column, TimezoneConverter converter, string runId, List<string> checks, Action<bool> record, CancellationToken cancellationToken)
    {
        var random = provider.Engine == DatabaseEngine.MySql ? "RAND()" : "random()";
        var samples = new List<(string Key, string Original)>();
        await using (var command = connection.CreateCommand($"SELECT row_key, original FROM {Rollback} WHERE run_id = @run AND table_name = @table AND column_name = @column ORDER BY {random} LIMIT {SampleSize}"))
        {
            command.AddParameter("@run", runId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                samples.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        var key = column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key);
        var mismatches = 0;
        foreach (var (rowKey, original) in samples)
        {
            await using var read = connection.CreateCommand($"SELECT {provider.QuoteIdentifier(column.Column)} FROM {provider.QuoteTable(column.Table)} WHERE {key} = @k");
            read.AddParameter("@k", column.IntegerKey ? long.Parse(rowKey, CultureInfo.InvariantCulture) : rowKey);
            var current = await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (!RoundTrips(current, original, converter))
            {
                mismatches++;
            }
        }

        var ok = mismatches == 0;
        record(ok);
        checks.Add((ok ? "ok: " : "FAILED: ") + $"{column.Name}: {samples.Count} random converted value(s) turned back into {converter.Zone.Id} local time match the originals" + (ok ? string.Empty : $" ({mismatches} do not)"));
        return samples.Count;
    }

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
            case string text:
                var pattern = NodaTime.Text.OffsetDateTimePattern.ExtendedIso.Parse(text.Replace(' ', 'T').Replace("Z", "+00:00", StringComparison.Ordinal));
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

    private static string WriteReport(TimezoneMigrationRequest request, TimezoneMigrationResult result, List<TimestampIssue> issues)
    {
        var folder = Path.GetFullPath(Path.Combine(request.ReportPath ?? Path.Combine(Environment.CurrentDirectory, "dbmigration-reports"), result.RunId));
        Directory.CreateDirectory(folder);
        var report = new
        {
            result.RunId,
            result.BackupId,
            Target = request.Target.ToString(),
            result.SourceTimeZone,
            result.TzdbVersion,
            Policies = new { Ambiguous = request.Ambiguous.ToString(), Nonexistent = request.Nonexistent.ToString(), OutputFormat = request.OutputFormat.ToString() },
            EpochRule = TimestampParser.EpochRule,
            result.Columns,
            DurationSeconds = result.Duration.TotalSeconds,
            result.RowsPerSecond,
            result.Validation,
            Issues = issues,
            UndoWith = $"Undo-TimezoneMigration -Database '{request.Target}' -Id {result.RunId}",
        };
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
        File.WriteAllText(Path.Combine(folder, "summary.txt"), summary.ToString());
        return folder;
    }

    // ---- undo ----

    /// <summary>Puts back the original value of every row a run changed (also after an interrupted run).</summary>
    public async Task<TimezoneUndoResult> UndoAsync(DatabaseTarget target, string runId, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var hasRuns = (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Any(t => t.Name.Name == Runs);
        string? json = null, status = null, zone = null;
        if (hasRuns)
        {
            await using var read = connection.CreateCommand($"SELECT columns_json, status, zone FROM {Runs} WHERE run_id = @id").AddParameter("@id", runId);
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                (json, status, zone) = (reader.GetString(0), reader.GetString(1), reader.GetString(2));
            }
        }

        if (json is null)
        {
            throw new DbMigrationException(ErrorIds.TimezoneRunNotFound, ErrorKind.ObjectNotFound, $"No timezone migration run '{runId}' on {target}.") { Target = target.ToString() };
        }

        if (status == "undone")
        {
            throw new DbMigrationException(ErrorIds.TimezoneRunNotFound, ErrorKind.InvalidOperation, $"Run {runId} was already undone.") { Target = target.ToString() };
        }

        var columns = JsonSerializer.Deserialize<List<RunColumn>>(json)!;
        long restored = 0;
        foreach (var column in Enumerable.Reverse(columns))
        {
            var table = QuoteQualified(provider, column.Table);
            var columnName = provider.QuoteIdentifier(column.Column);
            var key = column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            string sql;
            switch (provider.Engine)
            {
                case DatabaseEngine.PostgreSql:
                    if (column.Method == "alter-using")
                    {
                        string? type;
                        await using (var lookup = connection.CreateCommand("SELECT data_type FROM information_schema.columns WHERE table_schema || '.' || table_name = @t AND column_name = @c", transaction))
                        {
                            lookup.AddParameter("@t", column.Table).AddParameter("@c", column.Column);
                            type = await lookup.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
                        }

                        if (type == "timestamp with time zone")
                        {
                            await AlterKeepingViewsAsync(connection, transaction, column.Table, column.Column,
                                $"ALTER TABLE {table} ALTER COLUMN {columnName} TYPE timestamp USING ({columnName} AT TIME ZONE 'UTC')", cancellationToken).ConfigureAwait(false);
                        }

                        sql = $"UPDATE {table} SET {columnName} = r.original::timestamp FROM {Rollback} r WHERE r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND {UndoJoin(provider, column, table)}";
                    }
                    else
                    {
                        sql = $"UPDATE {table} SET {columnName} = r.original FROM {Rollback} r WHERE r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND {UndoJoin(provider, column, table)}";
                    }

                    break;
                case DatabaseEngine.MySql:
                    sql = $"UPDATE {table} t JOIN {Rollback} r ON r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND {UndoJoin(provider, column, "t")} SET t.{columnName} = r.original";
                    break;
                default:
                    sql = $"UPDATE {table} SET {columnName} = (SELECT r.original FROM {Rollback} r WHERE r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND r.row_key = CAST({table}.{key} AS TEXT)) " +
                          $"WHERE {key} IN (SELECT {(column.IntegerKey ? "CAST(row_key AS INTEGER)" : "row_key")} FROM {Rollback} WHERE run_id = @run AND table_name = @table AND column_name = @column)";
                    break;
            }

            await using (var command = connection.CreateCommand(sql, transaction, 0))
            {
                command.AddParameter("@run", runId).AddParameter("@table", column.Table).AddParameter("@column", column.Column);
                restored += await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            progress.Verbose($"{column.Table}.{column.Column}: originals restored.");
        }

        await SetRunStatusAsync(provider, connection, runId, "undone", cancellationToken).ConfigureAwait(false);
        return new TimezoneUndoResult(runId, restored, columns.Select(c => $"{c.Table}.{c.Column}").ToList(), stopwatch.Elapsed);
    }

    private static string UndoJoin(IDatabaseProvider provider, RunColumn column, string table)
    {
        var key = $"{table}.{(column.Key == "rowid" ? "rowid" : provider.QuoteIdentifier(column.Key))}";
        return column.IntegerKey
            ? $"{key} = CAST(r.row_key AS {(provider.Engine == DatabaseEngine.MySql ? "SIGNED" : "bigint")})"
            : $"{key} = r.row_key";
    }

    private static string QuoteQualified(IDatabaseProvider provider, string table)
    {
        var dot = table.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 || provider.Engine != DatabaseEngine.PostgreSql
            ? provider.QuoteIdentifier(table)
            : provider.QuoteTable(new TableName(table[..dot], table[(dot + 1)..]));
    }
}
