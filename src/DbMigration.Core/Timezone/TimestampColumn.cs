using DbMigration.Providers;

namespace DbMigration.Timezone;

/// <summary>
/// A column to convert, and how rows are addressed (its table's single-column key, SQLite's rowid, or on PostgreSQL
/// the text of a primary key of several columns, <see cref="KeyColumns"/>). Whether it may hold NULL and whether an
/// index leads with it decide how cheaply it can be counted and its range read.
/// </summary>
internal sealed record TimestampColumn(TableName Table, string Column, string DataType, bool Typed, string Key, bool IntegerKey, string Reason, string? Default = null, bool Nullable = true, bool Indexed = false, string[]? KeyColumns = null)
{
    public string Name => $"{Table}.{Column}";
}
