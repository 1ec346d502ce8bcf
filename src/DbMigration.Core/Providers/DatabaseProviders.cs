using DbMigration.Errors;
using DbMigration.Providers.MySql;
using DbMigration.Providers.PostgreSql;
using DbMigration.Providers.Sqlite;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>Finds the provider for a target's engine. The one place that knows every engine.</summary>
public static class DatabaseProviders
{
    public static IDatabaseProvider For(DatabaseEngine engine) => engine switch
    {
        DatabaseEngine.Sqlite => SqliteHolder.Instance,
        DatabaseEngine.PostgreSql => PostgreSqlHolder.Instance,
        DatabaseEngine.MySql => MySqlHolder.Instance,
        _ => throw new DbMigrationException(
            ErrorIds.TargetEngineRequired,
            ErrorKind.InvalidArgument,
            "The target's engine is unknown. A raw connection string needs -Engine Sqlite, PostgreSql or MySql."),
    };

    public static IDatabaseProvider For(DatabaseTarget target) => For(target.Engine);

    // One holder per engine, so a server-engine run never loads the native SQLite library (SqliteProvider's static
    // constructor does).
    private static class SqliteHolder
    {
        internal static readonly SqliteProvider Instance = new();
    }

    private static class PostgreSqlHolder
    {
        internal static readonly PostgreSqlProvider Instance = new();
    }

    private static class MySqlHolder
    {
        internal static readonly MySqlProvider Instance = new();
    }
}
