using System.Text.Json;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Core;

/// <summary>backup.json is written by System.Text.Json and read back by DbMigration's own reader.</summary>
public sealed class BackupManifestTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static BackupInfo Full() => new()
    {
        Id = "20261205T101500123Z-a1b2c3",
        Database = "orders \"eu\"",
        Engine = DatabaseEngine.PostgreSql,
        ServerVersion = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)",
        Source = "postgres://app@db.example:5432/orders",
        CreatedUtc = new DateTimeOffset(2026, 12, 5, 10, 15, 0, 123, TimeSpan.Zero),
        Category = BackupCategory.PreMigration,
        Tags = ["release-42", "ünïcode ✓"],
        ToolVersion = "0.4.0",
        Format = "pg_dump-custom",
        Files =
        [
            new BackupFile("database.pgdump.zst.enc", 123_456_789_012, new string('a', 64), "primary"),
            new BackupFile("database.sql", 0, new string('b', 64), "sql-dump"),
        ],
        Tables = [new TableSnapshot("public.events", 1_000_000, new string('c', 64)), new TableSnapshot("Sales Q1.odd \"name\"\nx", 0, new string('d', 64))],
        Compression = BackupCompression.Fast,
        CompressionMethod = "zstd-1",
        Encryption = new BackupEncryption("AES-256-GCM", "PBKDF2-SHA256", 600_000, "c2FsdA==", "Y2hlY2s=", 1 << 20),
        DurationMs = 2367,
        Verification = new BackupVerificationState(VerificationStatus.Passed, new DateTimeOffset(2026, 12, 5, 10, 16, 1, TimeSpan.Zero), "Restored and verified 2 table(s).", new string('e', 64)),
    };

    private static string Json(BackupInfo info) => JsonSerializer.Serialize(info, BackupManifest.Options);

    private string WriteText(string json)
    {
        var folder = Directory.CreateDirectory(_dir.File(Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(folder, BackupManifest.FileName), json);
        return folder;
    }

    [Fact]
    public void Every_field_written_reads_back_as_it_was()
    {
        var folder = Directory.CreateDirectory(_dir.File("full")).FullName;
        var written = Full();
        BackupManifest.Write(folder, written);

        var read = BackupManifest.Read(folder);

        Assert.Equal(folder, read.Path);
        Assert.Equal(Json(written), Json(read));
        Assert.Equal(written.Files, read.Files);
        Assert.Equal(written.Tables, read.Tables);
        Assert.Equal(written.Tags, read.Tags);
        Assert.Equal(written.Encryption, read.Encryption);
        Assert.Equal(written.Verification, read.Verification);
    }

    [Fact]
    public void An_older_manifest_without_the_optional_fields_reads_with_their_defaults()
    {
        var folder = WriteText("""
            {
              "id": "20250101T000000000Z-000001", "database": "events", "engine": "Sqlite", "serverVersion": "3.40.0",
              "source": "events.db", "createdUtc": "2025-01-01T00:00:00+00:00", "category": "Daily", "toolVersion": "0.1.0",
              "format": "sqlite-backup-api", "files": [], "tables": [], "compression": "Small", "durationMs": 12
            }
            """);

        var read = BackupManifest.Read(folder);

        Assert.Empty(read.Tags);
        Assert.Null(read.CompressionMethod);
        Assert.Null(read.Encryption);
        Assert.Equal(VerificationStatus.NotVerified, read.Verification.Status);
        Assert.Null(read.Verification.VerifiedUtc);
        Assert.Equal(BackupCompression.Small, read.Compression);
        Assert.Equal(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), read.CreatedUtc);
    }

    [Fact]
    public void Unknown_properties_are_skipped_and_enums_read_in_any_case_or_by_number()
    {
        var json = Json(Full())
            .Replace("\"engine\": \"PostgreSql\"", "\"engine\": \"postgresql\", \"addedLater\": {\"nested\": [1, {\"x\": null}]}", StringComparison.Ordinal)
            .Replace("\"category\": \"PreMigration\"", "\"category\": 4", StringComparison.Ordinal);
        Assert.Contains("addedLater", json, StringComparison.Ordinal);

        var read = BackupManifest.Read(WriteText("\uFEFF" + json));

        Assert.Equal(DatabaseEngine.PostgreSql, read.Engine);
        Assert.Equal(BackupCategory.PreMigration, read.Category);
        Assert.Equal(Json(Full()), Json(read));
    }

    [Theory]
    [InlineData("\"id\": \"20261205T101500123Z-a1b2c3\",", "", "no 'id'")]
    [InlineData("\"size\": 0,", "\"size\": \"0\",", "'files[].size' must be a whole number")]
    [InlineData("\"category\": \"PreMigration\"", "\"category\": \"Hourly\"", "'category' is not one of Manual, Daily, Weekly, Monthly, PreMigration")]
    [InlineData("\"createdUtc\": \"2026-12-05T10:15:00.123+00:00\"", "\"createdUtc\": \"yesterday\"", "'createdUtc' must be an ISO-8601 time")]
    [InlineData("\"iterations\": 600000", "\"iterations\": 6000000000", "'encryption.iterations' is out of range")]
    [InlineData("\"tables\": [", "\"tables\": {\"x\": [", "'tables' must be an array")]
    public void A_damaged_manifest_is_reported_as_corrupt_naming_what_is_wrong(string find, string replace, string expected)
    {
        var json = Json(Full());
        Assert.Contains(find, json, StringComparison.Ordinal);

        var ex = Assert.Throws<DbMigrationException>(() => BackupManifest.Read(WriteText(json.Replace(find, replace, StringComparison.Ordinal))));

        Assert.Equal(ErrorIds.BackupCorrupt, ex.ErrorId);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("{\"id\": \"x\"")]
    [InlineData("{} {}")]
    [InlineData("{\"id\": \"x\",}")]
    public void Text_that_is_not_one_manifest_object_is_reported_as_corrupt(string text)
    {
        var ex = Assert.Throws<DbMigrationException>(() => BackupManifest.Read(WriteText(text)));
        Assert.Equal(ErrorIds.BackupCorrupt, ex.ErrorId);
    }

    [Fact]
    public void A_missing_manifest_is_reported_as_not_found()
    {
        var ex = Assert.Throws<DbMigrationException>(() => BackupManifest.Read(_dir.File("nowhere")));
        Assert.Equal(ErrorIds.BackupNotFound, ex.ErrorId);
    }
}
