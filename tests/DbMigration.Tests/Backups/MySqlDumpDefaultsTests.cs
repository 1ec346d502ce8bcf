using DbMigration.Backups;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>Reading the database defaults a MariaDB dump carries at its end, and not reading them where it carries none.</summary>
public sealed class MySqlDumpDefaultsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Dump(string text)
    {
        var path = _dir.File(Guid.NewGuid().ToString("N") + ".sql");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void The_defaults_after_a_mariadb_dump_or_as_a_built_in_dumps_last_step_are_read()
    {
        var filler = string.Concat(Enumerable.Repeat("INSERT INTO t VALUES (1);\n", 400));
        Assert.Equal(("latin1", "latin1_general_cs"), MySqlLogicalDump.ReadDefaults(Dump(
            $"{filler}-- Dump completed on 2026-12-04\n\n{MySqlLogicalDump.DefaultsComment}\nALTER DATABASE CHARACTER SET latin1 COLLATE latin1_general_cs;\n")));
        Assert.Equal(("utf8mb4", "utf8mb4_bin"), MySqlLogicalDump.ReadDefaults(Dump(
            $"-- header\n{DumpScriptWriter.Marker}\nSET NAMES utf8mb4;\n{DumpScriptWriter.Marker}\nALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n")));
    }

    [Fact]
    public void A_dump_without_them_or_with_a_look_alike_line_has_none()
    {
        Assert.Null(MySqlLogicalDump.ReadDefaults(Dump("INSERT INTO t VALUES (1);\n-- Dump completed on 2026-12-04\n")));
        Assert.Null(MySqlLogicalDump.ReadDefaults(Dump("INSERT INTO t VALUES ('x\nALTER DATABASE CHARACTER SET latin1 COLLATE latin1_bin;\n")));
        Assert.Null(MySqlLogicalDump.ReadDefaults(Dump($"{MySqlLogicalDump.DefaultsComment}\nALTER DATABASE CHARACTER SET latin1 COLLATE latin1_bin; DROP TABLE t;\n")));
        Assert.Null(MySqlLogicalDump.ReadDefaults(Dump(string.Empty)));
    }
}
