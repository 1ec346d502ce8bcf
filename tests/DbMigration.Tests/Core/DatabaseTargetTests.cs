using DbMigration.Errors;
using DbMigration.Targets;

namespace DbMigration.Tests.Core;

public sealed class DatabaseTargetTests
{
    [Fact]
    public void A_plain_path_is_a_sqlite_file_resolved_against_the_given_location()
    {
        var target = DatabaseTarget.Parse("database/events.db");

        Assert.Equal(DatabaseEngine.Sqlite, target.Engine);
        Assert.Equal("database/events.db", target.FilePath);
        Assert.Equal("events", target.Name);
        Assert.Equal(Path.GetFullPath("/srv/app/database/events.db"), target.ResolveFilePath(p => Path.GetFullPath(Path.Combine("/srv/app", p))).FilePath);
    }

    [Fact]
    public void Only_a_sqlite_file_goes_through_the_path_resolver()
    {
        static string Resolve(string path) => "/resolved/" + path.TrimStart('~', '/');

        Assert.Equal("/resolved/app.db", DatabaseTarget.Parse("~/app.db").ResolveFilePath(Resolve).FilePath);
        var raw = DatabaseTarget.FromConnectionString(DatabaseEngine.Sqlite, "Data Source=app.db;Mode=ReadWrite").ResolveFilePath(Resolve);
        Assert.Equal("/resolved/app.db", raw.FilePath);
        Assert.Contains("/resolved/app.db", raw.RawConnectionString, StringComparison.Ordinal);
        Assert.Equal(":memory:", DatabaseTarget.Parse(":memory:").ResolveFilePath(Resolve).FilePath);
        var server = DatabaseTarget.Parse("postgres://app@db1/shop");
        Assert.Same(server, server.ResolveFilePath(_ => throw new InvalidOperationException("a server target has no file")));
    }

    [Theory]
    [InlineData("sqlite:///var/data/x.db", "/var/data/x.db")]
    [InlineData("sqlite:data/x.db", "data/x.db")]
    [InlineData("sqlite://data/my%20file.db", "data/my file.db")]
    [InlineData("SQLITE:///C:/data/x.db", "C:/data/x.db")]
    public void Sqlite_uris_name_a_file(string text, string expected)
    {
        var target = DatabaseTarget.Parse(text);
        Assert.Equal(DatabaseEngine.Sqlite, target.Engine);
        Assert.Equal(expected, target.FilePath);
    }

