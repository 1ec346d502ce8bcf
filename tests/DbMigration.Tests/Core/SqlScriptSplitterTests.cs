using DbMigration.Sql;
using DbMigration.Targets;

namespace DbMigration.Tests.Core;

public sealed class SqlScriptSplitterTests
{
    [Fact]
    public void Splits_at_top_level_semicolons_and_records_lines()
    {
        var statements = SqlScriptSplitter.Split("CREATE TABLE a (x int);\n\nINSERT INTO a VALUES (1);\n-- trailing comment\n", DatabaseEngine.Sqlite);

        Assert.Equal(2, statements.Count);
        Assert.Equal("CREATE TABLE a (x int)", statements[0].Text);
        Assert.Equal(1, statements[0].Line);
        Assert.Equal("INSERT INTO a VALUES (1)", statements[1].Text);
        Assert.Equal(3, statements[1].Line);
    }

    [Fact]
    public void Semicolons_inside_strings_identifiers_and_comments_do_not_split()
    {
        var sql = "SELECT 'a;b', \"c;d\" FROM t -- x;y\n/* p;q */ WHERE e = 'it''s;';SELECT 2";
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.PostgreSql);

        Assert.Equal(2, statements.Count);
        Assert.Equal("SELECT 2", statements[1].Text);
    }

    [Fact]
    public void PostgreSql_dollar_quotes_and_nested_comments_stay_whole()
    {
        var sql = """
            CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;
            /* outer /* inner; */ still comment; */
            SELECT $$a;b$$;
            """;
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.PostgreSql);

        Assert.Equal(2, statements.Count);
        Assert.Contains("RETURN 1; END;", statements[0].Text, StringComparison.Ordinal);
        Assert.Equal("SELECT $$a;b$$", statements[1].Text.Trim());
    }

    [Fact]
    public void Sqlite_trigger_bodies_are_one_statement()
    {
        var sql = """
            CREATE TRIGGER trg AFTER INSERT ON t BEGIN
              UPDATE t SET n = CASE WHEN n > 1 THEN 1 ELSE 0 END WHERE id = new.id;
              INSERT INTO log VALUES (new.id);
            END;
            SELECT 1;
            """;
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.Sqlite);

        Assert.Equal(2, statements.Count);
        Assert.EndsWith("END", statements[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_PostgreSql_transaction_block_splits_normally()
    {
        var statements = SqlScriptSplitter.Split("BEGIN; UPDATE t SET x = 1; COMMIT;", DatabaseEngine.PostgreSql);
        Assert.Equal(["BEGIN", "UPDATE t SET x = 1", "COMMIT"], statements.Select(s => s.Text));
    }

    [Fact]
    public void MySql_backslash_escapes_and_hash_comments_are_respected()
    {
        var statements = SqlScriptSplitter.Split("SELECT 'a\\';b'; # comment; here\nSELECT `x;y` FROM t", DatabaseEngine.MySql);
        Assert.Equal(2, statements.Count);
        Assert.Equal("SELECT 'a\\';b'", statements[0].Text);
    }

    [Fact]
    public void Only_comments_and_blanks_give_no_statements()
    {
        Assert.Empty(SqlScriptSplitter.Split("  -- nothing\n/* here */ ;; \n", DatabaseEngine.Sqlite));
    }
}
