using System.Text.Json;
using DbMigration.Providers;

namespace DbMigration.Migrations;

/// <summary>The schema recorded after a migration run, compared with the live schema by Test-MigrationDrift.</summary>
internal static class SchemaSnapshot
{
    /// <param name="Definitions">Views, triggers and routines; null in snapshots recorded before they were.</param>
    private sealed record Snapshot(List<SnapshotTable> Tables, List<SnapshotDefinition>? Definitions = null);

    private sealed record SnapshotDefinition(string Kind, string Table, string Name, string Definition);

    private sealed record SnapshotTable(string Name, List<SnapshotColumn> Columns, List<SnapshotIndex> Indexes, List<SnapshotForeignKey> ForeignKeys);

    private sealed record SnapshotColumn(string Name, string Type, bool Nullable, string? Default);

    private sealed record SnapshotIndex(string Name, string Columns, bool Unique);

    private sealed record SnapshotForeignKey(string Name, string Columns, string References);

    public static string Capture(IReadOnlyList<TableSchema> tables, IReadOnlyList<ObjectDefinition> definitions) =>
        JsonSerializer.Serialize(ToSnapshot(tables, definitions), Backups.BackupManifest.Options);

    private static Snapshot ToSnapshot(IReadOnlyList<TableSchema> tables, IReadOnlyList<ObjectDefinition> definitions) => new(tables
        .Where(t => !MigrationJournal.IsJournalTable(t.Name.Name))
        .OrderBy(t => t.Name.ToString(), StringComparer.Ordinal)
        .Select(t => new SnapshotTable(
            t.Name.ToString(),
            t.Columns.Select(c => new SnapshotColumn(c.Name, c.DataType, c.IsNullable, c.DefaultExpression)).ToList(),
            t.Indexes.Select(i => new SnapshotIndex(i.Name, string.Join(", ", i.Columns), i.IsUnique)).OrderBy(i => i.Name, StringComparer.Ordinal).ToList(),
            t.ForeignKeys.Select(f => new SnapshotForeignKey(f.Name, string.Join(", ", f.Columns), $"{f.ReferencedTable}({string.Join(", ", f.ReferencedColumns)})")).OrderBy(f => f.Name, StringComparer.Ordinal).ToList()))
        .ToList(),
        definitions
            .Select(d => new SnapshotDefinition(d.Kind.ToString(), d.Table, d.Name, Collapse(d.Definition)))
            .OrderBy(d => d.Kind, StringComparer.Ordinal).ThenBy(d => d.Table, StringComparer.Ordinal).ThenBy(d => d.Name, StringComparer.Ordinal)
            .ToList());

    /// <summary>One space for each run of white space: line endings and indentation are not drift.</summary>
    private static string Collapse(string definition) =>
        string.Join(' ', definition.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    public static IReadOnlyList<SchemaDifference> Compare(string recordedJson, IReadOnlyList<TableSchema> live, IReadOnlyList<ObjectDefinition> liveDefinitions)
    {
        var recorded = JsonSerializer.Deserialize<Snapshot>(recordedJson, Backups.BackupManifest.Options)!;
        var current = ToSnapshot(live, liveDefinitions);
        var differences = new List<SchemaDifference>();
        var before = recorded.Tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var after = current.Tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var name in before.Keys.Except(after.Keys))
        {
            differences.Add(new SchemaDifference(DifferenceKind.Removed, SchemaObjectType.Table, name, name, "table", null));
        }

        foreach (var name in after.Keys.Except(before.Keys))
        {
            differences.Add(new SchemaDifference(DifferenceKind.Added, SchemaObjectType.Table, name, name, null, "table"));
        }

        foreach (var name in before.Keys.Intersect(after.Keys))
        {
            Diff(differences, SchemaObjectType.Column, name, before[name].Columns, after[name].Columns, c => c.Name, c => $"{c.Type}{(c.Nullable ? " NULL" : " NOT NULL")}{(c.Default is null ? string.Empty : " DEFAULT " + c.Default)}");
            Diff(differences, SchemaObjectType.Index, name, before[name].Indexes, after[name].Indexes, i => i.Name, i => (i.Unique ? "UNIQUE " : string.Empty) + "(" + i.Columns + ")");
            Diff(differences, SchemaObjectType.ForeignKey, name, before[name].ForeignKeys, after[name].ForeignKeys, f => f.Name, f => $"({f.Columns}) -> {f.References}");
        }

        // A snapshot from before definitions were recorded says nothing about them: no drift is claimed.
        if (recorded.Definitions is not null)
        {
            var old = recorded.Definitions.ToLookup(d => (d.Kind, d.Table));
            var now = current.Definitions!.ToLookup(d => (d.Kind, d.Table));
            foreach (var (kind, table) in old.Select(g => g.Key).Union(now.Select(g => g.Key)).OrderBy(k => Enum.Parse<SchemaObjectType>(k.Kind)).ThenBy(k => k.Table, StringComparer.Ordinal))
            {
                Diff(differences, Enum.Parse<SchemaObjectType>(kind), table, old[(kind, table)].ToList(), now[(kind, table)].ToList(), d => d.Name, d => d.Definition);
            }
        }

        return differences;
    }

    private static void Diff<T>(List<SchemaDifference> differences, SchemaObjectType type, string table, List<T> before, List<T> after, Func<T, string> key, Func<T, string> describe)
    {
        var old = before.ToDictionary(key, describe, StringComparer.Ordinal);
        var now = after.ToDictionary(key, describe, StringComparer.Ordinal);
        foreach (var (name, description) in old)
        {
            if (!now.TryGetValue(name, out var current))
            {
                differences.Add(new SchemaDifference(DifferenceKind.Removed, type, table, name, description, null));
            }
            else if (current != description)
            {
                differences.Add(new SchemaDifference(DifferenceKind.Changed, type, table, name, description, current));
            }
        }

        foreach (var (name, description) in now.Where(n => !old.ContainsKey(n.Key)))
        {
            differences.Add(new SchemaDifference(DifferenceKind.Added, type, table, name, null, description));
        }
    }
}
