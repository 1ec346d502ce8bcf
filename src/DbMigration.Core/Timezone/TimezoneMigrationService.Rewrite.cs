using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Timezone;

/// <summary>
/// Text columns on PostgreSQL and MariaDB: pages read in key order with every text column of the table, converted
/// here, and written back by one UPDATE per page (so each row is rewritten once, not once per column) with their
/// originals in the shared rollback table, a page per transaction.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    private static async Task ConvertByRewriteAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var before = await CountAsync(context, plan, cancellationToken).ConfigureAwait(false);
        var results = await RewriteTableAsync(context, plan, cancellationToken).ConfigureAwait(false);
        context.Outcome.Columns.AddRange(results);
        var after = await CountAsync(context, plan, cancellationToken).ConfigureAwait(false);
        CheckCounts(context, plan, before, after, results.Select(r => r.Converted).ToList());
        foreach (var column in plan.Columns)
        {
            await SampleRecordedAsync(context, plan, column, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A row of a page with at least one value to change: per column, the new value and the original (null where it stays).</summary>
    private sealed record RowRewrite(object Key, string?[] Values, string?[] Originals);

    /// <summary>One pass over a table's text columns: counts only (analysis, when there is no run id), or counts and conversion.</summary>
    private static async Task<List<TimezoneColumnResult>> RewriteTableAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var columns = plan.Columns;
        var tallies = columns.Select(_ => new TimestampTally()).ToArray();
        var total = await context.Connection.ScalarAsync<long>($"SELECT COUNT(*) FROM {context.Table(plan)}", cancellationToken).ConfigureAwait(false);
        // MySQL would stamp ON UPDATE CURRENT_TIMESTAMP columns with the time of the conversion.
        var keep = context.RunId is not null && context.Provider.Engine == DatabaseEngine.MySql
            ? (await AutoUpdatedColumnsAsync(context.Connection, plan.Table.Name, cancellationToken).ConfigureAwait(false)).Where(c => !columns.Any(x => x.Column == c)).Select(context.Quote).ToList()
            : [];
        // PostgreSQL would fire the table's UPDATE triggers (an updated_at stamp, an audit row) for every converted row.
        var triggers = context.RunId is not null && context.Provider.Engine == DatabaseEngine.PostgreSql
            ? await PostgresUpdateTriggersAsync(context.Connection, context.Table(plan), null, cancellationToken).ConfigureAwait(false)
            : [];
        var staging = context.RunId is not null && context.Provider.Engine == DatabaseEngine.MySql
            ? await CreateMySqlPageTableAsync(context, plan, cancellationToken).ConfigureAwait(false)
            : false;
        try
        {
            return await RewritePagesAsync(context, plan, tallies, total, keep, triggers, staging, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (staging)
            {
                await DropMySqlPageTableAsync(context.Connection).ConfigureAwait(false);
            }
        }
    }

    private static async Task<List<TimezoneColumnResult>> RewritePagesAsync(ConvertContext context, TablePlan plan, TimestampTally[] tallies, long total, IReadOnlyList<string> keep,
        IReadOnlyList<(string Name, char Mode)> triggers, bool staging, CancellationToken cancellationToken)
    {
        var columns = plan.Columns;
        var stopwatch = Stopwatch.StartNew();
        var batch = Math.Max(100, context.Request.BatchSize);
        long seen = 0;
        object? last = null;
        while (true)
        {
            var page = await ReadPageAsync(context, plan, last, batch, cancellationToken).ConfigureAwait(false);
            var updates = new List<RowRewrite>(page.Count);
            foreach (var (key, values) in page)
            {
                string?[]? replacements = null;
                string?[]? originals = null;
                for (var i = 0; i < columns.Count; i++)
                {
                    tallies[i].Rows++;
                    if (values[i] is not { } value)
                    {
                        continue;
                    }

                    string? replacement = null;
                    string? issue;
                    var original = FormatOriginal(value);
                    if (value is string text)
                    {
                        replacement = context.Text.Convert(text, tallies[i], out issue);
                    }
                    else
                    {
                        tallies[i].Unparseable++;
                        issue = "unparseable";
                    }

                    if (issue is not null)
                    {
                        context.Issues.Add(new TimestampIssue(columns[i].Table.ToString(), columns[i].Column, KeyText(key), original, issue));
                    }

                    if (replacement is not null)
                    {
                        replacements ??= new string?[columns.Count];
                        originals ??= new string?[columns.Count];
                        replacements[i] = replacement;
                        originals[i] = original;
                    }
                }

                if (replacements is not null)
                {
                    updates.Add(new RowRewrite(key, replacements, originals!));
                }
            }

            if (context.RunId is not null && updates.Count > 0)
            {
                await WriteBatchAsync(context, plan, updates, keep, triggers, staging, cancellationToken).ConfigureAwait(false);
            }

            seen += page.Count;
            ReportProgress(context, plan.Table.ToString(), seen, total, stopwatch);
            if (page.Count < batch)
            {
                break;
            }

            last = page[^1].Key;
        }

        return columns.Select((column, i) => Result(column, tallies[i], context.Converter, Rewrite)).ToList();
    }

    private static async Task<List<(object Key, object?[] Values)>> ReadPageAsync(ConvertContext context, TablePlan plan, object? last, int batch, CancellationToken cancellationToken)
    {
        var key = context.Key(plan);
        var sql = $"SELECT {key}, {string.Join(", ", plan.Columns.Select(c => context.Quote(c.Column)))} FROM {context.Table(plan)}" +
                  (last is null ? string.Empty : $" WHERE {key} > @last") + $" ORDER BY {key} LIMIT {batch}";
        await using var command = context.Connection.CreateCommand(sql, timeoutSeconds: 0);
        if (last is not null)
        {
            command.AddParameter("@last", last);
        }

        var page = new List<(object, object?[])>(batch);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var values = new object?[plan.Columns.Count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = reader.IsDBNull(i + 1) ? null : reader.GetValue(i + 1);
            }

            page.Add((reader.GetValue(0), values));
        }

        return page;
    }

    /// <summary>Updates a page of rows, every changed column in one statement, and records the originals, in one transaction.</summary>
    private static async Task WriteBatchAsync(ConvertContext context, TablePlan plan, List<RowRewrite> updates, IReadOnlyList<string> keep,
        IReadOnlyList<(string Name, char Mode)> triggers, bool staging, CancellationToken cancellationToken)
    {
        var connection = context.Connection;
        var table = context.Table(plan);
        var columns = plan.Columns;
        var key = context.Key(plan);
        // A value left NULL in the page keeps the row's own.
        var assignments = columns.Select((c, i) => $"{context.Quote(c.Column)} = COALESCE(dbm_new.v{i}, {{0}}{context.Quote(c.Column)})").ToList();
        var tableName = plan.Table.ToString();
        // MySQL: the columns assigned from dbm_new, and the ON UPDATE columns set to themselves so they keep their values.
        var mySqlSet = string.Join(", ", assignments.Select(a => "dbm_t." + string.Format(CultureInfo.InvariantCulture, a, "dbm_t.")).Concat(keep.Select(c => $"dbm_t.{c} = dbm_t.{c}")));
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (context.Provider.Engine == DatabaseEngine.PostgreSql)
        {
            var keys = updates.Select(u => u.Key).ToArray();
            await SetTriggersAsync(connection, transaction, table, triggers, enable: false, cancellationToken).ConfigureAwait(false);
            var unnests = string.Join(", ", columns.Select((_, i) => $"unnest(@v{i}) AS v{i}"));
            await using (var update = connection.CreateCommand($"UPDATE {table} SET {string.Join(", ", assignments.Select(a => string.Format(CultureInfo.InvariantCulture, a, $"{table}.")))} FROM (SELECT unnest(@keys) AS k, {unnests}) dbm_new WHERE {table}.{key} = dbm_new.k", transaction, 0))
            {
                update.AddParameter("@keys", ToTypedArray(keys));
                for (var i = 0; i < columns.Count; i++)
                {
                    update.AddParameter("@v" + i, updates.Select(u => u.Values[i]).ToArray());
                }

                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await SetTriggersAsync(connection, transaction, table, triggers, enable: true, cancellationToken).ConfigureAwait(false);

            var recorded = Recorded(columns, updates);
            await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original, converted) SELECT @run, @table, unnest(@columns), unnest(@keys), unnest(@originals), unnest(@converted)", transaction, 0);
            record.AddParameter("@run", context.RunId).AddParameter("@table", tableName)
                .AddParameter("@columns", recorded.Select(r => r.Column).ToArray())
                .AddParameter("@keys", recorded.Select(r => r.Key).ToArray())
                .AddParameter("@originals", recorded.Select(r => r.Original).ToArray())
                .AddParameter("@converted", recorded.Select(r => r.Converted).ToArray());
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        else if (staging)
        {
            // The page goes into the session's staging table by multi-row INSERTs (cheap for the server to parse),
            // then one UPDATE joins it, and the originals are recorded from it without being sent again.
            await using (var clear = connection.CreateCommand($"DELETE FROM {MySqlPageTable}", transaction, 0))
            {
                await clear.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach (var chunk in updates.Chunk(1000))
            {
                var rows = string.Join(", ", chunk.Select((_, r) => $"(@k{r}, @t{r}{string.Concat(columns.Select((_, i) => $", @v{r}_{i}, @o{r}_{i}"))})"));
                await using var fill = connection.CreateCommand($"INSERT INTO {MySqlPageTable} VALUES {rows}", transaction, 0);
                for (var r = 0; r < chunk.Length; r++)
                {
                    fill.AddParameter("@k" + r, chunk[r].Key).AddParameter("@t" + r, KeyText(chunk[r].Key));
                    for (var i = 0; i < columns.Count; i++)
                    {
                        fill.AddParameter($"@v{r}_{i}", chunk[r].Values[i]).AddParameter($"@o{r}_{i}", chunk[r].Originals[i]);
                    }
                }

                await fill.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (var update = connection.CreateCommand($"UPDATE {table} dbm_t JOIN {MySqlPageTable} dbm_new ON dbm_t.{key} = dbm_new.k SET {mySqlSet}", transaction, 0))
            {
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            for (var i = 0; i < columns.Count; i++)
            {
                // Ordered, so statement-based binary logging gives a replica the same ids.
                await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original, converted) SELECT @run, @table, @column, kt, o{i}, v{i} FROM {MySqlPageTable} WHERE v{i} IS NOT NULL ORDER BY k", transaction, 0);
                record.AddParameter("@run", context.RunId).AddParameter("@table", tableName).AddParameter("@column", columns[i].Column);
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            // Without the privilege to create a temporary table: a few multi-row statements per page instead of two
            // round trips per row.
            foreach (var chunk in updates.Chunk(1000))
            {
                var values = string.Join(" UNION ALL ", chunk.Select((_, r) => $"SELECT @k{r} AS k, {string.Join(", ", columns.Select((_, i) => $"@v{r}_{i} AS v{i}"))}"));
                await using (var update = connection.CreateCommand($"UPDATE {table} dbm_t JOIN ({values}) dbm_new ON dbm_t.{key} = dbm_new.k SET {mySqlSet}", transaction, 0))
                {
                    for (var r = 0; r < chunk.Length; r++)
                    {
                        update.AddParameter("@k" + r, chunk[r].Key);
                        for (var i = 0; i < columns.Count; i++)
                        {
                            update.AddParameter($"@v{r}_{i}", chunk[r].Values[i]);
                        }
                    }

                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                foreach (var byColumn in Recorded(columns, chunk).GroupBy(r => r.Column))
                {
                    await InsertRecordedAsync(context, tableName, byColumn.Key, byColumn.Select(r => (r.Key, r.Original, (string?)r.Converted)).ToList(), transaction, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private const string MySqlPageTable = "dbmigration_tz_page";

    /// <summary>
    /// A temporary table for a page's keys with the new and original values, shaped for the table's key. False when
    /// the account may not create temporary tables: the pages are then written by statements that carry them inline.
    /// </summary>
    private static async Task<bool> CreateMySqlPageTableAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        // Each staging column takes its source column's own type: the values came from it and go back into it.
        var types = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        await using (var command = context.Connection.CreateCommand("SELECT column_name, column_type, collation_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = @t"))
        {
            command.AddParameter("@t", plan.Table.Name);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                types[reader.GetString(0)] = reader.GetString(1) + (reader.IsDBNull(2) ? string.Empty : " COLLATE " + reader.GetString(2));
            }
        }

        if (!types.TryGetValue(plan.Key, out var keyType) || plan.Columns.Any(c => !types.ContainsKey(c.Column)))
        {
            return false;
        }

        var values = string.Concat(plan.Columns.Select((c, i) => $", v{i} {types[c.Column]} NULL, o{i} {types[c.Column]} NULL"));
        try
        {
            await context.Connection.ExecuteAsync($"DROP TEMPORARY TABLE IF EXISTS {MySqlPageTable}", cancellationToken).ConfigureAwait(false);
            await context.Connection.ExecuteAsync($"CREATE TEMPORARY TABLE {MySqlPageTable} (k {keyType} NOT NULL PRIMARY KEY, kt {KeyText(DatabaseEngine.MySql)} NOT NULL{values})", cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (DbException ex) when (ex.ErrorCode is 1044 or 1142 or 1227)
        {
            return false;
        }
    }

    private static async Task DropMySqlPageTableAsync(DbConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            await connection.ExecuteAsync($"DROP TEMPORARY TABLE IF EXISTS {MySqlPageTable}", CancellationToken.None).ConfigureAwait(false);
        }
        catch (DbException)
        {
            // The error that ended the pass is the one to report; the table goes with the session anyway.
        }
    }

    /// <summary>The rollback rows of a page: one per changed value, column by column.</summary>
    private static List<(string Column, string Key, string Original, string Converted)> Recorded(IReadOnlyList<TimestampColumn> columns, IReadOnlyList<RowRewrite> updates) =>
        columns.SelectMany((column, i) => updates.Where(u => u.Values[i] is not null).Select(u => (column.Column, KeyText(u.Key), u.Originals[i]!, u.Values[i]!))).ToList();

    /// <summary>
    /// Original values into the shared rollback table (multi-row INSERTs; any engine), with the value written in
    /// their place when there is one, so undo can tell a value changed since from one the run left.
    /// </summary>
    private static async Task InsertRecordedAsync(ConvertContext context, string table, string column, IReadOnlyList<(string Key, string Original, string? Converted)> rows, DbTransaction transaction, CancellationToken cancellationToken)
    {
        foreach (var chunk in rows.Chunk(1000))
        {
            var values = string.Join(", ", chunk.Select((_, i) => $"(@run, @table, @column, @k{i}, @o{i}, @c{i})"));
            // On the transaction's own connection: a MariaDB key window writes on a connection of its own.
            await using var record = transaction.Connection!.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original, converted) VALUES {values}", transaction, 0);
            record.AddParameter("@run", context.RunId).AddParameter("@table", table).AddParameter("@column", column);
            for (var i = 0; i < chunk.Length; i++)
            {
                record.AddParameter("@k" + i, chunk[i].Key).AddParameter("@o" + i, chunk[i].Original).AddParameter("@c" + i, chunk[i].Converted);
            }

            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static Array ToTypedArray(object[] keys) => keys switch
    {
        _ when keys.All(k => k is long) => keys.Cast<long>().ToArray(),
        _ when keys.All(k => k is int) => keys.Cast<int>().ToArray(),
        _ when keys.All(k => k is Guid) => keys.Cast<Guid>().ToArray(),
        _ => keys.Select(KeyText).ToArray(),
    };

    /// <summary>A random sample of recorded originals, turned back into local time from the table's current values.</summary>
    private static async Task SampleRecordedAsync(ConvertContext context, TablePlan plan, TimestampColumn column, CancellationToken cancellationToken)
    {
        var random = context.Provider.Engine == DatabaseEngine.MySql ? "RAND()" : "random()";
        var samples = new List<(string Key, string Original)>();
        await using (var command = context.Connection.CreateCommand($"SELECT row_key, original FROM {Rollback} WHERE run_id = @run AND table_name = @table AND column_name = @column ORDER BY {random} LIMIT {SampleSize}"))
        {
            command.AddParameter("@run", context.RunId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                samples.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        var mismatches = 0;
        foreach (var (rowKey, original) in samples)
        {
            await using var read = context.Connection.CreateCommand($"SELECT {context.Quote(column.Column)} FROM {context.Table(plan)} WHERE {context.Key(plan)} = @k");
            read.AddParameter("@k", plan.IntegerKey ? long.Parse(rowKey, CultureInfo.InvariantCulture) : rowKey);
            if (!RoundTrips(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), original, context.Converter))
            {
                mismatches++;
            }
        }

        CheckSamples(context, column, samples.Count, mismatches);
    }

    private static async Task<long> UndoRewriteAsync(UndoContext undo, List<RunColumn> columns, CancellationToken cancellationToken)
    {
        long restored = 0;
        foreach (var column in Enumerable.Reverse(columns))
        {
            await using var transaction = await undo.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            restored += await RestoreRecordedAsync(undo, column, "{0}", transaction, cancellationToken).ConfigureAwait(false);
            var kept = await ChangedSinceAsync(undo, column, transaction, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            if (kept > 0)
            {
                undo.Progress.Warning($"{column.Table}.{column.Column}: {kept} value(s) changed after the run were kept as they are.");
            }
        }

        return restored;
    }

    /// <summary>Recorded rows whose value is no longer the one the run wrote.</summary>
    private static async Task<long> ChangedSinceAsync(UndoContext undo, RunColumn column, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var table = undo.Table(column.Table);
        await using var command = undo.Connection.CreateCommand(
            $"SELECT COUNT(*) FROM {Rollback} r JOIN {table} t ON {RollbackJoin(undo.Provider, undo.Key(column, "t"), column.IntegerKey, "r")} " +
            $"WHERE r.run_id = @run AND r.table_name = @table AND r.column_name = @column AND r.converted IS NOT NULL AND t.{undo.Quote(column.Column)} <> r.converted AND t.{undo.Quote(column.Column)} <> r.original", transaction, 0);
        command.AddParameter("@run", undo.RunId).AddParameter("@table", column.Table).AddParameter("@column", column.Column);
        return System.Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>The table's enabled user triggers that fire on UPDATE, with how each is enabled (O, A or R).</summary>
    private static async Task<List<(string Name, char Mode)>> PostgresUpdateTriggersAsync(DbConnection connection, string quotedTable, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var triggers = new List<(string, char)>();
        // tgtype bit 4 is UPDATE.
        await using var command = connection.CreateCommand("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = @t::regclass AND NOT tgisinternal AND tgenabled <> 'D' AND (tgtype & 16) <> 0 ORDER BY tgname", transaction);
        command.AddParameter("@t", quotedTable);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            triggers.Add((reader.GetString(0), reader.GetChar(1)));
        }

        return triggers;
    }

    /// <summary>
    /// Switches those triggers off, or back on as they were, inside the batch's transaction: no other session sees
    /// them off, and a failed batch rolls the switch back with its rows.
    /// </summary>
    private static async Task SetTriggersAsync(DbConnection connection, DbTransaction transaction, string quotedTable, IReadOnlyList<(string Name, char Mode)> triggers, bool enable, CancellationToken cancellationToken)
    {
        if (triggers.Count == 0)
        {
            return;
        }

        var provider = DatabaseProviders.For(DatabaseEngine.PostgreSql);
        var actions = triggers.Select(t => (enable ? t.Mode switch { 'A' => "ENABLE ALWAYS", 'R' => "ENABLE REPLICA", _ => "ENABLE" } : "DISABLE") + " TRIGGER " + provider.QuoteIdentifier(t.Name));
        await using var command = connection.CreateCommand($"ALTER TABLE {quotedTable} {string.Join(", ", actions)}", transaction, 0);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
