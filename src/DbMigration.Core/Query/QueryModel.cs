using System.Collections;
using DbMigration.Targets;

namespace DbMigration.Query;

/// <summary>What to run. Parameters are referenced as <c>@name</c> in the SQL.</summary>
public sealed record QueryRequest(
    DatabaseTarget Target,
    string Sql,
    IReadOnlyDictionary<string, object?> Parameters,
    TimeSpan CommandTimeout,
    TimeSpan ConnectTimeout)
{
    /// <summary>Runs the whole script in one transaction: all of it takes effect, or none (psql's --single-transaction).</summary>
    public bool SingleTransaction { get; init; }
}

/// <summary>Something a query script produces: a row, or the outcome of a statement that returns none.</summary>
public abstract class QueryOutput
{
    private protected QueryOutput(int statementIndex) => StatementIndex = statementIndex;

    /// <summary>1-based position of the statement in the script.</summary>
    public int StatementIndex { get; }
}

/// <summary>
/// One result row. Column names are unique (a repeated name gets a numeric suffix) and keep their order.
/// In PowerShell each row is emitted as an object whose properties are the columns.
/// </summary>
public sealed class QueryRow : QueryOutput, IReadOnlyDictionary<string, object?>
{
    private readonly IReadOnlyList<string> _columns;
    private readonly object?[] _values;
    private readonly IReadOnlyDictionary<string, int> _ordinals;

    internal QueryRow(int statementIndex, IReadOnlyList<string> columns, IReadOnlyDictionary<string, int> ordinals, object?[] values)
        : base(statementIndex)
    {
        _columns = columns;
        _ordinals = ordinals;
        _values = values;
    }

    public IReadOnlyList<string> Columns => _columns;

    public int Count => _columns.Count;

    public IEnumerable<string> Keys => _columns;

    public IEnumerable<object?> Values => _values;

    public object? this[string key] => _values[_ordinals[key]];

    public object? this[int ordinal] => _values[ordinal];

    public bool ContainsKey(string key) => _ordinals.ContainsKey(key);

    public bool TryGetValue(string key, out object? value)
    {
        if (_ordinals.TryGetValue(key, out var ordinal))
        {
            value = _values[ordinal];
            return true;
        }

        value = null;
        return false;
    }

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < _columns.Count; i++)
        {
            yield return new KeyValuePair<string, object?>(_columns[i], _values[i]);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => string.Join(", ", this.Select(p => p.Key + "=" + (p.Value ?? "NULL")));
}

/// <summary>The outcome of a statement that returned no rows (INSERT, UPDATE, DDL, …).</summary>
public sealed class QueryStatementResult : QueryOutput
{
    internal QueryStatementResult(int statementIndex, string statement, int rowsAffected, TimeSpan duration)
        : base(statementIndex)
    {
        Statement = statement;
        RowsAffected = rowsAffected;
        Duration = duration;
    }

    public string Statement { get; }

    /// <summary>Rows inserted, updated or deleted; -1 where the statement does not report a count (DDL).</summary>
    public int RowsAffected { get; }

    public TimeSpan Duration { get; }

    public override string ToString() => $"statement {StatementIndex}: {RowsAffected} row(s) affected";
}
