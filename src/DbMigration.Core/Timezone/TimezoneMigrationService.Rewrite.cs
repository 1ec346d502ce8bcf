using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Targets;

namespace DbMigration.Timezone;

/// <summary>
/// Text columns on PostgreSQL and MariaDB: pages read in key order, converted here, and written back with their
/// originals in the shared rollback table, a page per transaction.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    private static async Task ConvertByRewriteAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var before = await CountAsync(context, plan, cancellationToken).ConfigureAwait(false);
        var results = new List<TimezoneColumnResult>();
        foreach (var column in plan.Columns)
        {
            results.Add(await RewritePassAsync(context, plan, column, cancellationToken).ConfigureAwait(false));
        }

        context.Outcome.Columns.AddRange(results);
        var after = await CountAsync(context, plan, cancellationToken).ConfigureAwait(false);
        CheckCounts(context, plan, before, after, results.Select(r => r.Converted).ToList());
        foreach (var column in plan.Columns)
        {
            await SampleRecordedAsync(context, plan, column, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One pass over a column: counts only (analysis, when there is no run id), or counts and conversion.</summary>
    private static async Task<TimezoneColumnResult> RewritePassAsync(ConvertContext context, TablePlan plan, TimestampColumn column, CancellationToken cancellationToken)
    {
        var tally = new TimestampTally();
        var total = await context.Connection.ScalarAsync<long>($"SELECT COUNT(*) FROM {context.Table(plan)}", cancellationToken).ConfigureAwait(false);
        var stopwatch = Stopwatch.StartNew();
        var batch = Math.Max(100, context.Request.BatchSize);
        // MySQL would stamp ON UPDATE CURRENT_TIMESTAMP columns with the time of the conversion.
        var keep = context.RunId is not null && context.Provider.Engine == DatabaseEngine.MySql
            ? (await AutoUpdatedColumnsAsync(context.Connection, plan.Table.Name, cancellationToken).ConfigureAwait(false)).Where(c => c != column.Column).Select(context.Quote).ToList()
            : [];
        // PostgreSQL would fire the table's UPDATE triggers (an updated_at stamp, an audit row) for every converted row.
        var triggers = context.RunId is not null && context.Provider.Engine == DatabaseEngine.PostgreSql
            ? await PostgresUpdateTriggersAsync(context.Connection, context.Table(plan), null, cancellationToken).ConfigureAwait(false)
            : [];
        object? last = null;
        while (true)
        {
            var page = await ReadPageAsync(context, plan, column, last, batch, cancellationToken).ConfigureAwait(false);
            var updates = new List<(object Key, string Value, string Original)>(page.Count);
            foreach (var (key, value) in page)
            {
                tally.Rows++;
                if (value is null)
                {
                    continue;
                }

                string? replacement = null;
                string? issue;
                var original = FormatOriginal(value);
                if (value is string text)
                {
                    replacement = context.Text.Convert(text, tally, out issue);
                }
                else
                {
                    tally.Unparseable++;
                    issue = "unparseable";
                }

                if (issue is not null)
                {
                    context.Issues.Add(new TimestampIssue(column.Table.ToString(), column.Column, KeyText(key), original, issue));
                }

                if (replacement is not null)
                {
                    updates.Add((key, replacement, original));
                }
            }

            if (context.RunId is not null && updates.Count > 0)
            {
                await WriteBatchAsync(context, plan, column, updates, keep, triggers, cancellationToken).ConfigureAwait(false);
            }

            ReportProgress(context, column.Name, tally.Rows, total, stopwatch);
            if (page.Count < batch)
            {
                break;
            }

            last = page[^1].Key;
        }

        return Result(column, tally, context.Converter, Rewrite);
    }

    private static async Task<List<(object Key, object? Value)>> ReadPageAsync(ConvertContext context, TablePlan plan, TimestampColumn column, object? last, int batch, CancellationToken cancellationToken)
    {
        var key = context.Key(plan);
        var sql = $"SELECT {key}, {context.Quote(column.Column)} FROM {context.Table(plan)}" +
                  (last is null ? string.Empty : $" WHERE {key} > @last") + $" ORDER BY {key} LIMIT {batch}";
        await using var command = context.Connection.CreateCommand(sql, timeoutSeconds: 0);
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

    /// <summary>Updates a page of values and records their originals in one transaction.</summary>
    private static async Task WriteBatchAsync(ConvertContext context, TablePlan plan, TimestampColumn column, List<(object Key, string Value, string Original)> updates, IReadOnlyList<string> keep,
        IReadOnlyList<(string Name, char Mode)> triggers, CancellationToken cancellationToken)
    {
        var connection = context.Connection;
        var table = context.Table(plan);
        var columnName = context.Quote(column.Column);
        var key = context.Key(plan);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (context.Provider.Engine == DatabaseEngine.PostgreSql)
        {
            var keys = updates.Select(u => u.Key).ToArray();
            await SetTriggersAsync(connection, transaction, table, triggers, enable: false, cancellationToken).ConfigureAwait(false);
            await using (var update = connection.CreateCommand($"UPDATE {table} SET {columnName} = dbm_new.v FROM (SELECT unnest(@keys) AS k, unnest(@values) AS v) dbm_new WHERE {table}.{key} = dbm_new.k", transaction, 0))
            {
                update.AddParameter("@keys", ToTypedArray(keys)).AddParameter("@values", updates.Select(u => u.Value).ToArray());
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await SetTriggersAsync(connection, transaction, table, triggers, enable: true, cancellationToken).ConfigureAwait(false);

            await using var record = connection.CreateCommand($"INSERT INTO {Rollback} (run_id, table_name, column_name, row_key, original, converted) SELECT @run, @table, @column, unnest(@keys), unnest(@originals), unnest(@converted)", transaction, 0);
            record.AddParameter("@run", context.RunId).AddParameter("@table", column.Table.ToString()).AddParameter("@column", column.Column)
                .AddParameter("@keys", keys.Select(KeyText).ToArray())
                .AddParameter("@originals", updates.Select(u => u.Original).ToArray())
                .AddParameter("@converted", updates.Select(u => u.Value).ToArray());
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // Text protocol: a few multi-row statements per page instead of two round trips per row.
            foreach (var chunk in updates.Chunk(1000))
            {
                var values = string.Join(" UNION ALL ", chunk.Select((_, i) => $"SELECT @k{i} AS k, @v{i} AS v"));
                await using (var update = connection.CreateCommand($"UPDATE {table} dbm_t JOIN ({values}) dbm_new ON dbm_t.{key} = dbm_new.k SET dbm_t.{columnName} = dbm_new.v{string.Concat(keep.Select(c => $", dbm_t.{c} = dbm_t.{c}"))}", transaction, 0))
                {
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        update.AddParameter("@k" + i, chunk[i].Key).AddParameter("@v" + i, chunk[i].Value);
                    }

                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await InsertRecordedAsync(context, column.Table.ToString(), column.Column, chunk.Select(c => (KeyText(c.Key), c.Original, (string?)c.Value)).ToList(), transaction, cancellationToken).ConfigureAwait(false);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

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
            $"SELECT COUNT(*) FROM {Rollback} r JOIN {table} t ON {RollbackJoin(undo.Provider, $"t.{undo.Key(column)}", column.IntegerKey, "r")} " +
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
