using DbMigration.Backups;

namespace DbMigration.Tests.Backups;

/// <summary>Reading the database's own settings out of pg_restore's --create script (PostgreSQL 15's layout).</summary>
public sealed class PostgreSqlDatabaseSettingsTests
{
    private const string Script = """
        \restrict abc
        SET statement_timeout = 0;
        CREATE DATABASE "shop db" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';
        ALTER DATABASE "shop db" OWNER TO app;
        \unrestrict abc
        \connect -reuse-previous=on "dbname='shop db'"
        COMMENT ON DATABASE "shop db" IS 'line one;
        ALTER DATABASE "shop db" SET work_mem TO ''1MB''';
        ALTER DATABASE "shop db" SET search_path TO 'app', 'public';
        ALTER ROLE "odd role" IN DATABASE "shop db" SET statement_timeout TO '5s';
        \connect -reuse-previous=on "dbname='shop db'"
        CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
        ALTER DATABASE "shop db" SET work_mem TO '2MB';
        END $$;
        ALTER FUNCTION public.f() OWNER TO app;
        ALTER DATABASE "shop db other" SET work_mem TO '3MB';
        REVOKE CONNECT,TEMPORARY ON DATABASE "shop db" FROM PUBLIC;
        GRANT CONNECT ON DATABASE "shop db" TO reader;
        GRANT SELECT ON TABLE public.t TO reader;
        """;

    [Fact]
    public void The_database_statements_are_taken_out_and_everything_inside_the_database_is_left()
    {
        var (source, owner, settings, objects) = PostgreSqlDatabaseSettings.Split(Script);

        Assert.Equal("\"shop db\"", source);
        Assert.Equal("ALTER DATABASE \"shop db\" OWNER TO app", owner);
        Assert.Equal(
        [
            "COMMENT ON DATABASE \"shop db\" IS 'line one;\nALTER DATABASE \"shop db\" SET work_mem TO ''1MB'''",
            "ALTER DATABASE \"shop db\" SET search_path TO 'app', 'public'",
            "ALTER ROLE \"odd role\" IN DATABASE \"shop db\" SET statement_timeout TO '5s'",
            "REVOKE CONNECT,TEMPORARY ON DATABASE \"shop db\" FROM PUBLIC",
            "GRANT CONNECT ON DATABASE \"shop db\" TO reader",
        ], settings);

        // The function's body and a look-alike database name stay with the objects; CREATE DATABASE and its owner go.
        Assert.Contains("SET work_mem TO '2MB';\nEND $$;", objects, StringComparison.Ordinal);
        Assert.Contains("ALTER DATABASE \"shop db other\" SET work_mem TO '3MB';", objects, StringComparison.Ordinal);
        Assert.Contains("GRANT SELECT ON TABLE public.t TO reader;", objects, StringComparison.Ordinal);
        Assert.Contains("ALTER FUNCTION public.f() OWNER TO app;", objects, StringComparison.Ordinal);
        Assert.DoesNotContain("CREATE DATABASE", objects, StringComparison.Ordinal);
        Assert.DoesNotContain("OWNER TO app;\n\\", objects, StringComparison.Ordinal);
        Assert.DoesNotContain("\\connect", objects, StringComparison.Ordinal);
    }

    [Fact]
    public void Renaming_changes_only_the_database_the_statement_is_about()
    {
        var renamed = PostgreSqlDatabaseSettings.Rename(
            ["COMMENT ON DATABASE shop IS 'DATABASE shop of shops'", "ALTER ROLE shop IN DATABASE shop SET work_mem TO '1MB'", "GRANT CONNECT ON DATABASE shop TO shop"],
            "shop", "\"shop 2\"");

        Assert.Equal(
        [
            "COMMENT ON DATABASE \"shop 2\" IS 'DATABASE shop of shops'",
            "ALTER ROLE shop IN DATABASE \"shop 2\" SET work_mem TO '1MB'",
            "GRANT CONNECT ON DATABASE \"shop 2\" TO shop",
        ], renamed);
    }

    [Fact]
    public void A_script_without_create_database_has_no_settings()
    {
        var (source, owner, settings, objects) = PostgreSqlDatabaseSettings.Split("CREATE TABLE t (i int);\n");

        Assert.Empty(settings);
        Assert.Null(source);
        Assert.Null(owner);
        Assert.Equal("CREATE TABLE t (i int);\n", objects);
    }
}
