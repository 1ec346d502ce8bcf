using System.Globalization;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>What an engine can do. Plans consult this instead of asking "is it MySQL?".</summary>
/// <param name="TransactionalDdl">CREATE/ALTER/DROP roll back with the transaction.</param>
/// <param name="NativeUuid">The engine has a native UUID column type.</param>
/// <param name="NativeTimestampTz">The engine has a time-zone-aware timestamp type.</param>
/// <param name="ServerLocks">Locks are held by the server (advisory locks), not by a file.</param>
/// <param name="MultipleDatabases">One server hosts several databases (scratch restores create one).</param>
public sealed record ProviderCapabilities(
    bool TransactionalDdl,
    bool NativeUuid,
    bool NativeTimestampTz,
    bool ServerLocks,
    bool MultipleDatabases);

/// <summary>The server (or library) we are talking to.</summary>
public sealed record ServerInfo(DatabaseEngine Engine, string Product, string VersionText, Version Version)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Product} {VersionText}");
}

/// <summary>A table, schema-qualified where the engine has schemas.</summary>
public sealed record TableName(string? Schema, string Name)
{
    public override string ToString() => Schema is null ? Name : Schema + "." + Name;
}

/// <summary>A column as the engine declares it. <see cref="IsGenerated"/>: the engine computes its values.</summary>
public sealed record ColumnSchema(
    string Name,
    int Ordinal,
    string DataType,
    bool IsNullable,
    string? DefaultExpression,
    bool IsPrimaryKey,
    bool IsGenerated = false);

public sealed record IndexSchema(string Name, IReadOnlyList<string> Columns, bool IsUnique, bool IsPrimaryKey);

public sealed record ForeignKeySchema(
    string Name,
    IReadOnlyList<string> Columns,
    TableName ReferencedTable,
    IReadOnlyList<string> ReferencedColumns);

/// <summary>One table's structure.</summary>
public sealed record TableSchema(
    TableName Name,
    IReadOnlyList<ColumnSchema> Columns,
    IReadOnlyList<string> PrimaryKey,
    IReadOnlyList<IndexSchema> Indexes,
    IReadOnlyList<ForeignKeySchema> ForeignKeys);

public enum DefinitionKind
{
    View,
    Trigger,
    Routine,
}

/// <summary>A view, trigger or routine and its definition as the engine prints it, for drift detection.</summary>
/// <param name="Table">The table a trigger is on; the object's own name for views and routines.</param>
public sealed record ObjectDefinition(DefinitionKind Kind, string Name, string Table, string Definition);

/// <summary>Another connection to the same database, as the engine reports it.</summary>
/// <param name="Id">Process id, connection id, or a description where the engine has none.</param>
/// <param name="InTransaction">The session holds an open transaction (or a write lock), which blocks DDL.</param>
public sealed record SessionInfo(string Id, string? User, string? Application, string? ClientAddress, string State, bool InTransaction, DateTimeOffset? TransactionStart)
{
    public override string ToString()
    {
        var parts = new List<string> { Id };
        if (!string.IsNullOrEmpty(User))
        {
            parts.Add("user " + User);
        }

        if (!string.IsNullOrEmpty(Application))
        {
            parts.Add("app '" + Application + "'");
        }

        if (!string.IsNullOrEmpty(ClientAddress))
        {
            parts.Add("from " + ClientAddress);
        }

        parts.Add(State);
        return string.Join(", ", parts);
    }
}

public enum IntegrityOutcome
{
    Passed,
    Failed,
    NotAvailable,
}

/// <summary>The engine's own integrity check.</summary>
public sealed record IntegrityReport(IntegrityOutcome Outcome, string Method, string Message, IReadOnlyList<string> Problems);

/// <summary>Something the provider noticed without connecting (a hot journal, for instance).</summary>
public sealed record ProviderFinding(bool IsProblem, string Message);
