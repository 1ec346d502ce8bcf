using System.Data.Common;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Providers;
using DbMigration.Sql;

namespace DbMigration.Query;

/// <summary>Runs ad-hoc SQL scripts statement by statement, streaming rows.</summary>
public sealed class QueryService
{
    /// <summary>Splits the script into the statements that would run, in order. Nothing touches the database.</summary>
    public IReadOnlyList<SqlStatement> Plan(QueryRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var statements = SqlScriptSplitter.Split(request.Sql ?? string.Empty, request.Target.Engine);
        if (statements.Count == 0)
        {
            throw new DbMigrationException(ErrorIds.QueryEmpty, ErrorKind.InvalidArgument, "The query contains no statement (only blanks or comments).");
        }

        foreach (var statement in statements)
        {
            if (ClientSyntax.Describe(statement.Text, request.Target.Engine) is { } why)
            {
                throw new DbMigrationException(ErrorIds.QueryClientSyntax, ErrorKind.InvalidArgument, $"Statement {statement.Index} (line {statement.Line}): {why} Nothing was run.")
                { Target = request.Target.ToString(), Sql = statement.Text };
            }
        }

        if (request.SingleTransaction)
        {
            RefuseWhatCannotRunInOneTransaction(request, statements);
        }

        foreach (var name in request.Parameters.Keys)
        {
            if (NormalizeParameterName(name).Length < 2)
            {
                throw new DbMigrationException(ErrorIds.QueryInvalidParameter, ErrorKind.InvalidArgument, $"'{name}' is not a valid parameter name; use names such as 'id' or '@id'.");
            }
        }

        // Before anything runs: PostgreSQL would read a missing @id as its absolute-value operator on a column id
        // ("WHERE id = @id" matches every id >= 0), and SQLite would fail only on reaching that statement.
        // Names match as each driver matches them: Microsoft.Data.Sqlite by case, Npgsql without.
        var given = request.Parameters.Keys.Select(NormalizeParameterName)
            .ToHashSet(request.Target.Engine == Targets.DatabaseEngine.Sqlite ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase);
        foreach (var statement in statements)
        {
            var missing = statement.Parameters.Where(p => !given.Contains(p)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (missing.Count > 0)
            {
                throw new DbMigrationException(ErrorIds.QueryInvalidParameter, ErrorKind.InvalidArgument,
                    $"Statement {statement.Index} (line {statement.Line}) uses {string.Join(", ", missing)}, which -Parameters does not give; nothing was run. Pass -Parameters @{{ {missing[0][1..]} = … }}.")
                { Target = request.Target.ToString(), Sql = statement.Text };
            }
        }

        return statements;
    }

    /// <summary>Statements that would end DbMigration's transaction, or that a rollback could not undo, refused before anything runs.</summary>
    private static void RefuseWhatCannotRunInOneTransaction(QueryRequest request, IReadOnlyList<SqlStatement> statements)
    {
        foreach (var statement in statements)
        {
            string? why = null;
            if (TransactionControl.Keyword(statement.Text) is { } keyword)
            {
                why = $"is its own {keyword}, but -SingleTransaction begins and commits the transaction itself; remove it, or run the script without -SingleTransaction.";
            }
            else if (request.Target.Engine == Targets.DatabaseEngine.MySql && TransactionControl.MySqlImplicitCommit(statement.Text) is { } ddl)
            {
                why = $"is a {ddl} statement, which MySQL and MariaDB commit at once, so a failure after it could not be rolled back; run it without -SingleTransaction.";
            }

            if (why is not null)
            {
                throw new DbMigrationException(ErrorIds.QueryNotTransactional, ErrorKind.InvalidArgument, $"Statement {statement.Index} (line {statement.Line}) {why} Nothing was run.")
                { Target = request.Target.ToString(), Sql = statement.Text };
            }
        }
    }

    /// <summary>
    /// Runs the given statements in order on one connection. Rows stream as they are read; a statement that
    /// returns none yields a <see cref="QueryStatementResult"/>. The first failure stops the script and is thrown
    /// with the statement attached.
    /// </summary>
    public async IAsyncEnumerable<QueryOutput> ExecuteAsync(
        QueryRequest request,
        IReadOnlyList<SqlStatement> statements,
        IProgress<OperationUpdate>? progress,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(statements);
        var provider = DatabaseProviders.For(request.Target);
        await using var connection = await provider.OpenConnectionAsync(request.Target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await using var transaction = request.SingleTransaction ? await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false) : null;
        var committed = false;
        try
        {
            foreach (var statement in statements)
            {
                progress?.Report(new ProgressUpdate(1, "Invoke-DatabaseQuery", $"Statement {statement.Index} of {statements.Count}",
                    100.0 * (statement.Index - 1) / statements.Count, CurrentOperation: Abbreviate(statement.Text)));
                progress.Verbose($"Running statement {statement.Index} (line {statement.Line}): {Abbreviate(statement.Text)}");

                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                if (request.CommandTimeout > TimeSpan.Zero)
                {
                    timeout.CancelAfter(request.CommandTimeout);
                }

                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = statement.Text;
                command.CommandTimeout = (int)Math.Ceiling(request.CommandTimeout.TotalSeconds);
                foreach (var (name, value) in request.Parameters)
                {
                    var parameter = command.CreateParameter();
                    parameter.ParameterName = NormalizeParameterName(name);
                    parameter.Value = value ?? DBNull.Value;
                    command.Parameters.Add(parameter);
                }

                provider.SendAsWritten(command);
                var stopwatch = Stopwatch.StartNew();
                using var interrupt = provider.InterruptOn(connection, timeout.Token);
                DbDataReader? reader = null;
                try
                {
                    reader = await Run(() => command.ExecuteReaderAsync(timeout.Token), provider, request, statement, statements.Count, timeout.Token, cancellationToken).ConfigureAwait(false);
                    if (reader.FieldCount == 0)
                    {
                        // RecordsAffected is final once the reader is closed.
                        await reader.CloseAsync().ConfigureAwait(false);
                        var affected = reader.RecordsAffected;
                        yield return new QueryStatementResult(statement.Index, statement.Text, affected, stopwatch.Elapsed);
                        continue;
                    }

                    var (columns, ordinals) = ColumnNames(reader);
                    var columnReaders = Enumerable.Range(0, reader.FieldCount).Select(i => provider.ColumnReader(reader, i)).ToArray();
                    while (await Run(() => reader.ReadAsync(timeout.Token), provider, request, statement, statements.Count, timeout.Token, cancellationToken).ConfigureAwait(false))
                    {
                        var values = new object?[reader.FieldCount];
                        for (var i = 0; i < values.Length; i++)
                        {
                            values[i] = ReadValue(reader, i, columnReaders[i], request, statement);
                        }

                        yield return new QueryRow(statement.Index, columns, ordinals, values);
                    }
                }
                finally
                {
                    if (reader is not null)
                    {
                        await reader.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }

            if (transaction is not null)
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                progress.Verbose($"Committed the {statements.Count} statement(s) as one transaction.");
            }

            committed = true;
        }
        finally
        {
            if (transaction is not null && !committed)
            {
                await RollBackQuietlyAsync(transaction).ConfigureAwait(false);
            }
        }

        progress?.Report(new ProgressUpdate(1, "Invoke-DatabaseQuery", "Done", 100, Completed: true));
    }

    /// <summary>After a failure or a stop: the engine may already have ended the transaction (SQLite on interrupt).</summary>
    private static async Task RollBackQuietlyAsync(DbTransaction transaction)
    {
        try
        {
            await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException)
        {
        }
    }

    private static async Task<T> Run<T>(Func<Task<T>> action, IDatabaseProvider provider, QueryRequest request, SqlStatement statement, int total, CancellationToken timeoutToken, CancellationToken callerToken)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not DbMigrationException)
        {
            var rolledBack = request.SingleTransaction ? " The transaction was rolled back: nothing the script did took effect." : string.Empty;
            if (callerToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("The query was stopped." + rolledBack, ex, callerToken);
            }

            if (timeoutToken.IsCancellationRequested)
            {
                throw new DbMigrationException(ErrorIds.QueryTimeout, ErrorKind.OperationTimeout,
                    $"Statement {statement.Index} of {total} (line {statement.Line}) did not finish within {request.CommandTimeout.TotalSeconds:0.#} s and was cancelled.{rolledBack}", ex)
                { Target = request.Target.ToString(), Sql = statement.Text };
            }

            var translated = provider.TranslateException(ex, request.Target, statement.Text);
            if (translated is null)
            {
                throw;
            }

            throw new DbMigrationException(translated.ErrorId, translated.Kind,
                $"Statement {statement.Index} of {total} (line {statement.Line}) failed: {translated.Message}{rolledBack}", ex)
            {
                Target = translated.Target,
                Sql = statement.Text,
                SqlState = translated.SqlState,
                ServerErrorNumber = translated.ServerErrorNumber,
            };
        }
    }

