using DbMigration.Errors;
using DbMigration.Providers.MySql;
using DbMigration.Providers.PostgreSql;
using DbMigration.Providers.Sqlite;
using DbMigration.Targets;

namespace DbMigration.Providers;

/// <summary>Finds the provider for a target's engine. The one place that knows every engine.</summary>
public static class DatabaseProviders
{
    private static bool _postgreSqlUsed;
    private static bool _mySqlUsed;

    public static IDatabaseProvider For(DatabaseEngine engine) => engine switch
    {
        DatabaseEngine.Sqlite => SqliteHolder.Instance,
        DatabaseEngine.PostgreSql => Used(ref _postgreSqlUsed, PostgreSqlHolder.Instance),
        DatabaseEngine.MySql => Used(ref _mySqlUsed, MySqlHolder.Instance),
        _ => throw new DbMigrationException(
            ErrorIds.TargetEngineRequired,
            ErrorKind.InvalidArgument,
            "The target's engine is unknown. A raw connection string needs -Engine Sqlite, PostgreSql or MySql."),
    };

    public static IDatabaseProvider For(DatabaseTarget target) => For(target.Engine);

    /// <summary>
    /// Closes the idle pooled connections of every server engine this process has used (a connection in use is
    /// closed when it is returned). Called when a cmdlet ends: an idle session left behind would stop a DROP
    /// DATABASE and show as another session to the DBA, long after the cmdlet returned.
    /// </summary>
    public static void ReleaseIdleConnections()
    {
        if (Volatile.Read(ref _postgreSqlUsed))
        {
            PostgreSqlHolder.Instance.ReleaseAllPooledConnections();
        }

        if (Volatile.Read(ref _mySqlUsed))
        {
            MySqlHolder.Instance.ReleaseAllPooledConnections();
        }
    }

    private static IDatabaseProvider Used(ref bool flag, IDatabaseProvider provider)
    {
        Volatile.Write(ref flag, true);
        return provider;
    }

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
