using DbMigration.Backups;
using DbMigration.Bench.Data;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;
using Microsoft.Data.Sqlite;

namespace DbMigration.Tests.Backups;

/// <summary>Killing the process mid-backup or mid-restore must leave the catalog clean and the database whole.</summary>
public sealed class SqliteKillTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Fingerprint(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check; ";
        Assert.Equal("ok", command.ExecuteScalar());
        command.CommandText = "SELECT COUNT(*) || ':' || COALESCE(SUM(id), 0) || ':' || COALESCE(SUM(LENGTH(note)), 0) FROM events";
        return (string)command.ExecuteScalar()!;
    }

    [Fact]
    public async Task A_backup_killed_midway_never_appears_in_the_catalog()
    {
        var database = _dir.File("events.db");
        await EventsLoader.LoadSqliteAsync(database, new EventsDataGenerator().Generate(300_000));
        var repository = _dir.File("backups");

        await using (var host = TestHostProcess.Start(null, "backup", database, repository))
        {
            Assert.Equal("STARTED", await host.NextLineAsync(TimeSpan.FromSeconds(60)));
            var partial = Path.Combine(repository, "events");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(Directory.Exists(partial) && Directory.EnumerateDirectories(partial, ".partial-*").Any()) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.False(host.HasExited, "the backup finished before it could be killed");
            host.Kill();
            await host.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Empty(new BackupRepository(repository).List());
        var next = await new BackupService().CreateAsync(new BackupRequest { Source = DatabaseTarget.FromFile(database), Path = repository }, null, CancellationToken.None);
        Assert.Equal(next.Id, Assert.Single(new BackupRepository(repository).List()).Id);
    }

    [Fact]
    public async Task A_restore_killed_midway_leaves_the_database_whole()
    {
        var database = _dir.File("events.db");
        // Big enough that verifying the restored copy (between the scratch file appearing and the swap) outlasts
        // the poll below on a busy machine.
        await EventsLoader.LoadSqliteAsync(database, new EventsDataGenerator().Generate(1_000_000));
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = DatabaseTarget.FromFile(database), Path = _dir.File("backups") }, null, CancellationToken.None);
        var backedUp = Fingerprint(database);
        using (var connection = new SqliteConnection($"Data Source={database};Pooling=False"))
        {
            connection.Open();
            using var change = connection.CreateCommand();
            change.CommandText = "DELETE FROM events WHERE id % 2 = 0; UPDATE events SET note = 'changed';";
            change.ExecuteNonQuery();
        }

        var changed = Fingerprint(database);
        // The restores' temp folder is the test's own, to see what the killed one leaves there.
        var temp = _dir.File("tmp");
        Directory.CreateDirectory(temp);
        var environment = new Dictionary<string, string> { ["TMPDIR"] = temp };
        await using (var host = TestHostProcess.StartWith(environment, "restore", database, backup.Path))
        {
            Assert.Equal("STARTED", await host.NextLineAsync(TimeSpan.FromSeconds(60)));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Directory.EnumerateFiles(_dir.Path, "*.dbm-restore-*").Any() && !host.HasExited && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(1);
            }

            host.Kill();
            await host.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        // Killed before the swap: the changed original, untouched. After it: the complete backup. Never a mix.
        var after = Fingerprint(database);
        Assert.True(after == changed || after == backedUp, $"the database is neither the original ({changed}) nor the backup ({backedUp}): {after}");
        Assert.Equal(changed, after);

        // The killed run left its copy beside the database. Running the same emergency rollback again must work,
        // and clear it away. A SQLite restore writes nothing to the temp folder.
        Assert.NotEmpty(Directory.EnumerateFiles(_dir.Path, "*.dbm-restore-*"));
        await using (var again = TestHostProcess.StartWith(environment, "restore", database, backup.Path))
        {
            Assert.Equal("STARTED", await again.NextLineAsync(TimeSpan.FromSeconds(60)));
            Assert.True(await again.LastLineAsync(TimeSpan.FromSeconds(120)) == "DONE", "the second restore failed: " + again.Errors);
        }

        Assert.Equal(backedUp, Fingerprint(database));
        // (The .NET runtime keeps its diagnostic pipes there too.)
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp, "dbm-*"));
        Assert.Empty(Directory.EnumerateFiles(_dir.Path, "*.dbm-restore-*"));
    }

    /// <summary>
    /// A verification killed mid-way leaves the backup it expanded (decrypted, for an encrypted backup) in the temp
    /// folder, where it cannot remove it. The next verification does.
    /// </summary>
    [Fact]
    public async Task What_a_killed_verification_left_in_the_temp_folder_goes_with_the_next_one()
    {
        var database = _dir.File("events.db");
        await EventsLoader.LoadSqliteAsync(database, new EventsDataGenerator().Generate(1_000_000));
        var backup = await new BackupService().CreateAsync(new BackupRequest { Source = DatabaseTarget.FromFile(database), Path = _dir.File("backups"), Compression = BackupCompression.Small }, null, CancellationToken.None);
        var temp = _dir.File("tmp");
        Directory.CreateDirectory(temp);
        var environment = new Dictionary<string, string> { ["TMPDIR"] = temp };

        string? left = null;
        await using (var host = TestHostProcess.StartWith(environment, "verify", backup.Path))
        {
            Assert.Equal("STARTED", await host.NextLineAsync(TimeSpan.FromSeconds(60)));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (left is null && !host.HasExited && DateTime.UtcNow < deadline)
            {
                left = Directory.EnumerateDirectories(temp, "dbm-verify-*").FirstOrDefault(d => Expanded(d).Any());
                await Task.Delay(1);
            }

            Assert.False(host.HasExited, "the verification finished before it could be killed");
            host.Kill();
            await host.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.NotNull(left);
        Assert.NotEmpty(Expanded(left));

        await using (var again = TestHostProcess.StartWith(environment, "verify", backup.Path))
        {
            Assert.Equal("STARTED", await again.NextLineAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal("Passed", await again.NextLineAsync(TimeSpan.FromSeconds(120)));
        }

        Assert.False(Directory.Exists(left));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp, "dbm-*"));
    }

    /// <summary>What a verification expanded into its temp folder: every file but the owner lock.</summary>
    private static IEnumerable<string> Expanded(string folder) =>
        Directory.Exists(folder) ? Directory.EnumerateFiles(folder).Where(f => Path.GetFileName(f) != TempWorkFolder.OwnerFileName) : [];
}
