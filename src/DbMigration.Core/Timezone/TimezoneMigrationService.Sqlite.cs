using System.Globalization;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Providers.Sqlite;
using Microsoft.Data.Sqlite;

namespace DbMigration.Timezone;

/// <summary>
/// SQLite: the table is rebuilt in one transaction. The original is renamed to the run's record table, and a new
/// table with the same definition is filled by one INSERT … SELECT that calls our converter for every value, so
/// rows never leave the engine; indexes and triggers are then recreated. Writing a new table costs about half
/// the I/O of updating in place (no page is journaled twice, no index entry is moved), and the renamed original
/// is the rollback record for free. A killed run leaves a hot journal that SQLite rolls back on next open.
/// </summary>
public sealed partial class TimezoneMigrationService
{
    private static string FunctionName(int slot) => $"dbmigration_tz_convert_{slot}";

    private static SqliteTimestampFunctions Register(SqliteConnection connection, TextTimestampConverter converter, string table, IReadOnlyList<string> columns, IReadOnlyList<TimestampTally> tallies, List<TimestampIssue> issues, bool countOnly, Action<long>? progress = null) =>
        new(connection, converter, columns.Select((c, i) => new SqliteColumnFunction(FunctionName(i), table, c, tallies[i])), issues, countOnly, progress);

