using DbMigration.Errors;
using DbMigration.Migrations;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Migrations;

public sealed class MigrationScriptTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string name, string text)
    {
        var path = _dir.File(name);
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("2", "10")]
    [InlineData("1.9", "1.10")]
    [InlineData("1", "1.0.1")]
    [InlineData("009", "10")]
    public void Versions_compare_numerically(string lower, string higher)
    {
        Assert.True(MigrationVersion.Parse(lower) < MigrationVersion.Parse(higher));
        Assert.Equal(MigrationVersion.Parse("2"), MigrationVersion.Parse("2.0"));
        Assert.Equal("9", MigrationVersion.Parse("009").ToString());
    }

    [Fact]
    public void Sections_dependencies_and_transaction_mode_are_read()
    {
        var script = MigrationScript.Load(Write("V2.1__add_index.sql", "-- requires: 1, 2\n-- transaction: none\n-- migrate:up\nCREATE INDEX CONCURRENTLY ix ON t (a);\n-- migrate:down\nDROP INDEX ix;\n"));

        Assert.Equal("2.1", script.Version.ToString());
        Assert.Equal("add index", script.Description);
        Assert.Equal(["1", "2"], script.Requires.Select(r => r.ToString()));
        Assert.False(script.Transactional);
        Assert.Contains("CREATE INDEX CONCURRENTLY", script.Up, StringComparison.Ordinal);
        Assert.Equal("DROP INDEX ix;", script.Down!.Trim());
    }

    [Fact]
    public void A_file_without_sections_is_all_up_and_has_no_down()
    {
        var script = MigrationScript.Load(Write("V1__init.sql", "CREATE TABLE t (id INT);\n"));
        Assert.Null(script.Down);
        Assert.True(script.Transactional);
    }

    [Fact]
    public void Line_endings_trailing_spaces_and_a_bom_do_not_change_the_checksum()
    {
        var unix = MigrationScript.Load(Write("V1__a.sql", "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\n"));
        var windows = MigrationScript.Load(Write("V2__a.sql", "\uFEFFCREATE TABLE t (id INT);   \r\nINSERT INTO t VALUES (1);\t\r\n\r\n"));
        var edited = MigrationScript.Load(Write("V3__a.sql", "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (2);\n"));

        Assert.Equal(unix.Checksum, windows.Checksum);
        Assert.NotEqual(unix.Checksum, edited.Checksum);
    }

    /// <summary>
    /// A file saved in Windows-1252 ('café' as the single byte E9) was read leniently and its é reached the database
    /// as U+FFFD, silently. UTF-16 with a byte order mark (Notepad's "Unicode") reads as what it says.
    /// </summary>
    [Fact]
    public void A_file_that_is_not_UTF8_is_refused_with_its_line_and_UTF16_with_a_bom_reads_as_written()
    {
        var legacy = _dir.File("V1__notes.sql");
        File.WriteAllBytes(legacy, [.. "CREATE TABLE notes (id INT, body TEXT);\nINSERT INTO notes VALUES (1, 'caf"u8, 0xE9, .. "');\n"u8]);
        var error = Assert.Throws<DbMigrationException>(() => MigrationScript.Load(legacy));
        Assert.Equal((ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData), (error.ErrorId, error.Kind));
        Assert.Contains("V1__notes.sql is not UTF-8 at line 2 (byte 0xE9)", error.Message, StringComparison.Ordinal);

        var unicode = _dir.File("V2__notes.sql");
        File.WriteAllText(unicode, "INSERT INTO notes VALUES (2, 'café');\n", System.Text.Encoding.Unicode);
        Assert.Contains("'café'", MigrationScript.Load(unicode).Up, StringComparison.Ordinal);
        Assert.Equal(MigrationScript.Load(Write("V3__notes.sql", "INSERT INTO notes VALUES (2, 'café');\n")).Checksum, MigrationScript.Load(unicode).Checksum);
    }

    [Fact]
    public void No_migration_file_is_skipped_silently()
    {
        // Windows tools write V2__b.SQL; it was not read on Linux, so it was never applied.
        Write("V1__a.sql", "CREATE TABLE a (id INT);");
        Write("V2__b.SQL", "CREATE TABLE b (id INT);");
        Write("v3__c.sql", "CREATE TABLE c (id INT);");
        Write("README.md", "notes");
        Write("V4__d.sql.disabled", "CREATE TABLE d (id INT);");
        Assert.Equal(["1", "2", "3"], MigrationScript.LoadFolder(_dir.Path).Select(s => s.Version.ToString()));
        var next = DbMigration.Migrations.MigrationService.NewFile(_dir.Path, "next").Path;
        Assert.Equal("V004__next.sql", Path.GetFileName(next));
        File.Delete(next);

        // One in a subfolder was skipped too: now it is refused by name.
        Directory.CreateDirectory(Path.Combine(_dir.Path, "release-2"));
        File.WriteAllText(Path.Combine(_dir.Path, "release-2", "V5__e.sql"), "CREATE TABLE e (id INT);");
        var nested = Assert.Throws<DbMigrationException>(() => MigrationScript.LoadFolder(_dir.Path));
        Assert.Equal(ErrorIds.MigrationInvalidFile, nested.ErrorId);
        Assert.Contains(Path.Combine("release-2", "V5__e.sql"), nested.Message, StringComparison.Ordinal);

        // A lower-case v with a broken name is refused like an upper-case one.
        using var other = new TempDirectory();
        File.WriteAllText(Path.Combine(other.Path, "v2_add_b.sql"), "SELECT 1;");
        Assert.Equal(ErrorIds.MigrationInvalidFile, Assert.Throws<DbMigrationException>(() => MigrationScript.LoadFolder(other.Path)).ErrorId);
    }

    [Fact]
    public void Bad_files_get_clear_errors()
    {
        Write("V1__one.sql", "SELECT 1;");
        Write("V01__again.sql", "SELECT 1;");
        var duplicate = Assert.Throws<DbMigrationException>(() => MigrationScript.LoadFolder(_dir.Path));
        Assert.Equal(ErrorIds.MigrationDuplicateVersion, duplicate.ErrorId);
        Assert.Contains("V01__again.sql", duplicate.Message, StringComparison.Ordinal);

        using var other = new TempDirectory();
        File.WriteAllText(Path.Combine(other.Path, "Vbad_name.sql"), "SELECT 1;");
        Assert.Equal(ErrorIds.MigrationInvalidFile, Assert.Throws<DbMigrationException>(() => MigrationScript.LoadFolder(other.Path)).ErrorId);

        using var empty = new TempDirectory();
        File.WriteAllText(Path.Combine(empty.Path, "V1__nothing.sql"), "-- migrate:up\n-- just a comment\n-- migrate:down\nDROP TABLE t;");
        // Listed (a fresh scaffold must not break status or undo of the others); only applying it is refused.
        var scaffold = Assert.Single(MigrationScript.LoadFolder(empty.Path));
        Assert.True(scaffold.IsEmpty);
        var refused = Assert.Throws<DbMigrationException>(scaffold.EnsureRunnable);
        Assert.Equal(ErrorIds.MigrationInvalidFile, refused.ErrorId);
        Assert.Contains("no statements", refused.Message, StringComparison.Ordinal);

        Assert.Equal(ErrorIds.MigrationFolderNotFound, Assert.Throws<DbMigrationException>(() => MigrationScript.LoadFolder(_dir.File("missing"))).ErrorId);
    }

    [Fact]
    public void New_migration_numbers_the_next_file_even_when_the_last_one_is_still_empty()
    {
        var first = MigrationService.NewFile(_dir.File("m"), "create users");
        var second = MigrationService.NewFile(_dir.File("m"), "add email!");

        Assert.Equal("1", first.Version);
        Assert.EndsWith("V001__create_users.sql", first.Path, StringComparison.Ordinal);
        Assert.Equal("2", second.Version);
        Assert.EndsWith("V002__add_email.sql", second.Path, StringComparison.Ordinal);
        Assert.Contains("-- migrate:down", File.ReadAllText(second.Path), StringComparison.Ordinal);
        Assert.EndsWith("V003__add_weird_name.sql", MigrationService.NewFile(_dir.File("m"), "add: weird / name?").Path, StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_recorded_before_definitions_were_claims_no_drift_in_them_and_white_space_is_not_drift()
    {
        var table = new DbMigration.Providers.TableSchema(new DbMigration.Providers.TableName(null, "t"),
            [new DbMigration.Providers.ColumnSchema("id", 1, "INTEGER", false, null, true)], ["id"], [], []);
        var view = new DbMigration.Providers.ObjectDefinition(DbMigration.Providers.DefinitionKind.View, "v", "v", "CREATE VIEW v AS\n  SELECT id FROM t");
        var recorded = System.Text.Json.Nodes.JsonNode.Parse(SchemaSnapshot.Capture([table], [view]))!.AsObject();
        Assert.Empty(SchemaSnapshot.Compare(recorded.ToJsonString(), [table], [view with { Definition = "CREATE VIEW v AS SELECT id FROM t" }]));
        Assert.Single(SchemaSnapshot.Compare(recorded.ToJsonString(), [table], [view with { Definition = "CREATE VIEW v AS SELECT id, 1 FROM t" }]));

        // Snapshots written before views, triggers and routines were recorded have no such list.
        var key = recorded.Select(p => p.Key).Single(k => k.StartsWith("definitions", StringComparison.OrdinalIgnoreCase));
        recorded.Remove(key);
        Assert.Empty(SchemaSnapshot.Compare(recorded.ToJsonString(), [table], [view with { Definition = "CREATE VIEW v AS SELECT id, 1 FROM t" }]));
    }
}
