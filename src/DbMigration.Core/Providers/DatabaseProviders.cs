using DbMigration.Errors;
using DbMigration.Providers.MySql;
using DbMigration.Providers.PostgreSql;
using DbMigration.Providers.Sqlite;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>Finds the provider for a target's engine. The one place that knows every engine.</summary>
public static class DatabaseProviders
{
    private static readonly SqliteProvider Sqlite = new();
    private static readonly PostgreSqlProvider PostgreSql = new();
    private static readonly MySqlProvider MySql = new();

    public static IDatabaseProvider For(DatabaseEngine engine) => engine switch
    {
        DatabaseEngine.Sqlite => Sqlite,
        DatabaseEngine.PostgreSql => PostgreSql,
        DatabaseEngine.MySql => MySql,
        _ => throw new DbMigrationException(
            ErrorIds.TargetEngineRequired,
            ErrorKind.InvalidArgument,
            "The target's engine is unknown. A raw connection string needs -Engine Sqlite, PostgreSql or MySql."),
    };

    public static IDatabaseProvider For(DatabaseTarget target) => For(target.Engine);
}