    private static async Task AnalyzeSqliteAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        var tallies = plan.Columns.Select(_ => new TimestampTally()).ToList();
        using (Register((SqliteConnection)context.Connection, context.Text, plan.Table.ToString(), plan.Columns.Select(c => c.Column).ToList(), tallies, context.Issues, countOnly: true))
        using (context.Provider.InterruptOn(context.Connection, cancellationToken))
        {
            var calls = plan.Columns.Select((c, i) => $"COUNT({FunctionName(i)}({context.Quote(c.Column)}, {context.Key(plan)}))");
            await using var command = context.Connection.CreateCommand($"SELECT {string.Join(", ", calls)} FROM {context.Table(plan)}", timeoutSeconds: 0);
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < plan.Columns.Count; i++)
        {
            context.Outcome.Columns.Add(Result(plan.Columns[i], tallies[i], context.Converter, SqliteUpdate));
        }
    }

    /// <summary>What a rebuild must carry over: the table's definition, its indexes and triggers, and its columns.</summary>
    private sealed record SqliteTableShape(string CreateSql, List<(string Type, string Name, string Sql)> Dependents, List<string> Columns, bool CopyRowId);

    private static async Task<SqliteTableShape> ReadShapeAsync(SqliteConnection connection, string name, CancellationToken cancellationToken)
    {
        var create = await connection.ScalarAsync<string>($"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{name.Replace("'", "''", StringComparison.Ordinal)}'", cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Table {name} has no definition in sqlite_master.");
        var dependents = new List<(string, string, string)>();
        await using (var command = connection.CreateCommand("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = @t AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, rowid").AddParameter("@t", name))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                dependents.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
        }

        // Generated columns cannot be inserted; they are computed again. The rowid is copied unless a column is it.
        var columns = new List<string>();
        var integerKeys = new List<string>();
        var keyColumns = 0;
        await using (var command = connection.CreateCommand("SELECT name, hidden, type, pk FROM pragma_table_xinfo(@t) ORDER BY cid").AddParameter("@t", name))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.GetInt64(1) == 0)
                {
                    columns.Add(reader.GetString(0));
                }

                if (reader.GetInt64(3) > 0)
                {
                    keyColumns++;
                    if (string.Equals(reader.GetString(2), "INTEGER", StringComparison.OrdinalIgnoreCase))
                    {
                        integerKeys.Add(reader.GetString(0));
                    }
                }
            }
        }

        var withoutRowId = create.Contains("WITHOUT ROWID", StringComparison.OrdinalIgnoreCase);
        var rowIdAlias = keyColumns == 1 && integerKeys.Count == 1;
        return new SqliteTableShape(create, dependents, columns, !withoutRowId && !rowIdAlias);
    }

    private static async Task ConvertSqliteAsync(ConvertContext context, TablePlan plan, string recordTable, CancellationToken cancellationToken)
    {
        var connection = (SqliteConnection)context.Connection;
        var name = plan.Table.Name;
        var table = context.Table(plan);
        var record = context.Quote(recordTable);
        var rows = await connection.ScalarAsync<long>($"SELECT COUNT(*) FROM {table}", cancellationToken).ConfigureAwait(false);
        var shape = await ReadShapeAsync(connection, name, cancellationToken).ConfigureAwait(false);
        await EnsureRoomAsync(context, name, cancellationToken).ConfigureAwait(false);

        var converted = plan.Columns.Select(c => c.Column).ToList();
        var key = plan.Key == "rowid" ? "rowid" : context.Quote(plan.Key);
        var targets = (shape.CopyRowId ? ["rowid"] : new List<string>()).Concat(shape.Columns.Select(context.Quote)).ToList();
        var sources = (shape.CopyRowId ? ["rowid"] : new List<string>()).Concat(shape.Columns.Select(c =>
        {
            var slot = converted.FindIndex(x => string.Equals(x, c, StringComparison.OrdinalIgnoreCase));
            var quoted = context.Quote(c);
            return slot < 0 ? quoted : $"coalesce({FunctionName(slot)}({quoted}, {key}), {quoted})";
        })).ToList();

        var tallies = plan.Columns.Select(_ => new TimestampTally()).ToList();
        var unchanged = false;
        long version = 0;
        var foreignKeys = await connection.ScalarAsync<long>("PRAGMA foreign_keys", cancellationToken).ConfigureAwait(false);
        var threads = await connection.ScalarAsync<long>("PRAGMA threads", cancellationToken).ConfigureAwait(false);
        var walMode = string.Equals(await connection.ScalarAsync<string>("PRAGMA journal_mode", cancellationToken).ConfigureAwait(false), "wal", StringComparison.OrdinalIgnoreCase);
        // Legacy rename leaves views, triggers and foreign keys elsewhere naming the table, so they follow the new one.
        // A second sorter thread builds the indexes faster.
        await connection.ExecuteAsync($"PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON; PRAGMA threads = {Math.Min(Environment.ProcessorCount, 4)}", cancellationToken).ConfigureAwait(false);
        try
        {
            var stopwatch = System.Diagnostics.Stopwatch.StartNew();
            // The new rows go to disk on the other core while they are written and the indexes sorted, instead of
            // all at the commit.
            var sync = new SqliteBackgroundSync(connection, walMode, enabled: context.Request.Target.FilePath is not (null or ":memory:"));
            using var functions = Register(connection, context.Text, plan.Table.ToString(), converted, tallies, context.Issues, countOnly: false, seen =>
            {
                ReportProgress(context, plan.Table.ToString(), seen, rows, stopwatch);
                sync.Nudge();
            });
            SqliteTimestampFunctions.ReadSortRunsWithoutMmap(connection);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await connection.ExecuteAsync($"ALTER TABLE {table} RENAME TO {record}", cancellationToken, transaction).ConfigureAwait(false);
                foreach (var (type, dependent, _) in shape.Dependents)
                {
                    await connection.ExecuteAsync($"DROP {type.ToUpperInvariant()} {context.Quote(dependent)}", cancellationToken, transaction).ConfigureAwait(false);
                }

                await connection.ExecuteAsync(shape.CreateSql, cancellationToken, transaction).ConfigureAwait(false);
                await using (var fill = connection.CreateCommand($"INSERT INTO {table} ({string.Join(", ", targets)}) SELECT {string.Join(", ", sources)} FROM {record}", transaction, 0))
                using (context.Provider.InterruptOn(connection, cancellationToken))
                {
                    await fill.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                // Nothing changed (a re-run over converted values): keep the table as it was rather than a second
                // copy of it as a record.
                unchanged = tallies.All(t => t.Converted == 0);
                sync.Nudge();
                foreach (var (_, _, sql) in shape.Dependents.Where(_ => !unchanged).OrderBy(d => d.Type == "trigger"))
                {
                    await using var recreate = connection.CreateCommand(sql, transaction, 0);
                    await recreate.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                await sync.WhenIdleAsync().ConfigureAwait(false);
            }

            if (unchanged)
            {
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // AUTOINCREMENT: keep the high-water mark, which may be above every remaining id.
                if (await connection.ScalarAsync<long>("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'", cancellationToken, transaction).ConfigureAwait(false) > 0)
                {
                    await using var sequence = connection.CreateCommand("UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = @record) WHERE name = @table AND seq < (SELECT seq FROM sqlite_sequence WHERE name = @record)", transaction);
                    await sequence.AddParameter("@record", recordTable).AddParameter("@table", name).ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                version = await connection.ScalarAsync<long>("PRAGMA data_version", cancellationToken, transaction).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await connection.ExecuteAsync($"PRAGMA legacy_alter_table = OFF; PRAGMA foreign_keys = {foreignKeys}; PRAGMA threads = {threads}", CancellationToken.None).ConfigureAwait(false);
        }

        for (var i = 0; i < plan.Columns.Count; i++)
        {
            context.Outcome.Columns.Add(Result(plan.Columns[i], tallies[i], context.Converter, SqliteUpdate));
        }

        if (unchanged)
        {
            await ValidateSqliteAsync(context, plan, record, tallies, unchanged, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Writers that queued behind the rebuild wait for the validation too, so its counts are of the converted
        // table alone: the write lock is taken again at once, and data_version (which changes only for other
        // connections' commits) tells whether one got in between.
        await connection.ExecuteAsync("BEGIN IMMEDIATE", cancellationToken).ConfigureAwait(false);
        try
        {
            if (await connection.ScalarAsync<long>("PRAGMA data_version", cancellationToken).ConfigureAwait(false) != version)
            {
                context.Progress.Warning($"{plan.Table}: another connection wrote to the database in the moment between the conversion's commit and its validation; a row or NULL count that differs below may be that write.");
            }

            await ValidateSqliteAsync(context, plan, record, tallies, unchanged, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await connection.ExecuteAsync("ROLLBACK", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task ValidateSqliteAsync(ConvertContext context, TablePlan plan, string record, List<TimestampTally> tallies, bool unchanged, CancellationToken cancellationToken)
    {
        // What the converter saw of the original rows, against what the new table holds. With an integer key the
        // counting scan runs as two halves on their own connections while this one compares a random sample.
        var before = new TableCounts(tallies[0].Rows, tallies.Select(t => t.Rows - t.Nulls).ToArray(), tallies.Select(t => t.Marked).ToArray());
        context.Progress?.Report(new ProgressUpdate(7, "Invoke-TimezoneMigration", $"{plan.Table}: validating {before.Rows:N0} rows", 100));
        var middle = await MiddleKeyAsync(context, plan, cancellationToken).ConfigureAwait(false);
        var counting = middle is null
            ? Task.FromResult(await CountAsync(context, plan, cancellationToken).ConfigureAwait(false))
            : Task.Run(() => CountInHalvesAsync(context, plan, middle, cancellationToken), cancellationToken);
        var sampled = unchanged ? plan.Columns.Select(_ => (Samples: 0, Mismatches: 0)).ToArray() : await SampleSqliteAsync(context, plan, record, cancellationToken).ConfigureAwait(false);
        var after = await counting.ConfigureAwait(false);
        CheckCounts(context, plan, before, after, tallies.Select(t => t.Converted).ToList());
        for (var i = 0; i < plan.Columns.Count; i++)
        {
            CheckSamples(context, plan.Columns[i], sampled[i].Samples, sampled[i].Mismatches);
        }
    }

    /// <summary>The middle of an integer key's range, where the counting scan splits; null for other keys or no rows.</summary>
    private static async Task<long?> MiddleKeyAsync(ConvertContext context, TablePlan plan, CancellationToken cancellationToken)
    {
        if (!plan.IntegerKey)
        {
            return null;
        }

        // Separate subqueries: SQLite seeks each end only for a lone min() or max(); together they scan the table.
        var key = context.Key(plan);
        await using var bounds = context.Connection.CreateCommand($"SELECT ((SELECT MIN({key}) FROM {context.Table(plan)}) + (SELECT MAX({key}) FROM {context.Table(plan)})) / 2");
        var value = await bounds.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? null : System.Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    /// <summary>The rebuild holds the table twice until the run is undone or its record dropped: check there is room.</summary>
    private static async Task EnsureRoomAsync(ConvertContext context, string table, CancellationToken cancellationToken)
    {
        var path = context.Request.Target.FilePath;
        if (path is null || path == ":memory:")
        {
            return;
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var available = DiskSpace.AvailableBytes(directory);
        var fileBytes = new FileInfo(path).Length;
        // Room for a copy of the whole file settles it without walking the table's pages.
        if (available >= RoomNeeded(fileBytes))
        {
            return;
        }

        var needed = RoomNeeded(Math.Min(fileBytes, await SqliteTableBytesAsync((SqliteConnection)context.Connection, table, cancellationToken).ConfigureAwait(false)));
        if (available < needed)
        {
            throw new DbMigrationException(ErrorIds.TimezoneInsufficientSpace, ErrorKind.ResourceUnavailable,
                $"Converting {table} rebuilds it beside the original, which is kept as the rollback record: about {ByteSize.Format(needed)} is needed in {directory}, {ByteSize.Format(available)} is free.")
            { Target = context.Request.Target.ToString() };
        }
    }

    /// <summary>A table's size with its indexes, and a margin for the journal and the new indexes' sort.</summary>
    private static long RoomNeeded(long tableBytes) => tableBytes + tableBytes / 10 + 16 * 1024 * 1024;

    /// <summary>
    /// About the bytes a table and its indexes take in the file: every stored value's length plus a record's
    /// overhead, for the table and for each index's columns. SQLite as shipped here has no dbstat table to ask,
    /// and counting pages would mean reading the file behind SQLite's back; this reads the table once instead.
    /// Integers and reals count as their text, so the figure errs high.
    /// </summary>
    internal static async Task<long> SqliteTableBytesAsync(SqliteConnection connection, string table, CancellationToken cancellationToken)
    {
        var sqlite = DatabaseProviders.For(Targets.DatabaseEngine.Sqlite);
        string Quote(string name) => sqlite.QuoteIdentifier(name);
        const int recordOverhead = 12;
        var columns = new List<string>();
        await using (var list = connection.CreateCommand("SELECT name FROM pragma_table_info(@t)").AddParameter("@t", table))
        {
            await using var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                columns.Add(reader.GetString(0));
            }
        }

        // Each index holds its key columns (an expression counts as 16 bytes) and the row's key.
        var indexes = new List<List<string>>();
        await using (var list = connection.CreateCommand("SELECT i.name, x.name FROM pragma_index_list(@t) AS i, pragma_index_info(i.name) AS x ORDER BY i.name").AddParameter("@t", table))
        {
            await using var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            string? current = null;
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.GetString(0) != current)
                {
                    current = reader.GetString(0);
                    indexes.Add([]);
                }

                indexes[^1].Add(reader.IsDBNull(1) ? "x'00000000000000000000000000000000'" : Quote(reader.GetString(1)));
            }
        }

        static string Length(IEnumerable<string> values) => string.Join(" + ", values.Select(v => $"COALESCE(length(CAST({v} AS BLOB)), 0)").DefaultIfEmpty("0"));
        var terms = new List<string> { $"{Length(columns.Select(Quote))} + {recordOverhead}" };
        terms.AddRange(indexes.Select(index => $"{Length(index)} + {recordOverhead + 9}"));
        await using var size = connection.CreateCommand($"SELECT COALESCE(SUM({string.Join(" + ", terms)}), 0) FROM {Quote(table)}");
        return System.Convert.ToInt64(await size.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>Random converted rows: each original (in the record table) against the new value turned back.</summary>
    private static async Task<(int Samples, int Mismatches)[]> SampleSqliteAsync(ConvertContext context, TablePlan plan, string record, CancellationToken cancellationToken)
    {
        var connection = context.Connection;
        var key = plan.Key == "rowid" ? "rowid" : context.Quote(plan.Key);
        var columns = plan.Columns.Select(c => context.Quote(c.Column)).ToList();
        var select = string.Join(", ", columns.Select(c => $"dbm_r.{c}, dbm_t.{c}"));
        string filter;
        if (plan.IntegerKey)
        {
            await using var bounds = connection.CreateCommand($"SELECT (SELECT MIN({key}) FROM {record}), (SELECT MAX({key}) FROM {record})");
            await using var reader = await bounds.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            filter = reader.IsDBNull(0)
                ? "0"
                : $"dbm_r.{key} IN ({string.Join(", ", RandomKeys(reader.GetInt64(0), reader.GetInt64(1), SampleSize * 2))})";
        }
        else
        {
            filter = "1 ORDER BY random()";
        }

        var samples = new int[columns.Count];
        var mismatches = new int[columns.Count];
        await using (var command = connection.CreateCommand($"SELECT {select} FROM {record} dbm_r JOIN {context.Table(plan)} dbm_t ON dbm_t.{key} = dbm_r.{key} WHERE {filter} LIMIT {SampleSize * 2}", timeoutSeconds: 0))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    var original = reader.IsDBNull(2 * i) ? null : reader.GetValue(2 * i);
                    var current = reader.IsDBNull(2 * i + 1) ? null : reader.GetValue(2 * i + 1);
                    if (samples[i] >= SampleSize || original is not string text || Equals(original, current))
                    {
                        continue;
                    }

                    samples[i]++;
                    if (!RoundTrips(current, text, context.Converter))
                    {
                        mismatches[i]++;
                    }
                }
            }
        }

        return samples.Zip(mismatches).ToArray();
    }

    /// <summary>
    /// Puts back every value the run changed from the record table, unless it has been changed since (then it is
    /// kept and counted), and drops the record.
    /// </summary>
    private static async Task<long> UndoSqliteAsync(UndoContext undo, List<RunColumn> columns, CancellationToken cancellationToken)
    {
        var connection = (SqliteConnection)undo.Connection;
        var first = columns[0];
        var exists = await connection.ScalarAsync<long>($"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{first.RollbackTable!.Replace("'", "''", StringComparison.Ordinal)}'", cancellationToken).ConfigureAwait(false) > 0;
        if (!exists)
        {
            // The run was killed before it committed: SQLite rolled it back, nothing changed.
            return 0;
        }

        var table = undo.Table(first.Table);
        var record = undo.Quote(first.RollbackTable);
        var key = undo.Key(first);
        var tallies = columns.Select(_ => new TimestampTally()).ToList();
        var quoted = columns.Select(c => undo.Quote(c.Column)).ToList();
        string Wrote(int i) => $"coalesce({FunctionName(i)}(dbm_r.{quoted[i]}, dbm_r.{key}), dbm_r.{quoted[i]})";
        string Restorable(int i) => $"{table}.{quoted[i]} IS NOT dbm_r.{quoted[i]} AND {table}.{quoted[i]} IS {Wrote(i)}";
        string Kept(int i) => $"{table}.{quoted[i]} IS NOT dbm_r.{quoted[i]} AND {table}.{quoted[i]} IS NOT {Wrote(i)}";
        using var functions = Register(connection, new TextTimestampConverter(undo.Converter, undo.OutputFormat), first.Table, columns.Select(c => c.Column).ToList(), tallies, [], countOnly: false);

        long restored, kept;
        await using (var count = connection.CreateCommand(
            $"SELECT {string.Join(" + ", quoted.Select((_, i) => $"COALESCE(SUM({Restorable(i)}), 0)"))}, {string.Join(" + ", quoted.Select((_, i) => $"COALESCE(SUM({Kept(i)}), 0)"))} FROM {table} JOIN {record} dbm_r ON {table}.{key} = dbm_r.{key}", null, 0))
        {
            await using var reader = await count.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            restored = reader.GetInt64(0);
            kept = reader.GetInt64(1);
        }

        var sets = string.Join(", ", quoted.Select((q, i) => $"{q} = CASE WHEN {Restorable(i)} THEN dbm_r.{q} ELSE {table}.{q} END"));
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // SQLite cannot switch triggers off: the table's are set aside inside the transaction, so an updated_at
        // trigger does not stamp every restored row, and come back with it.
        var triggers = new List<(string Name, string Sql)>();
        await using (var list = connection.CreateCommand("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = @t AND sql IS NOT NULL", transaction).AddParameter("@t", first.Table))
        {
            await using var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                triggers.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        foreach (var (name, _) in triggers)
        {
            await connection.ExecuteAsync($"DROP TRIGGER {undo.Quote(name)}", cancellationToken, transaction).ConfigureAwait(false);
        }

        await using (var update = connection.CreateCommand($"UPDATE {table} SET {sets} FROM {record} dbm_r WHERE {table}.{key} = dbm_r.{key} AND ({string.Join(" OR ", quoted.Select((_, i) => Restorable(i)))})", transaction, 0))
        {
            await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var (_, sql) in triggers)
        {
            await using var recreate = connection.CreateCommand(sql, transaction, 0);
            await recreate.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await connection.ExecuteAsync($"DROP TABLE {record}", cancellationToken, transaction).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (kept > 0)
        {
            undo.Progress.Warning($"{first.Table}: {kept} value(s) changed after the run were kept as they are.");
        }

        return restored;
    }
}
