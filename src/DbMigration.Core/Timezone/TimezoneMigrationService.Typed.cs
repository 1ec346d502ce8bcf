using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using DbMigration.Errors;
using DbMigration.Providers;
using DbMigration.Targets;
using NodaTime;

namespace DbMigration.Timezone;

/// <summary>
/// Typed columns (PostgreSQL timestamp, MariaDB/MySQL DATETIME) are converted by the server with a CASE over the
/// zone's offsets for the range the data spans, built from NodaTime's tzdb with the run's policies. Only values in
/// DST gaps cannot be recovered by converting back, so only those are recorded; the ones in gaps and overlaps are
/// also read first, to be counted and reported.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    /// <summary>What a typed column holds: counts, range, and the rows that need judgement.</summary>
    private sealed record TypedScan(TableCounts Counts, TimestampTally[] Tallies, OffsetTimeline? Timeline, long MinTicks, long MaxTicks, List<EdgeValue> Edges, long? MinKey, long? MaxKey)
    {
        /// <summary>
        /// Values left as they are, and listed: MySQL zero and partial dates ('0000-00-00', '2024-00-01', as text), and
        /// dates at the calendar's edge (<see cref="TimezoneConverter.AtCalendarEdge(DateTime)"/>).
        /// </summary>
        public List<LeftValue> Invalid { get; init; } = [];
    }

    /// <summary>A value a run leaves as it is; <paramref name="Recorded"/> ones are put back from their records by undo.</summary>
    private sealed record LeftValue(object Key, int Column, string Text, string Issue, bool Recorded);

    /// <summary>
    /// Whether a value is away from the calendar's edge, in SQL (<see cref="TimezoneConverter.AtCalendarEdge(DateTime)"/>).
    /// With <paramref name="back"/>, the window converting back touches, a day wider on each side: every value a run
    /// converted is inside (offsets are under a day), and the arithmetic cannot leave the calendar. Values the run
    /// left at the edge that fall inside are put back from their records.
    /// </summary>
    private static string InCalendar(string value, bool back = false) =>
        back ? $"{value} >= '0001-01-02' AND {value} < '9999-12-31'" : $"{value} >= '0001-01-03' AND {value} < '9999-12-30'";

    /// <summary>PostgreSQL: a timestamp a run converts (finite, and away from the calendar's edge).</summary>
    private static string PostgresConvertible(string column) => $"({InCalendar(column)})";

    /// <summary>
    /// A MySQL DATETIME that is converted (or, with <paramref name="back"/>, converted back): a real date (zero and
    /// partial dates are allowed unless sql_mode forbids them; they are no instant, and arithmetic on them gives NULL)
    /// away from the calendar's edge.
    /// </summary>
    private static string MySqlRealDate(string column, bool back = false) =>
        $"({InCalendar(column, back)} AND MONTH({column}) > 0 AND DAYOFMONTH({column}) > 0)";

    private sealed record EdgeValue(object Key, int Column, DateTime Original, LocalTimeKind Kind);

    /// <summary>A classifying CASE's leaf: the segment's kind as 0 (exact), 1 (ambiguous) or 2 (nonexistent).</summary>
    private static string KindLeaf(OffsetSegment segment) => ((int)segment.Kind).ToString(CultureInfo.InvariantCulture);

    private static long WallTicks(DateTime value) => value.Ticks - DateTime.UnixEpoch.Ticks;

    private static string TimestampLiteral(long ticks) => $"TIMESTAMP '{OffsetTimeline.Literal(ticks)}'";

    /// <summary>Counts and range of a plan's typed columns (and of an integer key), over the table or one key range.</summary>
    private sealed record TypedAggregate(long Rows, long[] NonNull, DateTime? Min, DateTime? Max, long? MinKey, long? MaxKey, long[] Invalid);

    /// <remarks>
    /// Over the whole table, the range of an indexed column (and of the key) is read from its index by a subquery of
    /// its own, and a NOT NULL column's count is the row count: the one scan left aggregates fewer values per row.
    /// </remarks>
    private static async Task<TypedAggregate> AggregateTypedAsync(ConvertContext context, TablePlan plan, DbConnection connection, DbTransaction? transaction, KeyRange? range, CancellationToken cancellationToken)
    {
        var key = context.Key(plan);
        var table = context.Table(plan);
        var mySql = context.Provider.Engine == DatabaseEngine.MySql;
        string Min(string column, bool indexed) => range is null && indexed ? $"(SELECT MIN({column}) FROM {table})" : $"MIN({column})";
        string Max(string column, bool indexed) => range is null && indexed ? $"(SELECT MAX({column}) FROM {table})" : $"MAX({column})";
        // What a run leaves as it is (MySQL zero and partial dates, ±infinity, the calendar's edge): MySQL counts it,
        // as partial dates can be anywhere; PostgreSQL only says whether there is any, from the ends of the range.
        // Only then is the range read again without them, and the values listed and counted.
        string Left(string column, bool indexed) => mySql
            ? $"COALESCE(SUM(NOT {MySqlRealDate(column)}), 0)"
            : $"CASE WHEN NOT ({InCalendar(Min(column, indexed))} AND {InCalendar(Max(column, indexed))}) THEN 1 ELSE 0 END";
        var columns = plan.Columns.Select(c => context.Quote(c.Column)).ToList();
        var parts = new List<string> { "COUNT(*)" };
        parts.AddRange(plan.Columns.Select((c, i) => $"{(c.Nullable ? $"COUNT({columns[i]})" : "NULL")}, {Min(columns[i], c.Indexed)}, {Max(columns[i], c.Indexed)}"));
        parts.AddRange(plan.Columns.Select((c, i) => Left(columns[i], c.Indexed)));
        if (plan.IntegerKey)
        {
            parts.Add(range is null ? $"(SELECT MIN({key}) FROM {table}), (SELECT MAX({key}) FROM {table})" : $"MIN({key}), MAX({key})");
        }

        var where = range is null ? string.Empty : " WHERE " + range.Predicate(key);
        var nonNull = new long[columns.Count];
        var invalid = new long[columns.Count];
        DateTime? min = null, max = null;
        long? minKey = null, maxKey = null;
        long rows;
        void Widen(DateTime low, DateTime high)
        {
            min = min is null || low < min ? low : min;
            max = max is null || high > max ? high : max;
        }

        await using (var command = connection.CreateCommand($"SELECT {string.Join(", ", parts)} FROM {table}{where}", transaction, 0))
        {
            range?.Bind(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            rows = System.Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture);
            for (var i = 0; i < columns.Count; i++)
            {
                nonNull[i] = reader.IsDBNull(1 + 3 * i) ? rows : System.Convert.ToInt64(reader.GetValue(1 + 3 * i), CultureInfo.InvariantCulture);
                invalid[i] = System.Convert.ToInt64(reader.GetValue(1 + 3 * columns.Count + i), CultureInfo.InvariantCulture);
                if (invalid[i] == 0 && !reader.IsDBNull(2 + 3 * i))
                {
                    Widen(reader.GetDateTime(2 + 3 * i), reader.GetDateTime(3 + 3 * i));
                }
            }

            var keyAt = 1 + 4 * columns.Count;
            if (plan.IntegerKey && !reader.IsDBNull(keyAt))
            {
                minKey = System.Convert.ToInt64(reader.GetValue(keyAt), CultureInfo.InvariantCulture);
                maxKey = System.Convert.ToInt64(reader.GetValue(keyAt + 1), CultureInfo.InvariantCulture);
            }
        }

        var flagged = Enumerable.Range(0, columns.Count).Where(i => invalid[i] > 0).ToList();
        if (flagged.Count > 0)
        {
            var ranges = flagged.Select(i => mySql
                ? $"MIN(IF({MySqlRealDate(columns[i])}, {columns[i]}, NULL)), MAX(IF({MySqlRealDate(columns[i])}, {columns[i]}, NULL))"
                : $"MIN({columns[i]}) FILTER (WHERE {PostgresConvertible(columns[i])}), MAX({columns[i]}) FILTER (WHERE {PostgresConvertible(columns[i])})");
            await using var command = connection.CreateCommand($"SELECT {string.Join(", ", ranges)} FROM {table}{where}", transaction, 0);
            range?.Bind(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            for (var j = 0; j < flagged.Count; j++)
            {
                if (!reader.IsDBNull(2 * j))
                {
                    Widen(reader.GetDateTime(2 * j), reader.GetDateTime(2 * j + 1));
                }
            }
        }

        return new TypedAggregate(rows, nonNull, min, max, minKey, maxKey, invalid);
    }

    /// <summary>
    /// The values in DST gaps and overlaps between two wall-clock readings, found by one balanced CASE per column
    /// that says exact (0), ambiguous or nonexistent: a few comparisons per value instead of one range test per change.
    /// </summary>
    private static async Task<List<EdgeValue>> EdgesAsync(ConvertContext context, TablePlan plan, DbConnection connection, DbTransaction? transaction, KeyRange? range, OffsetTimeline timeline, long from, long to, CancellationToken cancellationToken)
    {
        var edges = new List<EdgeValue>();
        if (!timeline.Edges().Any(e => e.End > from && e.Start <= to))
        {
            return edges;
        }

        var key = context.Key(plan);
        var columns = plan.Columns.Select(c => context.Quote(c.Column)).ToList();
        var segments = OffsetTimeline.Within(timeline.Local, from, to);
        var convertible = context.Provider.Engine == DatabaseEngine.MySql ? (Func<string, string>)(c => MySqlRealDate(c)) : PostgresConvertible;
        var predicate = string.Join(" OR ", columns.Select(c => $"({convertible(c)} AND ({OffsetTimeline.Case(segments, c, TimestampLiteral, KindLeaf)}) > 0)"));
        await using var command = connection.CreateCommand($"SELECT {key}, {string.Join(", ", columns)} FROM {context.Table(plan)} WHERE {(range is null ? string.Empty : range.Predicate(key) + " AND ")}({predicate})", transaction, 0);
        range?.Bind(command);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            for (var i = 0; i < columns.Count; i++)
            {
                if (reader.GetValue(1 + i) is DateTime value)
                {
                    var kind = timeline.FindLocal(WallTicks(value)).Kind;
                    if (kind != LocalTimeKind.Exact)
                    {
                        edges.Add(new EdgeValue(reader.GetValue(0), i, value, kind));
                    }
                }
            }
        }

        return edges;
    }

    /// <summary>The offsets for a range of values, covering up to two days from now too (rows written during the run are new).</summary>
    private static (OffsetTimeline Timeline, long From, long To) TimelineFor(ConvertContext context, DateTime min, DateTime max)
    {
        var now = WallTicks(SystemClock.Instance.GetCurrentInstant().InZone(context.Converter.Zone).LocalDateTime.ToDateTimeUnspecified()) + 2 * TimeSpan.TicksPerDay;
        var from = WallTicks(min);
        var to = Math.Max(WallTicks(max), now);
        return (OffsetTimeline.Build(context.Converter, OffsetTimeline.Wall(from), OffsetTimeline.Wall(to)), from, to);
    }

    private static TypedScan Combine(TablePlan plan, TypedAggregate aggregate, OffsetTimeline? timeline, long from, long to, List<EdgeValue> edges)
    {
        var tallies = plan.Columns.Select((_, i) => new TimestampTally
        {
            Rows = aggregate.Rows,
            Converted = aggregate.NonNull[i] - aggregate.Invalid[i],
            Unparseable = aggregate.Invalid[i],
            Ambiguous = edges.Count(e => e.Column == i && e.Kind == LocalTimeKind.Ambiguous),
            Nonexistent = edges.Count(e => e.Column == i && e.Kind == LocalTimeKind.Nonexistent),
        }).ToArray();
        return new TypedScan(new TableCounts(aggregate.Rows, aggregate.NonNull, new long[plan.Columns.Count]), tallies, timeline, from, to, edges, aggregate.MinKey, aggregate.MaxKey);
    }

    /// <summary>
    /// Counts, range and DST-edge values of a plan's typed columns, over the table or one key range. Nothing is
    /// reported from here (a scan may run ahead on another thread): see <see cref="ReportEdges"/>.
    /// </summary>
    private static async Task<TypedScan> ScanTypedAsync(ConvertContext context, TablePlan plan, DbConnection connection, DbTransaction? transaction, KeyRange? range, CancellationToken cancellationToken)
    {
        var (aggregate, invalid) = await WithLeftValuesAsync(context, plan, connection, transaction, range,
            await AggregateTypedAsync(context, plan, connection, transaction, range, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        if (aggregate.Min is null || aggregate.Max is null)
        {
            return Combine(plan, aggregate, null, 0, 0, []) with { Invalid = invalid };
        }

        var (timeline, from, to) = TimelineFor(context, aggregate.Min.Value, aggregate.Max.Value);
        var edges = await EdgesAsync(context, plan, connection, transaction, range, timeline, from, WallTicks(aggregate.Max.Value), cancellationToken).ConfigureAwait(false);
        return Combine(plan, aggregate, timeline, from, to, edges) with { Invalid = invalid };
    }

    /// <summary>Lists the values the aggregate says a run leaves as they are, and counts them exactly.</summary>
    private static async Task<(TypedAggregate Aggregate, List<LeftValue> Left)> WithLeftValuesAsync(ConvertContext context, TablePlan plan, DbConnection connection, DbTransaction? transaction, KeyRange? range, TypedAggregate aggregate, CancellationToken cancellationToken)
    {
        if (!aggregate.Invalid.Any(n => n > 0))
        {
            return (aggregate, []);
        }

        var left = await LeftValuesAsync(context, plan, connection, transaction, range, cancellationToken).ConfigureAwait(false);
        return (aggregate with { Invalid = plan.Columns.Select((_, i) => (long)left.Count(v => v.Column == i)).ToArray() }, left);
    }

    /// <summary>The keys and values a plan leaves as they are, over the table or one key range.</summary>
    private static async Task<List<LeftValue>> LeftValuesAsync(ConvertContext context, TablePlan plan, DbConnection connection, DbTransaction? transaction, KeyRange? range, CancellationToken cancellationToken)
    {
        var key = context.Key(plan);
        var mySql = context.Provider.Engine == DatabaseEngine.MySql;
        var columns = plan.Columns.Select(c => context.Quote(c.Column)).ToList();
        var left = new List<LeftValue>();
        // PostgreSQL values as text: ±infinity and years past 9999 are no DateTime.
        var select = mySql ? columns : columns.Select(c => $"CASE WHEN {PostgresConvertible(c)} THEN NULL ELSE {c}::text END").ToList();
        var predicate = string.Join(" OR ", columns.Select(c => mySql ? $"NOT {MySqlRealDate(c)}" : $"NOT {PostgresConvertible(c)}"));
        await using var command = connection.CreateCommand(
            $"SELECT {key}, {string.Join(", ", select)} FROM {context.Table(plan)} WHERE {(range is null ? string.Empty : range.Predicate(key) + " AND ")}({predicate})", transaction, 0);
        range?.Bind(command);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            for (var i = 0; i < columns.Count; i++)
            {
                // MySQL sessions read zero and partial dates as their text, every real date as a DateTime.
                switch (reader.GetValue(1 + i))
                {
                    case string text when mySql:
                        left.Add(new LeftValue(reader.GetValue(0), i, text, "unparseable", Recorded: false));
                        break;
                    case string text:
                        left.Add(new LeftValue(reader.GetValue(0), i, text, TimezoneConverter.OutOfRange, Recorded: true));
                        break;
                    case DateTime date when TimezoneConverter.AtCalendarEdge(date):
                        left.Add(new LeftValue(reader.GetValue(0), i, FormatOriginal(date), TimezoneConverter.OutOfRange, Recorded: true));
                        break;
                }
            }
        }

        return left;
    }

    /// <summary>Files a scan's DST-edge values as issues of the run (on the run's own thread).</summary>
    private static void ReportEdges(ConvertContext context, TablePlan plan, TypedScan scan)
    {
        foreach (var edge in scan.Edges)
        {
            context.Issues.Add(new TimestampIssue(plan.Columns[edge.Column].Table.ToString(), plan.Columns[edge.Column].Column, KeyText(edge.Key), FormatOriginal(edge.Original),
                edge.Kind == LocalTimeKind.Ambiguous ? "ambiguous" : "nonexistent"));
        }

        foreach (var value in scan.Invalid)
        {
            context.Issues.Add(new TimestampIssue(plan.Columns[value.Column].Table.ToString(), plan.Columns[value.Column].Column, KeyText(value.Key), value.Text, value.Issue));
        }
    }

    private static async Task AnalyzeTypedAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var scan = await ScanTypedAsync(context, plan, context.Connection, null, null, cancellationToken).ConfigureAwait(false);
        ReportEdges(context, plan, scan);
        for (var i = 0; i < plan.Columns.Count; i++)
        {
            context.Outcome.Columns.Add(Result(plan.Columns[i], scan.Tallies[i], context.Converter, plan.Method));
        }
    }

    /// <summary>A refusing policy meets values it refuses (written after the analysis): stop before changing anything.</summary>
    private static void RefuseTyped(ConvertContext context, TablePlan plan, TypedScan scan)
    {
        var results = plan.Columns.Select((c, i) => Result(c, scan.Tallies[i], context.Converter, plan.Method)).ToList();
        Refuse(context.Request, context.Converter.Zone, results, context.Issues);
    }

    /// <summary>Originals of values in DST gaps, the only ones converting back cannot restore.</summary>
    private static List<(string Table, string Column, string Key, string Original)> Unrecoverable(TablePlan plan, TypedScan scan) =>
        scan.Edges.Where(e => e.Kind == LocalTimeKind.Nonexistent)
            .Select(e => (plan.Columns[e.Column].Table.ToString(), plan.Columns[e.Column].Column, KeyText(e.Key), FormatOriginal(e.Original)))
            // Dates at the calendar's edge stay as they are, but converting back may touch them.
            .Concat(scan.Invalid.Where(v => v.Recorded).Select(v => (plan.Columns[v.Column].Table.ToString(), plan.Columns[v.Column].Column, KeyText(v.Key), v.Text)))
            .ToList();

    /// <summary>Local time to UTC, evaluated by the server: the value minus the offset of its stretch of local time.</summary>
    private static string Forward(DatabaseEngine engine, string column, TypedScan scan)
    {
        if (scan.Timeline is null)
        {
            return engine == DatabaseEngine.PostgreSql ? $"{column} AT TIME ZONE 'UTC'" : column;
        }

        var segments = OffsetTimeline.Within(scan.Timeline.LocalOffsets(), scan.MinTicks, scan.MaxTicks);
        return engine == DatabaseEngine.PostgreSql
            ? $"({column} - {OffsetTimeline.Case(segments, column, TimestampLiteral, o => $"INTERVAL '{o.OffsetTicks / TimeSpan.TicksPerSecond} seconds'")}) AT TIME ZONE 'UTC'"
            : $"IF({MySqlRealDate(column)}, {column} - INTERVAL ({OffsetTimeline.Case(segments, column, TimestampLiteral, o => (o.OffsetTicks / TimeSpan.TicksPerSecond).ToString(CultureInfo.InvariantCulture))}) SECOND, {column})";
    }

    /// <summary>
    /// PostgreSQL's USING expression for one column: local time to UTC, where values in a DST gap or overlap go
    /// through <see cref="EdgeFunction"/>, which notes them (key, column, value, kind) as the table is rewritten,
    /// so they need no scan of their own.
    /// </summary>
    private static string ForwardNotingEdges(string column, int slot, string key, OffsetTimeline timeline, long from, long to)
    {
        var segments = OffsetTimeline.Within(timeline.Local, from, to);
        string Leaf(OffsetSegment segment)
        {
            var offset = $"INTERVAL '{segment.OffsetTicks / TimeSpan.TicksPerSecond} seconds'";
            return segment.Kind == LocalTimeKind.Exact
                ? $"{column} - {offset}"
                : $"{EdgeFunction}({key}::text, {slot}, {column}, {(int)segment.Kind}, {offset})";
        }

        return $"({OffsetTimeline.Case(segments, column, TimestampLiteral, Leaf)}) AT TIME ZONE 'UTC'";
    }

    private const string EdgeTable = "dbmigration_tz_edges";
    private const string EdgeFunction = "pg_temp.dbmigration_tz_edge";

    /// <summary>UTC back to local time: the value plus the offset in force at that instant.</summary>
    private static string Backward(DatabaseEngine engine, string column, OffsetTimeline? timeline, long minTicks, long maxTicks)
    {
        var utc = engine == DatabaseEngine.PostgreSql ? $"({column} AT TIME ZONE 'UTC')" : column;
        if (timeline is null)
        {
            return utc;
        }

        var segments = OffsetTimeline.Within(timeline.Utc, minTicks, maxTicks);
        return engine == DatabaseEngine.PostgreSql
            ? $"{utc} + {OffsetTimeline.Case(segments, utc, TimestampLiteral, o => $"INTERVAL '{o.OffsetTicks / TimeSpan.TicksPerSecond} seconds'")}"
            : $"IF({MySqlRealDate(column, back: true)}, {utc} + INTERVAL ({OffsetTimeline.Case(segments, utc, TimestampLiteral, o => (o.OffsetTicks / TimeSpan.TicksPerSecond).ToString(CultureInfo.InvariantCulture))}) SECOND, {column})";
    }

    /// <summary>Keys and values of random rows, read before the change and compared after it.</summary>
    private static async Task<List<(object Key, object?[] Values)>> ReadSampleAsync(ConvertContext context, TablePlan plan, long? minKey, long? maxKey, IReadOnlyList<object>? keys, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var key = context.Key(plan);
        // PostgreSQL: ±infinity and years past 9999 are no DateTime; they read as NULL here (they are not converted).
        var read = plan.Columns.Select(c => context.Quote(c.Column))
            .Select(c => context.Provider.Engine == DatabaseEngine.PostgreSql ? $"CASE WHEN {InCalendar(c, back: true)} THEN {c} END" : c);
        var select = $"SELECT {key}, {string.Join(", ", read)} FROM {context.Table(plan)}";
        string sql;
        if (keys is not null)
        {
            if (keys.Count == 0)
            {
                return [];
            }

            sql = plan.IntegerKey
                ? $"{select} WHERE {key} IN ({string.Join(", ", keys.Select(KeyText))})"
                : $"{select} WHERE {key} IN ({string.Join(", ", keys.Select((_, i) => "@k" + i))})";
        }
        else if (plan.IntegerKey && minKey is not null && maxKey is not null)
        {
            sql = $"{select} WHERE {key} IN ({string.Join(", ", RandomKeys(minKey.Value, maxKey.Value, SampleSize))})";
        }
        else
        {
            sql = $"{select} ORDER BY {(context.Provider.Engine == DatabaseEngine.MySql ? "RAND()" : "random()")} LIMIT {SampleSize}";
        }

        await using var command = context.Connection.CreateCommand(sql, transaction, 0);
        if (keys is not null && !plan.IntegerKey)
        {
            for (var i = 0; i < keys.Count; i++)
            {
                command.AddParameter("@k" + i, keys[i]);
            }
        }

        var rows = new List<(object, object?[])>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var values = new object?[plan.Columns.Count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = reader.IsDBNull(1 + i) ? null : reader.GetValue(1 + i);
            }

            rows.Add((reader.GetValue(0), values));
        }

        return rows;
    }

    private static async Task CheckSampleAsync(ConvertContext context, TablePlan plan, List<(object Key, object?[] Values)> before, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        var after = (await ReadSampleAsync(context, plan, null, null, before.Select(b => b.Key).ToList(), transaction, cancellationToken).ConfigureAwait(false))
            .ToDictionary(a => KeyText(a.Key), a => a.Values, StringComparer.Ordinal);
        for (var i = 0; i < plan.Columns.Count; i++)
        {
            int samples = 0, mismatches = 0;
            foreach (var (key, values) in before)
            {
                if (values[i] is null or string || values[i] is DateTime date && TimezoneConverter.AtCalendarEdge(date))
                {
                    // NULL, a MySQL zero or partial date, or a date at the calendar's edge: not converted.
                    continue;
                }

                samples++;
                if (!after.TryGetValue(KeyText(key), out var now) || !RoundTrips(now[i], FormatOriginal(values[i]!), context.Converter))
                {
                    mismatches++;
                }
            }

            CheckSamples(context, plan.Columns[i], samples, mismatches);
        }
    }

    // ---- PostgreSQL: one ALTER … TYPE timestamptz USING the CASE, in one transaction with its records ----

    private static string WithPrecision(string type, string dataType)
    {
        var match = Regex.Match(dataType, @"\((\d)\)", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        return match.Success ? $"{type}({match.Groups[1].Value})" : type;
    }

    private static async Task ConvertPostgresTypedAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var connection = context.Connection;
        var table = context.Table(plan);
        var stopwatch = Stopwatch.StartNew();
        context.Progress?.Report(new Operations.ProgressUpdate(7, "Invoke-TimezoneMigration", $"{plan.Table}: converting {string.Join(", ", plan.Columns.Select(c => c.Column))}", 0));
        TypedScan scan;
        List<(object Key, object?[] Values)> sample;
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            // Writers wait until the table is converted; the range read below then covers every value.
            await connection.ExecuteAsync($"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE", cancellationToken, transaction).ConfigureAwait(false);
            var (aggregate, left) = await WithLeftValuesAsync(context, plan, connection, transaction, null,
                await AggregateTypedAsync(context, plan, connection, transaction, null, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            sample = await ReadSampleAsync(context, plan, aggregate.MinKey, aggregate.MaxKey, null, transaction, cancellationToken).ConfigureAwait(false);
            var key = context.Key(plan);
            string[] usings;
            (OffsetTimeline Timeline, long From, long To)? range = aggregate.Min is null || aggregate.Max is null ? null : TimelineFor(context, aggregate.Min.Value, aggregate.Max.Value);
            if (range is { } r)
            {
                await connection.ExecuteAsync($"""
                    CREATE TEMP TABLE {EdgeTable} (row_key text NOT NULL, slot int NOT NULL, original timestamp NOT NULL, kind int NOT NULL) ON COMMIT DROP;
                    CREATE FUNCTION {EdgeFunction}(row_key text, slot int, original timestamp, kind int, utc_offset interval) RETURNS timestamp
                        LANGUAGE sql VOLATILE AS $$ INSERT INTO pg_temp.{EdgeTable} VALUES (row_key, slot, original, kind); SELECT original - utc_offset $$;
                    """, cancellationToken, transaction).ConfigureAwait(false);
                // Values left as they are keep their wall-clock reading, now as UTC; undo puts them back from their records.
                usings = plan.Columns.Select((c, i) => aggregate.Invalid[i] == 0
                    ? ForwardNotingEdges(context.Quote(c.Column), i, key, r.Timeline, r.From, r.To)
                    : $"CASE WHEN {PostgresConvertible(context.Quote(c.Column))} THEN {ForwardNotingEdges(context.Quote(c.Column), i, key, r.Timeline, r.From, r.To)} ELSE {context.Quote(c.Column)} AT TIME ZONE 'UTC' END").ToArray();
            }
            else
            {
                usings = plan.Columns.Select(c => $"{context.Quote(c.Column)} AT TIME ZONE 'UTC'").ToArray();
            }

            var alters = plan.Columns.Select((c, i) => $"ALTER COLUMN {context.Quote(c.Column)} TYPE {WithPrecision("timestamptz", c.DataType)} USING {usings[i]}");
            await AlterKeepingViewsAsync(connection, transaction, table, plan.Columns.Select(c => c.Column).ToList(),
                $"ALTER TABLE {table} {string.Join(", ", alters)}", cancellationToken).ConfigureAwait(false);

            var edges = new List<EdgeValue>();
            if (range is not null)
            {
                await using (var read = connection.CreateCommand($"SELECT row_key, slot, original, kind FROM pg_temp.{EdgeTable}", transaction, 0))
                {
                    await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        edges.Add(new EdgeValue(reader.GetString(0), reader.GetInt32(1), reader.GetDateTime(2), (LocalTimeKind)reader.GetInt32(3)));
                    }
                }

                await connection.ExecuteAsync($"DROP FUNCTION {EdgeFunction}(text, int, timestamp, int, interval)", cancellationToken, transaction).ConfigureAwait(false);
            }

            scan = Combine(plan, aggregate, range?.Timeline, range?.From ?? 0, range?.To ?? 0, edges) with { Invalid = left };
            ReportEdges(context, plan, scan);
            RefuseTyped(context, plan, scan);
            await RecordUnrecoverableAsync(context, Unrecoverable(plan, scan), transaction, cancellationToken).ConfigureAwait(false);

            // Validated under the table lock: once it is released, writers that queued behind the ALTER insert at
            // once, and a count taken then would report their rows as a mismatch.
            if (context.Request.BeforeValidation is { } fault)
            {
                await fault(connection, transaction, cancellationToken).ConfigureAwait(false);
            }

            var checksBefore = context.Outcome.Checks.Count;
            var after = await CountAsync(context, plan, cancellationToken, transaction).ConfigureAwait(false);
            CheckCounts(context, plan, scan.Counts, after, scan.Tallies.Select(t => t.Converted).ToList());
            await CheckSampleAsync(context, plan, sample, cancellationToken, transaction).ConfigureAwait(false);
            var failed = context.Outcome.Checks.Skip(checksBefore).Where(c => c.StartsWith("FAILED", StringComparison.Ordinal)).ToList();
            if (failed.Count > 0)
            {
                // Still inside the transaction: nothing that failed its checks is kept.
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                var earlier = context.Outcome.Columns.Select(c => c.Table).Distinct().ToList();
                throw new DbMigrationException(ErrorIds.TimezoneValidationFailed, ErrorKind.InvalidData,
                    $"{plan.Table}: validation failed inside the conversion's transaction, so it was rolled back and the table is unchanged: {string.Join("; ", failed)}." +
                    (earlier.Count == 0 ? string.Empty : $" Converted before it in run {context.RunId}: {string.Join(", ", earlier)}; Undo-TimezoneMigration -Id {context.RunId} puts them back."))
                { Target = context.Request.Target.ToString() };
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        ReportProgress(context, plan.Table.ToString(), scan.Counts.Rows, scan.Counts.Rows, stopwatch);
        for (var i = 0; i < plan.Columns.Count; i++)
        {
            context.Outcome.Columns.Add(Result(plan.Columns[i], scan.Tallies[i], context.Converter, AlterCase));
        }
    }

    private static async Task RecordUnrecoverableAsync(ConvertContext context, List<(string Table, string Column, string Key, string Original)> rows, DbTransaction transaction, CancellationToken cancellationToken)
    {
        foreach (var group in rows.GroupBy(r => (r.Table, r.Column)))
        {
            await InsertRecordedAsync(context, group.Key.Table, group.Key.Column, group.Select(r => (r.Key, r.Original, (string?)null)).ToList(), transaction, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<long> UndoPostgresTypedAsync(UndoContext undo, List<RunColumn> columns, CancellationToken cancellationToken)
    {
        var connection = undo.Connection;
        var table = undo.Table(columns[0].Table);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync($"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE", cancellationToken, transaction).ConfigureAwait(false);

        // Columns already back to timestamp (an undo that committed before a crash) are left alone. The type comes
        // from the column's own modifier: information_schema reports a plain timestamp's precision as 6, which
        // would come back as timestamp(6).
        var pending = new List<(RunColumn Column, string Type)>();
        foreach (var column in columns)
        {
            await using var lookup = connection.CreateCommand("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = @t::regclass AND attname = @c AND attnum > 0 AND NOT attisdropped", transaction);
            lookup.AddParameter("@t", table).AddParameter("@c", column.Column);
            var type = await lookup.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
            if (type is not null && type.StartsWith("timestamp", StringComparison.Ordinal) && type.EndsWith(" with time zone", StringComparison.Ordinal))
            {
                pending.Add((column, type[..^" with time zone".Length]));
            }
        }

        long values = 0;
        if (pending.Count > 0)
        {
            var quoted = pending.Select(p => undo.Quote(p.Column.Column)).ToList();
            // The range of what the run converted; values it left (±infinity, the calendar's edge) are put back from their records.
            string Utc(string q) => $"({q} AT TIME ZONE 'UTC')";
            string Back(string q) => InCalendar(Utc(q), back: true);
            await using (var range = connection.CreateCommand($"SELECT {string.Join(", ", quoted.Select(q => $"COUNT({q}), MIN({Utc(q)}) FILTER (WHERE {Back(q)}), MAX({Utc(q)}) FILTER (WHERE {Back(q)})"))} FROM {table}", transaction, 0))
            {
                await using var reader = await range.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var (timeline, min, max) = UtcTimeline(undo, reader, pending.Count);
                var alters = pending.Select((p, i) => $"ALTER COLUMN {quoted[i]} TYPE {p.Type} USING {Backward(DatabaseEngine.PostgreSql, quoted[i], timeline, min, max)}").ToList();
                for (var i = 0; i < pending.Count; i++)
                {
                    values += System.Convert.ToInt64(reader.GetValue(3 * i), CultureInfo.InvariantCulture);
                }

                await reader.CloseAsync().ConfigureAwait(false);
                await AlterKeepingViewsAsync(connection, transaction, table, pending.Select(p => p.Column.Column).ToList(), $"ALTER TABLE {table} {string.Join(", ", alters)}", cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var column in columns)
        {
            await RestoreRecordedAsync(undo, column, "{0}::timestamp", transaction, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return values;
    }

    /// <summary>The zone's UTC offsets over the range a reader's MIN/MAX columns (every third, from 1) report.</summary>
    private static (OffsetTimeline? Timeline, long Min, long Max) UtcTimeline(UndoContext undo, DbDataReader reader, int columns)
    {
        DateTime? min = null, max = null;
        for (var i = 0; i < columns; i++)
        {
            if (!reader.IsDBNull(1 + 3 * i))
            {
                var low = reader.GetDateTime(1 + 3 * i);
                var high = reader.GetDateTime(2 + 3 * i);
                min = min is null || low < min ? low : min;
                max = max is null || high > max ? high : max;
            }
        }

        if (min is null || max is null)
        {
            return (null, 0, 0);
        }

        var converter = new TimezoneConverter(undo.Zone, AmbiguousTimePolicy.Earlier, NonexistentTimePolicy.ShiftForward);
        var (from, to) = (WallTicks(min.Value), WallTicks(max.Value));
        return (OffsetTimeline.Build(converter, OffsetTimeline.Wall(from), OffsetTimeline.Wall(to)), from, to);
    }

    // ---- MariaDB/MySQL: batched UPDATEs with the CASE; how far they got is committed with each batch ----

    /// <summary>Columns MySQL would stamp with the current time on any UPDATE; the conversion assigns them to themselves.</summary>
    private static async Task<List<string>> AutoUpdatedColumnsAsync(DbConnection connection, string table, CancellationToken cancellationToken)
    {
        var result = new List<string>();
        await using var command = connection.CreateCommand("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = @t AND LOWER(extra) LIKE '%on update%'");
        command.AddParameter("@t", table);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(reader.GetString(0));
        }

        return result;
    }

    /// <summary>A key window of a table converted beside the others, on its own connections; After null: from the first row, Through null: to the last.</summary>
    private sealed record Lane(int Number, long? After, long? Through, long Rows);

    /// <summary>How many windows a table is converted in at once: both server cores for tables of more than one batch.</summary>
    private const int MaxLanes = 2;

    /// <summary>
    /// The key windows: halves of an integer key's span when the table holds more than one batch (by InnoDB's estimate) and the server
    /// can run the lanes' READ COMMITTED transactions (statement-based binary logging cannot log them), else one.
    /// </summary>
    private static List<Lane> Lanes(long? minKey, long? maxKey, long rows, int batchSize, bool readCommittedAllowed)
    {
        if (minKey is null || maxKey is null || !readCommittedAllowed || rows <= Math.Max(100, batchSize) || maxKey.Value - minKey.Value < MaxLanes)
        {
            return [new Lane(0, null, null, rows)];
        }

        var lanes = new List<Lane>();
        long? after = null;
        for (var i = 0; i < MaxLanes; i++)
        {
            long? through = i == MaxLanes - 1 ? null : minKey.Value + ((maxKey.Value - minKey.Value) * (i + 1) / MaxLanes);
            lanes.Add(new Lane(i, after, through, rows / MaxLanes));
            after = through;
        }

        return lanes;
    }

    /// <summary>
    /// The table is converted in key windows (<see cref="Lanes"/>) side by side, each on a connection of its own, so the
    /// server updates with both cores. In each window, key ranges are scanned (counts, range, DST-edge values) on a
    /// further connection that runs ahead, while the window's connection converts the ranges already scanned: each
    /// range's UPDATE uses a CASE over just the offsets its values span, and goes in with the originals of its gap
    /// values and how far the window got. The windows commit together at the end (and each at most once a
    /// <see cref="TimezoneMigrationRequest.CommitInterval"/> before that); if one fails, the others roll back what
    /// they have not committed, and the progress rows tell undo exactly what was.
    /// </summary>
    private static async Task ConvertMySqlTypedAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var connection = context.Connection;
        var table = context.Table(plan);
        var key = context.Key(plan);
        // InnoDB's estimate is enough for progress and for choosing how to split keys; the scans count exactly.
        var rows = await EstimatedRowsAsync(connection, plan.Table.Name, cancellationToken).ConfigureAwait(false)
            ?? await connection.ScalarAsync<long>($"SELECT COUNT(*) FROM {table}", cancellationToken).ConfigureAwait(false);
        long? minKey = null, maxKey = null;
        var readCommittedAllowed = false;
        if (plan.IntegerKey)
        {
            await using var bounds = connection.CreateCommand($"SELECT MIN({key}), MAX({key}), @@log_bin = 0 OR @@binlog_format <> 'STATEMENT' FROM {table}");
            await using var reader = await bounds.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && !reader.IsDBNull(0))
            {
                (minKey, maxKey) = (System.Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), System.Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
                readCommittedAllowed = System.Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture) != 0;
            }
        }

        var lanes = Lanes(minKey, maxKey, rows, context.Request.BatchSize, readCommittedAllowed);
        var sample = await ReadSampleAsync(context, plan, minKey, maxKey, null, null, cancellationToken).ConfigureAwait(false);
        await using (var start = connection.CreateCommand($"INSERT INTO {Progress} (run_id, table_name, lane, lane_after, converted_to, undone_to) VALUES {string.Join(", ", lanes.Select(l => $"(@run, @table, {l.Number}, @after{l.Number}, NULL, NULL)"))}"))
        {
            start.AddParameter("@run", context.RunId).AddParameter("@table", plan.Table.ToString());
            foreach (var lane in lanes)
            {
                start.AddParameter("@after" + lane.Number, lane.After is null ? null : KeyText(lane.After.Value));
            }

            await start.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var names = plan.Columns.Select(c => c.Column).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var keep = (await AutoUpdatedColumnsAsync(connection, plan.Table.Name, cancellationToken).ConfigureAwait(false)).Where(c => !names.Contains(c)).Select(context.Quote).ToList();
        var columns = plan.Columns.Select(c => context.Quote(c.Column)).ToList();
        var tallies = plan.Columns.Select(_ => new TimestampTally()).ToArray();
        var before = new TableCounts(0, new long[columns.Count], new long[columns.Count]);
        var stopwatch = Stopwatch.StartNew();

        // The lanes share the run's issues, tallies and progress: each scan's bookkeeping is done under this gate.
        var gate = new object();
        var converting = lanes.Count;
        var allConverted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Exception? firstFailure = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        async Task ConvertLaneAsync(Lane lane, CancellationToken token)
        {
            await using var own = lane.Number == 0 ? null : await context.Provider.OpenConnectionAsync(context.Request.Target, context.Request.ConnectTimeout, token).ConfigureAwait(false);
            if (own is not null)
            {
                await context.Provider.LimitLockWaitAsync(own, context.Request.StatementLockTimeout, token).ConfigureAwait(false);
            }

            var writer = own ?? connection;
            using var scanStop = CancellationTokenSource.CreateLinkedTokenSource(token);
            var scans = Channel.CreateBounded<(KeyRange Range, TypedScan Scan)>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
            var scanner = Task.Run(async () =>
            {
                try
                {
                    await using var reading = await context.Provider.OpenConnectionAsync(context.Request.Target, context.Request.ConnectTimeout, scanStop.Token).ConfigureAwait(false);
                    await foreach (var range in KeyRangesAsync(reading, table, key, plan.IntegerKey, context.Request.BatchSize, lane.Rows, lane.After, lane.Through, scanStop.Token).ConfigureAwait(false))
                    {
                        await scans.Writer.WriteAsync((range, await ScanTypedAsync(context, plan, reading, null, range, scanStop.Token).ConfigureAwait(false)), scanStop.Token).ConfigureAwait(false);
                    }

                    scans.Writer.Complete();
                }
                catch (Exception ex)
                {
                    scans.Writer.Complete(ex);
                }
            }, scanStop.Token);

            DbTransaction? transaction = null;
            var opened = new Stopwatch();
            try
            {
                await foreach (var (range, scan) in scans.Reader.ReadAllAsync(token).ConfigureAwait(false))
                {
                    lock (gate)
                    {
                        ReportEdges(context, plan, scan);
                        RefuseTyped(context, plan, scan);
                        before = before.Add(scan.Counts);
                        for (var i = 0; i < tallies.Length; i++)
                        {
                            tallies[i].Rows += scan.Tallies[i].Rows;
                            tallies[i].Converted += scan.Tallies[i].Converted;
                            tallies[i].Unparseable += scan.Tallies[i].Unparseable;
                            tallies[i].Ambiguous += scan.Tallies[i].Ambiguous;
                            tallies[i].Nonexistent += scan.Tallies[i].Nonexistent;
                        }
                    }

                    var sets = string.Join(", ", columns.Select(c => $"{c} = {Forward(DatabaseEngine.MySql, c, scan)}").Concat(keep.Select(c => $"{c} = {c}")));
                    if (transaction is null)
                    {
                        // READ COMMITTED: under REPEATABLE READ, a window's last range would lock the first row of the
                        // next window (InnoDB locks the row that ends a range scan) and wait for that lane to commit.
                        transaction = await writer.BeginTransactionAsync(lanes.Count > 1 ? System.Data.IsolationLevel.ReadCommitted : System.Data.IsolationLevel.RepeatableRead, token).ConfigureAwait(false);
                        opened.Restart();
                    }

                    await RecordUnrecoverableAsync(context, Unrecoverable(plan, scan), transaction, token).ConfigureAwait(false);
                    await using (var update = writer.CreateCommand($"UPDATE {table} SET {sets} WHERE {range.Predicate(key)}", transaction, 0))
                    {
                        range.Bind(update);
                        await update.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                    }

                    // The progress row commits with the batches it describes, so undo knows exactly what was converted.
                    await SetProgressAsync(writer, transaction, context.RunId!, plan.Table.ToString(), lane.Number, "converted_to", range.Through, token).ConfigureAwait(false);
                    if (opened.Elapsed >= context.Request.CommitInterval)
                    {
                        await transaction.CommitAsync(token).ConfigureAwait(false);
                        await transaction.DisposeAsync().ConfigureAwait(false);
                        transaction = null;
                    }

                    lock (gate)
                    {
                        ReportProgress(context, plan.Table.ToString(), Math.Min(before.Rows, rows), rows, stopwatch);
                    }
                }

                // The lanes commit together, so a run stopped before every window is converted keeps nothing uncommitted.
                if (Interlocked.Decrement(ref converting) == 0)
                {
                    allConverted.TrySetResult();
                }

                await allConverted.Task.WaitAsync(token).ConfigureAwait(false);
                if (transaction is not null)
                {
                    await transaction.CommitAsync(token).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                // The first failure is the run's; the others are the lanes it stopped.
                Interlocked.CompareExchange(ref firstFailure, ex, null);
                await stop.CancelAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                if (transaction is not null)
                {
                    await transaction.DisposeAsync().ConfigureAwait(false);
                }

                await scanStop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await scanner.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The scanner stops with its lane.
                }
            }
        }

        var work = lanes.Select(lane => Task.Run(() => ConvertLaneAsync(lane, stop.Token), stop.Token)).ToList();
        try
        {
            await Task.WhenAll(work).ConfigureAwait(false);
        }
        catch when (firstFailure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(firstFailure);
        }

        for (var i = 0; i < plan.Columns.Count; i++)
        {
            context.Outcome.Columns.Add(Result(plan.Columns[i], tallies[i], context.Converter, UpdateCase));
        }

        var after = await CountInHalvesAsync(context, plan, minKey + ((maxKey - minKey) / 2), cancellationToken).ConfigureAwait(false);
        CheckCounts(context, plan, before, after, tallies.Select(t => t.Converted).ToList());
        await CheckSampleAsync(context, plan, sample, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<long?> EstimatedRowsAsync(DbConnection connection, string table, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = @t").AddParameter("@t", table);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? null : System.Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    private static async Task SetProgressAsync(DbConnection connection, DbTransaction transaction, string runId, string table, int lane, string column, object key, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand($"UPDATE {Progress} SET {column} = @key WHERE run_id = @run AND table_name = @table AND lane = {lane}", transaction);
        await command.AddParameter("@key", KeyText(key)).AddParameter("@run", runId).AddParameter("@table", table).ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<long> UndoMySqlTypedAsync(UndoContext undo, List<RunColumn> columns, CancellationToken cancellationToken)
    {
        var connection = undo.Connection;
        var first = columns[0];
        var table = undo.Table(first.Table);
        var key = undo.Key(first);
        var lanes = new List<(int Lane, string? After, string? ConvertedTo, string? UndoneTo)>();
        await using (var read = connection.CreateCommand($"SELECT lane, lane_after, converted_to, undone_to FROM {Progress} WHERE run_id = @run AND table_name = @table ORDER BY lane"))
        {
            read.AddParameter("@run", undo.RunId).AddParameter("@table", first.Table);
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
                lanes.Add((System.Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture), Text(1), Text(2), Text(3)));
            }
        }

        object? Typed(string? text) => text is null ? null : first.IntegerKey ? long.Parse(text, CultureInfo.InvariantCulture) : text;
        var quoted = columns.Select(c => undo.Quote(c.Column)).ToList();
        var names = columns.Select(c => c.Column).ToHashSet(StringComparer.OrdinalIgnoreCase);
        List<string>? keep = null;
        long values = 0;
        foreach (var (lane, laneAfter, convertedTo, undoneTo) in lanes)
        {
            // Each key window was converted from its start up to converted_to, and undone from its start up to undone_to.
            var through = Typed(convertedTo);
            if (through is null || Equals(Typed(undoneTo), through))
            {
                continue;
            }

            var after = Typed(undoneTo ?? laneAfter);
            var window = (after is null ? string.Empty : $"{key} > @after AND ") + $"{key} <= @through";
            OffsetTimeline? timeline;
            long min, max, laneValues = 0;
            await using (var range = connection.CreateCommand($"SELECT {string.Join(", ", quoted.Select(q => $"COUNT(IF({MySqlRealDate(q, back: true)}, {q}, NULL)), MIN(IF({MySqlRealDate(q, back: true)}, {q}, NULL)), MAX(IF({MySqlRealDate(q, back: true)}, {q}, NULL))"))} FROM {table} WHERE {window}", null, 0))
            {
                range.AddParameter("@through", through);
                if (after is not null)
                {
                    range.AddParameter("@after", after);
                }

                await using var reader = await range.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                (timeline, min, max) = UtcTimeline(undo, reader, columns.Count);
                for (var i = 0; i < columns.Count; i++)
                {
                    laneValues += System.Convert.ToInt64(reader.GetValue(3 * i), CultureInfo.InvariantCulture);
                }
            }

            values += laneValues;
            keep ??= (await AutoUpdatedColumnsAsync(connection, first.Table, cancellationToken).ConfigureAwait(false)).Where(c => !names.Contains(c)).Select(undo.Quote).ToList();
            var sets = string.Join(", ", quoted.Select(q => $"{q} = {Backward(DatabaseEngine.MySql, q, timeline, min, max)}").Concat(keep.Select(c => $"{c} = {c}")));
            await foreach (var batch in KeyRangesAsync(connection, table, key, first.IntegerKey, 50_000, laneValues, after, through, cancellationToken).ConfigureAwait(false))
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var update = connection.CreateCommand($"UPDATE {table} SET {sets} WHERE {batch.Predicate(key)}", transaction, 0))
                {
                    batch.Bind(update);
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await SetProgressAsync(connection, transaction, undo.RunId, first.Table, lane, "undone_to", batch.Through, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        // Values that fell in a DST gap were shifted forward: converting back cannot find them, their records can.
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var column in columns)
            {
                await RestoreRecordedAsync(undo, column, "{0}", transaction, cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return values;
    }
}