    [Theory]
    [InlineData("postgres://app:s3cr%40t@db1.example:6543/shop?sslmode=require", DatabaseEngine.PostgreSql, false)]
    [InlineData("postgresql://app:s3cr%40t@db1.example:6543/shop?sslmode=require", DatabaseEngine.PostgreSql, false)]
    [InlineData("mysql://app:s3cr%40t@db1.example:6543/shop?sslmode=require", DatabaseEngine.MySql, false)]
    [InlineData("mariadb://app:s3cr%40t@db1.example:6543/shop?sslmode=require", DatabaseEngine.MySql, true)]
    public void Server_uris_carry_every_part_and_keep_the_password_private(string text, DatabaseEngine engine, bool mariaDb)
    {
        var target = DatabaseTarget.Parse(text);

        Assert.Equal(engine, target.Engine);
        Assert.Equal(mariaDb, target.IsMariaDbHint);
        Assert.Equal("db1.example", target.Host);
        Assert.Equal(6543, target.Port);
        Assert.Equal("shop", target.Database);
        Assert.Equal("app", target.UserName);
        Assert.Equal("require", target.Options["sslmode"]);
        Assert.Equal("s3cr@t", target.ResolvePassword());
        Assert.True(target.HasExplicitPassword);
        Assert.DoesNotContain("s3cr", target.ToString(), StringComparison.Ordinal);
        Assert.Contains("app@db1.example:6543/shop", target.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_in_the_query_string_is_taken_out_of_the_options()
    {
        var target = DatabaseTarget.Parse("postgres://app@h/db?password=hunter2&sslmode=disable");

        Assert.Equal("hunter2", target.ResolvePassword());
        Assert.False(target.Options.ContainsKey("password"));
        Assert.DoesNotContain("hunter2", target.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void IPv6_hosts_parse_and_print_in_brackets()
    {
        var target = DatabaseTarget.Parse("postgres://u@[::1]:5433/db");

        Assert.Equal("::1", target.Host);
        Assert.Equal("postgres://u@[::1]:5433/db", target.ToString());
    }

    [Fact]
    public void A_raw_connection_string_needs_an_engine_and_then_exposes_its_parts()
    {
        var raw = DatabaseTarget.Parse("Host=db1;Port=5544;Database=shop;Username=app;Password=topsecret");
        Assert.Equal(DatabaseEngine.Unknown, raw.Engine);
        Assert.DoesNotContain("topsecret", raw.ToString(), StringComparison.Ordinal);

        var target = raw.WithEngine(DatabaseEngine.PostgreSql);
        Assert.Equal(DatabaseEngine.PostgreSql, target.Engine);
        Assert.Equal("db1", target.Host);
        Assert.Equal(5544, target.Port);
        Assert.Equal("shop", target.Database);
        Assert.Equal("app", target.UserName);
        Assert.Equal("topsecret", target.ResolvePassword());
        Assert.DoesNotContain("topsecret", target.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_credential_overrides_the_uri_password()
    {
        var target = DatabaseTarget.Parse("postgres://app:old@h/db").WithCredential("admin", "new-password");

        Assert.Equal("admin", target.UserName);
        Assert.Equal("new-password", target.ResolvePassword());
        Assert.DoesNotContain("new-password", target.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_can_come_from_a_named_environment_variable()
    {
        var variable = "DBM_TEST_PW_" + Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable(variable, "from-env");
        try
        {
            var target = DatabaseTarget.Parse($"postgres://app@h/db?passwordEnv={variable}");
            Assert.Equal("from-env", target.ResolvePassword());
            Assert.False(target.HasExplicitPassword);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void A_missing_password_variable_is_a_clear_error()
    {
        var ex = Assert.Throws<DbMigrationException>(() => DatabaseTarget.Parse("postgres://app@h/db?passwordEnv=DBM_NOT_SET_ANYWHERE").ResolvePassword());
        Assert.Equal(ErrorIds.TargetInvalid, ex.ErrorId);
        Assert.Contains("DBM_NOT_SET_ANYWHERE", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", ErrorIds.TargetInvalid)]
    [InlineData("   ", ErrorIds.TargetInvalid)]
    [InlineData("oracle://u@h/db", ErrorIds.TargetUnsupportedScheme)]
    [InlineData("postgres://u:pw@h", ErrorIds.TargetInvalid)]
    [InlineData("postgres://u:pw@h/db?sslmode=require&sslmode=disable", ErrorIds.TargetInvalid)]
    public void Bad_targets_get_a_stable_error_id(string text, string errorId)
    {
        var ex = Assert.Throws<DbMigrationException>(() => DatabaseTarget.Parse(text));
        Assert.Equal(errorId, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.DoesNotContain(":pw@", ex.Message + ex.Target, StringComparison.Ordinal);
    }

    [Fact]
    public void The_engine_of_a_path_cannot_be_contradicted()
    {
        var ex = Assert.Throws<DbMigrationException>(() => DatabaseTarget.Parse("x.db").WithEngine(DatabaseEngine.PostgreSql));
        Assert.Equal(ErrorIds.TargetInvalid, ex.ErrorId);
    }

    [Fact]
    public void PowerShell_can_convert_strings_because_a_public_static_Parse_exists()
    {
        var parse = typeof(DatabaseTarget).GetMethod("Parse", [typeof(string)]);
        Assert.NotNull(parse);
        Assert.True(parse!.IsStatic && parse.IsPublic);
        Assert.Equal(typeof(DatabaseTarget), parse.ReturnType);
    }

    [Fact]
    public void Connection_string_redaction_masks_every_password_key()
    {
        var redacted = DatabaseTarget.RedactConnectionString("Server=h;Uid=u;Pwd=abc123;Database=d");
        Assert.DoesNotContain("abc123", redacted, StringComparison.Ordinal);
        Assert.Contains("********", redacted, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://app@localhost/shop", "postgres://ops:pw@127.0.0.1:5432/shop?sslmode=disable", true)]
    [InlineData("postgres://localhost/shop", "postgresql://[::1]/shop", true)]
    [InlineData("mysql://db1/shop", "mariadb://DB1:3306/shop", true)]
    [InlineData("postgres://db1/shop", "postgres://db2/shop", false)]
    [InlineData("postgres://db1/shop", "postgres://db1:5433/shop", false)]
    [InlineData("postgres://db1/shop", "mysql://db1/shop", false)]
    [InlineData("/srv/prod/app.db", "/srv/staging/app.db", false)]
    [InlineData("/srv/prod/app.db", "/srv/prod/../prod/app.db", true)]
    [InlineData("mysql://root@localhost/shop?socket=%2Frun%2Fmysqld%2Fa.sock", "mysql://ops@localhost/shop?socket=%2Frun%2Fmysqld%2Fa.sock", true)]
    [InlineData("mysql://root@localhost/shop?socket=%2Frun%2Fmysqld%2Fa.sock", "mysql://root@localhost/shop?socket=%2Frun%2Fmysqld%2Fb.sock", false)]
    [InlineData("postgres://postgres@/shop?host=%2Fvar%2Frun%2Fpostgresql&port=5433", "postgres://localhost:5433/shop", true)]
    public void Identity_tells_same_named_databases_apart_and_ignores_the_user_and_options(string a, string b, bool same)
    {
        Assert.Equal(same, DatabaseTarget.Parse(a).Identity == DatabaseTarget.Parse(b).Identity);
    }

    [Fact]
    public void Identity_of_a_raw_connection_string_matches_its_URI()
    {
        var raw = DatabaseTarget.Parse("Host=db1;Port=5432;Database=shop;Username=app;Password=secret").WithEngine(DatabaseEngine.PostgreSql);
        Assert.Equal(DatabaseTarget.Parse("postgres://db1/shop").Identity, raw.Identity);
        Assert.DoesNotContain("secret", raw.Identity, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://ops@/shop?host=%2Fvar%2Frun%2Fpostgresql", "ops", "/var/run/postgresql", null)]
    [InlineData("postgresql:///shop?host=/srv/pg&port=5433&sslmode=disable", null, "/srv/pg", 5433)]
    [InlineData("postgres://ops@db1/shop?port=6543", "ops", "db1", 6543)]
    public void A_PostgreSQL_URI_takes_libpqs_host_and_port_options_and_its_socket_form(string text, string? user, string host, int? port)
    {
        var target = DatabaseTarget.Parse(text);
        Assert.Equal(user, target.UserName);
        Assert.Equal(host, target.Host);
        Assert.Equal(port, target.Port);
        Assert.Equal("shop", target.Database);
        Assert.False(target.Options.ContainsKey("host"));
        Assert.False(target.Options.ContainsKey("port"));

        // Shown in the socket form, which reads back the same; a local socket is this machine.
        var shown = target.ToString();
        Assert.Equal(target.Identity, DatabaseTarget.Parse(shown).Identity);
        Assert.Equal(host, DatabaseTarget.Parse(shown).Host);
        if (host.StartsWith('/'))
        {
            Assert.Matches(@"^postgres://([^@/]+@)?/shop\?host=", shown);
            Assert.Equal(DatabaseTarget.Parse($"postgres://localhost:{port ?? 5432}/shop").Identity, target.Identity);
        }
    }

    [Fact]
    public void A_PostgreSQL_URI_without_a_host_needs_a_socket_where_libpq_looks()
    {
        // No server listens on this port here, so no socket exists for it.
        var error = Assert.Throws<DbMigrationException>(() => DatabaseTarget.Parse("postgres:///shop?port=1"));
        Assert.Equal(ErrorIds.TargetInvalid, error.ErrorId);
        Assert.Contains("?host=/path", error.Message, StringComparison.Ordinal);
    }
}
