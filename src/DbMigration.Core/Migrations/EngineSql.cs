using System.Globalization;
using DbMigration.Targets;

namespace DbMigration.Migrations;

/// <summary>The few type names and values DbMigration's own tables need per engine.</summary>
internal static class EngineSql
{
    /// <summary>A UTC timestamp: timestamptz, DATETIME(6) written from UTC sessions, or ISO-8601 text with Z.</summary>
    public static string Timestamp(DatabaseEngine engine) => engine switch
    {
        DatabaseEngine.PostgreSql => "timestamptz",
        DatabaseEngine.MySql => "DATETIME(6)",
        _ => "TEXT",
    };

    public static string Identity(DatabaseEngine engine) => engine switch
    {
        DatabaseEngine.PostgreSql => "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        DatabaseEngine.MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
    };

    public static string LongText(DatabaseEngine engine) => engine == DatabaseEngine.MySql ? "LONGTEXT" : "TEXT";

    public static object Time(DatabaseEngine engine, DateTimeOffset value) => engine switch
    {
        DatabaseEngine.Sqlite => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
        _ => DateTime.SpecifyKind(value.UtcDateTime, DateTimeKind.Utc),
    };
}
