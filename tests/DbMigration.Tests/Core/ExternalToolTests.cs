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

    /// <summary>
    /// The mariadb client echoes the statement it failed on: with a 20 MB row, the error (and the log, and the
    /// process's memory) held the whole statement. The first and last lines are kept, each cut to a readable length.
    /// </summary>
    [Fact]
    public async Task A_failing_tools_error_keeps_its_first_and_last_lines_at_a_readable_size()
    {
        const string script = "echo 'mariadb: first line' >&2; head -c 5000000 /dev/zero | tr '\\0' x >&2; echo >&2; for i in $(seq 1 200); do echo \"line $i\" >&2; done; echo 'ERROR 2006 (HY000) at line 38: Server has gone away' >&2; exit 1";
        var error = await Assert.ThrowsAsync<DbMigration.Errors.DbMigrationException>(() =>
            ExternalTool.RunAsync("bash", ["-c", script], new Dictionary<string, string?>(), null, null, CancellationToken.None));

        Assert.Equal(DbMigration.Errors.ErrorIds.BackupToolFailed, error.ErrorId);
        Assert.StartsWith("bash exited with code 1: mariadb: first line", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("ERROR 2006 (HY000) at line 38: Server has gone away", error.Message, StringComparison.Ordinal);
        Assert.Contains("more characters)", error.Message, StringComparison.Ordinal);
        Assert.Contains("more lines)", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 60_000, $"the message is {error.Message.Length:N0} characters");
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