    internal static string NormalizeParameterName(string name)
    {
        var trimmed = name.Trim();
        if (trimmed.Length > 0 && trimmed[0] is '@' or ':' or '$')
        {
            trimmed = trimmed[1..];
        }

        return trimmed.Length > 0 && trimmed.All(c => char.IsLetterOrDigit(c) || c == '_') ? "@" + trimmed : string.Empty;
    }

    /// <summary>
    /// A value as the driver gives it; a PostgreSQL numeric beyond decimal's range as a BigInteger when it is whole.
    /// One .NET cannot hold at all (a numeric NaN, or huge with a fraction) is a clear error, not an unexpected one.
    /// </summary>
    private static object? ReadValue(DbDataReader reader, int ordinal, Func<DbDataReader, int, object>? columnReader, QueryRequest request, SqlStatement statement)
    {
        try
        {
            if (columnReader is not null)
            {
                return reader.IsDBNull(ordinal) ? null : columnReader(reader, ordinal);
            }

            var value = reader.GetValue(ordinal);
            return value is DBNull ? null : value;
        }
        catch (Exception ex) when (ex is InvalidCastException or OverflowException)
        {
            try
            {
                return reader.GetFieldValue<System.Numerics.BigInteger>(ordinal);
            }
            catch (Exception inner) when (inner is InvalidCastException or OverflowException or NotSupportedException)
            {
                // Not a whole number either: reported below with the first error.
            }

            var name = reader.GetName(ordinal);
            throw new DbMigrationException(ErrorIds.QueryValueNotReadable, ErrorKind.InvalidData,
                $"Statement {statement.Index} returned a value in column '{name}' ({reader.GetDataTypeName(ordinal)}) that .NET cannot hold: {ex.Message} Select it as text instead, e.g. {name}::text on PostgreSQL or CAST({name} AS CHAR) on MariaDB.", ex)
            { Target = request.Target.ToString(), Sql = statement.Text };
        }
    }

    private static (IReadOnlyList<string> Columns, IReadOnlyDictionary<string, int> Ordinals) ColumnNames(DbDataReader reader)
    {
        var columns = new List<string>(reader.FieldCount);
        var ordinals = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < reader.FieldCount; i++)
        {
            var name = reader.GetName(i);
            if (string.IsNullOrEmpty(name))
            {
                name = "Column" + (i + 1);
            }

            var unique = name;
            for (var suffix = 1; ordinals.ContainsKey(unique); suffix++)
            {
                unique = name + suffix;
            }

            ordinals[unique] = i;
            columns.Add(unique);
        }

        return (columns, ordinals);
    }

    private static string Abbreviate(string sql)
    {
        var flat = string.Join(' ', sql.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return flat.Length <= 80 ? flat : flat[..77] + "...";
    }
}
