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
    public void PostgreSql_BEGIN_ATOMIC_bodies_and_rule_actions_in_parentheses_stay_whole()
    {
        const string sql = """
            CREATE FUNCTION latest() RETURNS timestamp LANGUAGE sql
            BEGIN ATOMIC
                SELECT CASE WHEN count(*) = 0 THEN NULL ELSE max(at) END FROM events;
            END;
            CREATE OR REPLACE PROCEDURE touch(n int) LANGUAGE sql BEGIN ATOMIC UPDATE events SET at = now() WHERE id = n; INSERT INTO log VALUES (n); END;
            CREATE RULE log_insert AS ON INSERT TO v DO INSTEAD (INSERT INTO a VALUES (new.id); INSERT INTO b VALUES (new.id));
            CREATE FUNCTION plain() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
            SELECT plain();
            """;
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.PostgreSql);
        Assert.Equal(5, statements.Count);
        Assert.EndsWith("END", statements[0].Text, StringComparison.Ordinal);
        Assert.StartsWith("CREATE OR REPLACE PROCEDURE", statements[1].Text, StringComparison.Ordinal);
        Assert.EndsWith("INSERT INTO log VALUES (n); END", statements[1].Text, StringComparison.Ordinal);
        Assert.EndsWith("INSERT INTO b VALUES (new.id))", statements[2].Text, StringComparison.Ordinal);
        Assert.Equal("SELECT plain()", statements[4].Text);
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

    [Fact]
    public void MySql_DELIMITER_lines_change_the_terminator_and_are_not_sent()
    {
        var sql = """
            CREATE TABLE t (id INT);
            DELIMITER $$
            CREATE PROCEDURE bump(IN x INT)
            BEGIN
              UPDATE t SET id = id + x;
              SELECT 'a$$b;' AS s;
            END$$
            delimiter ;
            INSERT INTO t VALUES (1);
            DELIMITER //
            CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2 //
            DELIMITER ;
            """;
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.MySql);

        Assert.Equal(["CREATE TABLE", "CREATE PROCEDURE", "INSERT INTO", "CREATE FUNCTION"], statements.Select(s => s.Text[..s.Text.IndexOf(' ', s.Text.IndexOf(' ') + 1)]));
        Assert.EndsWith("END", statements[1].Text, StringComparison.Ordinal);
        Assert.Contains("SELECT 'a$$b;' AS s;", statements[1].Text, StringComparison.Ordinal);
        Assert.Equal(3, statements[1].Line);
        Assert.Equal(9, statements[2].Line);
        Assert.EndsWith("x * 2", statements[3].Text, StringComparison.Ordinal);
        Assert.DoesNotContain(statements, s => s.Text.Contains("DELIMITER", StringComparison.OrdinalIgnoreCase));

        // Elsewhere DELIMITER is just a word.
        Assert.Single(SqlScriptSplitter.Split("DELIMITER $$\nSELECT 1$$", DatabaseEngine.PostgreSql));
    }

    [Fact]
    public void MySql_compound_bodies_without_DELIMITER_stay_whole_through_END_IF_and_END_CASE()
    {
        var sql = """
            CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW
            BEGIN
              SET NEW.n = COALESCE(NEW.n, 0) + 1;
              IF NEW.n > 100 THEN SET NEW.n = 100; END IF;
              CASE WHEN NEW.n < 0 THEN SET NEW.n = 0; ELSE BEGIN END; END CASE;
              WHILE NEW.n > 50 DO SET NEW.n = NEW.n - 1; END WHILE;
              SET NEW.label = CASE WHEN NEW.n > 10 THEN 'big' ELSE 'small' END;
            END;
            CREATE OR REPLACE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END;
            CREATE TABLE event (id INT, `begin` INT);
            SELECT 3;
            """;
        var statements = SqlScriptSplitter.Split(sql, DatabaseEngine.MySql);

        Assert.Equal(4, statements.Count);
        Assert.StartsWith("CREATE TRIGGER", statements[0].Text, StringComparison.Ordinal);
        Assert.EndsWith("'small' END;\nEND", statements[0].Text.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Equal("CREATE OR REPLACE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", statements[1].Text);
        Assert.Equal("SELECT 3", statements[3].Text);
    }

    [Theory]
    [InlineData("BEGIN", "BEGIN")]
    [InlineData("begin transaction", "BEGIN")]
    [InlineData("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN")]
    [InlineData("BEGIN IMMEDIATE", "BEGIN")]
    [InlineData("-- save it\nCOMMIT", "COMMIT")]
    [InlineData("/* done */ end transaction", "END")]
    [InlineData("START TRANSACTION READ WRITE", "START TRANSACTION")]
    [InlineData("ROLLBACK", "ROLLBACK")]
    [InlineData("ROLLBACK WORK", "ROLLBACK")]
    [InlineData("ABORT", "ABORT")]
    [InlineData("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION")]
    [InlineData("ROLLBACK TO SAVEPOINT before_fill", null)]
    [InlineData("ROLLBACK TRANSACTION TO before_fill", null)]
    [InlineData("SAVEPOINT before_fill", null)]
    [InlineData("RELEASE before_fill", null)]
    [InlineData("PREPARE q AS SELECT 1", null)]
    [InlineData("DO $$ BEGIN PERFORM 1; END $$", null)]
    [InlineData("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", null)]
    [InlineData("ENDORSE_ALL()", null)]
    [InlineData("INSERT INTO log (note) VALUES ('COMMIT')", null)]
    public void Transaction_control_statements_are_recognised(string sql, string? keyword)
    {
        Assert.Equal(keyword, TransactionControl.Keyword(sql));
    }

    [Theory]
    [InlineData("ALTER TABLE items ADD COLUMN note text", "ALTER")]
    [InlineData("-- index\ncreate index ix on items (name)", "CREATE")]
    [InlineData("DROP TABLE items", "DROP")]
    [InlineData("TRUNCATE items", "TRUNCATE")]
    [InlineData("RENAME TABLE a TO b", "RENAME")]
    [InlineData("GRANT SELECT ON shop.* TO app", "GRANT")]
    [InlineData("LOCK TABLES items WRITE", "LOCK")]
    [InlineData("SET PASSWORD FOR app = PASSWORD('x')", "SET PASSWORD")]
    [InlineData("SET autocommit = 1", "SET autocommit")]
    [InlineData("SET SESSION autocommit = 1", "SET autocommit")]
    [InlineData("CREATE TEMPORARY TABLE scratch (id int)", null)]
    [InlineData("DROP TEMPORARY TABLE scratch", null)]
    [InlineData("INSERT INTO items VALUES (1, 'CREATE')", null)]
    [InlineData("UPDATE items SET name = 'x'", null)]
    [InlineData("SET @total = 0", null)]
    [InlineData("SET NAMES utf8mb4", null)]
    public void Statements_MySql_commits_at_once_are_recognised(string sql, string? keyword)
    {
        Assert.Equal(keyword, TransactionControl.MySqlImplicitCommit(sql));
    }

    [Theory]
    [InlineData("COPY public.gadgets (id, name) FROM stdin", DatabaseEngine.PostgreSql, "COPY")]
    [InlineData("-- Data for gadgets\ncopy gadgets from STDIN with (format text)", DatabaseEngine.PostgreSql, "COPY")]
    [InlineData("\\connect shop", DatabaseEngine.PostgreSql, "psql meta-command")]
    [InlineData("SOURCE /srv/seed.sql", DatabaseEngine.MySql, "mysql client command")]
    [InlineData("COPY gadgets TO STDOUT", DatabaseEngine.PostgreSql, null)]
    [InlineData("COPY gadgets FROM '/srv/gadgets.csv'", DatabaseEngine.PostgreSql, null)]
    [InlineData("SELECT 'COPY x FROM stdin'", DatabaseEngine.PostgreSql, null)]
    [InlineData("SOURCE /srv/seed.sql", DatabaseEngine.PostgreSql, null)]
    [InlineData("INSERT INTO sources (name) VALUES ('x')", DatabaseEngine.MySql, null)]
    public void A_command_line_clients_own_syntax_is_recognised(string sql, DatabaseEngine engine, string? named)
    {
        var why = ClientSyntax.Describe(sql, engine);
        if (named is null)
        {
            Assert.Null(why);
        }
        else
        {
            Assert.Contains(named, why, StringComparison.Ordinal);
        }
    }
}
