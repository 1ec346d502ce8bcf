using DbMigration.Providers;

namespace DbMigration.Timezone;

/// <summary>A column to convert, and how rows are addressed (its table's single-column key, or SQLite's rowid).</summary>
internal sealed record TimestampColumn(TableName Table, string Column, string DataType, bool Typed, string Key, bool IntegerKey, string Reason, string? Default = null)
{
    public string Name => $"{Table}.{Column}";
}
