using DbMigration.Backups;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Backups;

/// <summary>
/// The temp folders restores and verifications extract backups into: what a killed run left (a whole database, a
/// decrypted one for an encrypted backup) goes with the next run; a live run's folder stays.
/// </summary>
public sealed class TempWorkFolderTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public void Dispose() => _root.Dispose();

    /// <summary>A folder as a process leaves it when it dies mid-run: the owner file there, its lock gone with it.</summary>
    private string LeftByKilledRun(string kind)
    {
        var folder = _root.File(kind + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, TempWorkFolder.OwnerFileName), string.Empty);
        File.WriteAllText(Path.Combine(folder, "snapshot.raw"), "the decrypted database");
        return folder;
    }

    [Theory]
    [InlineData("dbm-restore-")]
    [InlineData("dbm-verify-")]
    [InlineData("dbm-toc-")]
    public void A_killed_runs_folder_is_removed_by_the_next_one(string kind)
    {
        var abandoned = LeftByKilledRun(kind);

        using var next = TempWorkFolder.Create("dbm-verify-", _root.Path);

        Assert.False(Directory.Exists(abandoned));
        Assert.True(Directory.Exists(next.Path));
    }

    [Fact]
    public void A_live_runs_folder_is_kept_and_goes_when_it_is_done()
    {
        var live = TempWorkFolder.Create("dbm-restore-", _root.Path);
        File.WriteAllText(Path.Combine(live.Path, "snapshot.raw"), "in use");

        using (TempWorkFolder.Create("dbm-restore-", _root.Path))
        {
            Assert.Equal(0, TempWorkFolder.RemoveAbandoned(_root.Path));
        }

        Assert.True(File.Exists(Path.Combine(live.Path, "snapshot.raw")));
        live.Dispose();
        Assert.False(Directory.Exists(live.Path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root.Path));
    }

    [Fact]
    public void A_folder_without_its_owner_file_is_kept_for_an_hour()
    {
        var young = _root.File("dbm-restore-" + Guid.NewGuid().ToString("N"));
        var old = _root.File("dbm-verify-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(young);
        Directory.CreateDirectory(old);
        Directory.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddHours(-2));

        Assert.Equal(1, TempWorkFolder.RemoveAbandoned(_root.Path));

        Assert.True(Directory.Exists(young));
        Assert.False(Directory.Exists(old));
    }

    [Fact]
    public void Other_folders_in_the_temp_folder_are_never_touched()
    {
        var other = _root.File("dbm-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, TempWorkFolder.OwnerFileName), string.Empty);
        Directory.SetLastWriteTimeUtc(other, DateTime.UtcNow.AddDays(-2));

        Assert.Equal(0, TempWorkFolder.RemoveAbandoned(_root.Path));
        Assert.True(Directory.Exists(other));
    }

    [Fact]
    public void The_folder_is_the_owners_alone()
    {
        using var folder = TempWorkFolder.Create("dbm-toc-", _root.Path);

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder.Path));
        }

        Assert.Throws<ArgumentException>(() => TempWorkFolder.Create("dbm-anything-", _root.Path));
    }
}
