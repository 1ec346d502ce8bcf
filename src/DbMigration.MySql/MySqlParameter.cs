using System.Collections;
using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace DbMigration.MySql;

/// <summary>A named input parameter, referenced in SQL as <c>@name</c>.</summary>
public sealed class MySqlParameter : DbParameter
{
    private string _name = string.Empty;

    public MySqlParameter()
    {
    }

    public MySqlParameter(string name, object? value)
    {
        ParameterName = name;
        Value = value;
    }

    public override DbType DbType { get; set; } = DbType.Object;

    /// <summary>Only input parameters exist in the text protocol.</summary>
    public override ParameterDirection Direction
    {
        get => ParameterDirection.Input;
        set
        {
            if (value != ParameterDirection.Input)
            {
                throw new NotSupportedException("MySQL text-protocol parameters are input only.");
            }
        }
    }

    public override bool IsNullable { get; set; }

    [AllowNull]
    public override string ParameterName
    {
        get => _name;
        set => _name = value ?? string.Empty;
    }

    /// <summary>The name without its @, : or ? prefix.</summary>
    internal string NormalizedName => _name.Length > 0 && _name[0] is '@' or ':' or '?' ? _name[1..] : _name;

    public override int Size { get; set; }

    [AllowNull]
    public override string SourceColumn { get; set; } = string.Empty;

    public override bool SourceColumnNullMapping { get; set; }

    public override object? Value { get; set; }

    public override void ResetDbType() => DbType = DbType.Object;
}

/// <summary>The parameters of a <see cref="MySqlCommand"/>.</summary>
public sealed class MySqlParameterCollection : DbParameterCollection
{
    private readonly List<MySqlParameter> _items = [];

    public override int Count => _items.Count;

    public override object SyncRoot => _items;

    public MySqlParameter Add(string name, object? value)
    {
        var parameter = new MySqlParameter(name, value);
        _items.Add(parameter);
        return parameter;
    }

    public MySqlParameter AddWithValue(string name, object? value) => Add(name, value);

    public override int Add(object value)
    {
        _items.Add(Cast(value));
        return _items.Count - 1;
    }

    public override void AddRange(Array values)
    {
        foreach (var value in values)
        {
            Add(value!);
        }
    }

    public override void Clear() => _items.Clear();

    public override bool Contains(object value) => value is MySqlParameter p && _items.Contains(p);

    public override bool Contains(string value) => IndexOf(value) >= 0;

    public override void CopyTo(Array array, int index) => ((ICollection)_items).CopyTo(array, index);

    public override IEnumerator GetEnumerator() => _items.GetEnumerator();

    public override int IndexOf(object value) => value is MySqlParameter p ? _items.IndexOf(p) : -1;

    public override int IndexOf(string parameterName)
    {
        var name = Normalize(parameterName);
        return _items.FindIndex(p => string.Equals(p.NormalizedName, name, StringComparison.OrdinalIgnoreCase));
    }

    public override void Insert(int index, object value) => _items.Insert(index, Cast(value));

    public override void Remove(object value) => _items.Remove(Cast(value));

    public override void RemoveAt(int index) => _items.RemoveAt(index);

    public override void RemoveAt(string parameterName) => _items.RemoveAt(IndexOf(parameterName));

    protected override DbParameter GetParameter(int index) => _items[index];

    protected override DbParameter GetParameter(string parameterName) =>
        IndexOf(parameterName) is var i and >= 0 ? _items[i] : throw new ArgumentException($"No parameter named '{parameterName}'.", nameof(parameterName));

    protected override void SetParameter(int index, DbParameter value) => _items[index] = Cast(value);

    protected override void SetParameter(string parameterName, DbParameter value) => _items[IndexOf(parameterName)] = Cast(value);

    /// <summary>
    /// A name index for one substitution, or null for a few parameters, where a scan is cheaper. Multi-row batches
    /// bind thousands, and a scan per name made substitution quadratic. The first parameter of a name wins, as in
    /// <see cref="TryFind"/>.
    /// </summary>
    internal Dictionary<string, MySqlParameter>? IndexByName()
    {
        if (_items.Count < 16)
        {
            return null;
        }

        var index = new Dictionary<string, MySqlParameter>(_items.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var item in _items)
        {
            index.TryAdd(item.NormalizedName, item);
        }

        return index;
    }

    internal bool TryFind(ReadOnlySpan<char> name, [NotNullWhen(true)] out MySqlParameter? parameter)
    {
        foreach (var item in _items)
        {
            if (name.Equals(item.NormalizedName, StringComparison.OrdinalIgnoreCase))
            {
                parameter = item;
                return true;
            }
        }

        parameter = null;
        return false;
    }

    private static string Normalize(string name) => name.Length > 0 && name[0] is '@' or ':' or '?' ? name[1..] : name;

    private static MySqlParameter Cast(object value) =>
        value as MySqlParameter ?? throw new InvalidCastException($"Expected a MySqlParameter, got {value?.GetType().Name ?? "null"}.");
}
