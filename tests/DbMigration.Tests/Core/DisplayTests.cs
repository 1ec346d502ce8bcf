using DbMigration.Backups;
using DbMigration.Timezone;

namespace DbMigration.Tests.Core;

/// <summary>What Format-List shows for objects nested in results: a readable line, not the record's member dump.</summary>
public sealed class DisplayTests
{
    [Fact]
    public void Backup_parts_read_as_one_line_each()
    {
        Assert.Equal("database.sqlite (40.0 KiB, primary)", new BackupFile("database.sqlite", 40_960, "ab", "primary").ToString());
        Assert.Equal("events: 1000 row(s)", new TableSnapshot("events", 1000, "cd").ToString());
        Assert.Equal("NotVerified", new BackupVerificationState(VerificationStatus.NotVerified, null, null).ToString());
        var at = new DateTimeOffset(2026, 12, 7, 0, 37, 30, TimeSpan.Zero);
        Assert.Equal("Passed (2026-12-07 00:37:30Z)", new BackupVerificationState(VerificationStatus.Passed, at, "all checks passed").ToString());
        Assert.Equal("Failed (2026-12-07 00:37:30Z): checksum mismatch", new BackupVerificationState(VerificationStatus.Failed, at, "checksum mismatch").ToString());
        Assert.Equal("ok: database.pgdump: 7706 bytes, SHA-256 matches.", new BackupCheck("Checksum database.pgdump", true, "database.pgdump: 7706 bytes, SHA-256 matches.").ToString());
        Assert.Equal("FAILED: 2 of 3 tables differ.", new BackupCheck("Content", false, "2 of 3 tables differ.").ToString());
    }

    [Fact]
    public void A_timezone_validation_reads_as_its_verdict_and_first_failure()
    {
        Assert.Equal("Passed (2 checks, 5 values sampled)", new TimezoneValidation(true, ["ok: a", "ok: b"], 5).ToString());
        Assert.Equal("FAILED: at: 3 row(s), as before", new TimezoneValidation(false, ["ok: a", "FAILED: at: 3 row(s), as before", "FAILED: other"], 5).ToString());
    }
}
