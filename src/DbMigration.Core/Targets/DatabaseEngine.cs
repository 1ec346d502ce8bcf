namespace DbMigration.Targets;

/// <summary>The database engines DbMigration speaks to.</summary>
public enum DatabaseEngine
{
    /// <summary>Not known yet: a raw connection string given without <c>-Engine</c>.</summary>
    Unknown = 0,
    Sqlite,
    PostgreSql,
    MySql,
}
