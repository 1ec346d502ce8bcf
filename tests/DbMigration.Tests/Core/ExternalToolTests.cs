using DbMigration.IO;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Core;

/// <summary>
/// Finding the engines' tools. Debian links /usr/bin/pg_dump and pg_restore to pg_wrapper, a Perl script that picks
/// a binary on every call; a real binary is preferred to it wherever it stands in the search order.
/// </summary>
public sealed class ExternalToolTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_real_binary_later_on_the_path_wins_over_a_link_to_pg_wrapper()
    {
        var wrapperBin = WrapperLink("dbm-test-restore");
        var realBin = Directory.CreateDirectory(_dir.File("real")).FullName;
        File.WriteAllText(Path.Combine(realBin, "dbm-test-restore"), "#!/bin/sh\n");

        var found = ExternalTool.FindOn(wrapperBin + Path.PathSeparator + realBin, "dbm-test-restore");

        Assert.Equal(Path.Combine(realBin, "dbm-test-restore"), found);
    }

    [Fact]
    public void A_link_to_pg_wrapper_is_still_used_when_nothing_else_is_installed()
    {
        var wrapperBin = WrapperLink("dbm-test-dump");

        Assert.Equal(Path.Combine(wrapperBin, "dbm-test-dump"), ExternalTool.FindOn(wrapperBin, "dbm-test-dump"));
    }

    [Fact]
    public void Without_the_tool_anywhere_nothing_is_found()
    {
        Assert.Null(ExternalTool.FindOn(_dir.Path, "dbm-test-no-such-tool"));
    }

    /// <summary>bin/NAME → ../share/pg_wrapper, as Debian's postgresql-common lays it out.</summary>
    private string WrapperLink(string name)
    {
        var share = Directory.CreateDirectory(_dir.File("share")).FullName;
        File.WriteAllText(Path.Combine(share, "pg_wrapper"), "#!/usr/bin/perl\n");
        var bin = Directory.CreateDirectory(_dir.File("bin")).FullName;
        File.CreateSymbolicLink(Path.Combine(bin, name), "../share/pg_wrapper");
        return bin;
    }
}
