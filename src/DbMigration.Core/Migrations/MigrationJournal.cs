using System.Data.Common;
using System.Globalization;
using DbMigration.Providers;
using DbMigration.Providers.PostgreSql;
using DbMigration.Targets;

namespace DbMigration.Migrations;

/// <summary>One version's current state in dbmigration_history.</summary>
internal sealed record JournalEntry
{
    public required string Version { get; init; }

    public required string SortKey { get; init; }

    public required string Description { get; init; }

    public required string Script { get; init; }

    public required string Checksum { get; init; }

    public required string ChecksumAlgorithm { get; init; }

    /// <summary>applied, failed, rolled_back or baseline.</summary>
    public required string Status { get; init; }

    public required string AppliedBy { get; init; }

    public required string Host { get; init; }

    public required DateTimeOffset StartedUtc { get; init; }

    public DateTimeOffset? FinishedUtc { get; init; }

    public long? ExecutionMs { get; init; }

    public string? Error { get; init; }

    public string? FailedStatement { get; init; }

    public string? BackupId { get; init; }
}

/// <summary>
/// The journal: dbmigration_history (current state per version), dbmigration_history_events (append-only log),
/// dbmigration_schema_snapshot (schema after each run, for drift checks) and dbmigration_lock (who migrates).
/// Every timestamp is UTC: timestamptz on PostgreSQL, DATETIME(6) written from UTC sessions on MySQL, ISO-8601
/// with Z on SQLite.
/// </summary>
internal sealed class MigrationJournal(IDatabaseProvider provider)
{
    public const string History = "dbmigration_history";
    public const string Events = "dbmigration_history_events";
    public const string Snapshots = "dbmigration_schema_snapshot";
    public const string Lock = "dbmigration_lock";
    public const string Prefix = "dbmigration_";

    public static bool IsJournalTable(string name) => name.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    private DatabaseEngine Engine => provider.Engine;

    private string Timestamp => EngineSql.Timestamp(Engine);

    private string Identity => EngineSql.Identity(Engine);

    private string LongText => EngineSql.LongText(Engine);

    public async Task<bool> ExistsAsync(DbConnection connection, CancellationToken cancellationToken) =>
        (await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false)).Any(t => t.Name.Name == History);

    public async Task EnsureAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var statements = new[]
        {
            $"""
            CREATE TABLE IF NOT EXISTS {History} (
                version VARCHAR(64) NOT NULL PRIMARY KEY,
                sort_key VARCHAR(200) NOT NULL,
                description VARCHAR(255) NOT NULL,
                script VARCHAR(255) NOT NULL,
                checksum VARCHAR(80) NOT NULL,
                checksum_algorithm VARCHAR(20) NOT NULL,
                status VARCHAR(20) NOT NULL,
                applied_by VARCHAR(128) NOT NULL,
                host VARCHAR(128) NOT NULL,
                started_utc {Timestamp} NOT NULL,
                finished_utc {Timestamp} NULL,
                execution_ms BIGINT NULL,
                error {LongText} NULL,
                failed_statement {LongText} NULL,
                backup_id VARCHAR(64) NULL)
            """,
            $"""
            CREATE TABLE IF NOT EXISTS {Events} (
                id {Identity},
                version VARCHAR(64) NOT NULL,
                event VARCHAR(32) NOT NULL,
                status VARCHAR(20) NOT NULL,
                occurred_utc {Timestamp} NOT NULL,
                applied_by VARCHAR(128) NOT NULL,
                host VARCHAR(128) NOT NULL,
                checksum VARCHAR(80) NULL,
                backup_id VARCHAR(64) NULL,
                detail {LongText} NULL)
            """,
            $"""
            CREATE TABLE IF NOT EXISTS {Snapshots} (
                id {Identity},
                version VARCHAR(64) NOT NULL,
                captured_utc {Timestamp} NOT NULL,
                schema_json {LongText} NOT NULL)
            """,
            $"""
            CREATE TABLE IF NOT EXISTS {Lock} (
                id INTEGER NOT NULL PRIMARY KEY,
                owner VARCHAR(128) NOT NULL,
                host VARCHAR(128) NOT NULL,
                pid INTEGER NOT NULL,
                acquired_utc {Timestamp} NOT NULL,
                heartbeat_utc {Timestamp} NOT NULL)
            """,
        };
        foreach (var sql in statements)
        {
            await connection.ExecuteAsync(sql, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// PostgreSQL: the journal belongs to the role that migrated first, and another role that may not write to it
    /// would fail at its first journal write. Null when the connecting role may write to every journal table.
    /// </summary>
    public async Task<string?> WriteProblemAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        if (Engine != DatabaseEngine.PostgreSql)
        {
            return null;
        }

        return await UnwritableTables.FindAsync(connection, [History, Events, Snapshots, Lock], cancellationToken).ConfigureAwait(false) is { } unwritable
            ? $"The migration journal ({string.Join(", ", unwritable.Tables)}) was created by {unwritable.Owner}, who migrated this database first, and {unwritable.User} may not write to it. Nothing was migrated. As {unwritable.Owner}: {unwritable.Grant}; or migrate as {unwritable.Owner}."
            : null;
    }

    public async Task<IReadOnlyList<JournalEntry>> ReadAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var entries = new List<JournalEntry>();
        await using var command = connection.CreateCommand($"SELECT version, sort_key, description, script, checksum, checksum_algorithm, status, applied_by, host, started_utc, finished_utc, execution_ms, error, failed_statement, backup_id FROM {History} ORDER BY sort_key");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(new JournalEntry
            {
                Version = reader.GetString(0),
                SortKey = reader.GetString(1),
                Description = reader.GetString(2),
                Script = reader.GetString(3),
                Checksum = reader.GetString(4),
                ChecksumAlgorithm = reader.GetString(5),
                Status = reader.GetString(6),
                AppliedBy = reader.GetString(7),
                Host = reader.GetString(8),
                StartedUtc = ReadTime(reader.GetValue(9))!.Value,
                FinishedUtc = ReadTime(reader.GetValue(10)),
                ExecutionMs = reader.IsDBNull(11) ? null : Convert.ToInt64(reader.GetValue(11), CultureInfo.InvariantCulture),
                Error = reader.IsDBNull(12) ? null : reader.GetString(12),
                FailedStatement = reader.IsDBNull(13) ? null : reader.GetString(13),
                BackupId = reader.IsDBNull(14) ? null : reader.GetString(14),
            });
        }

        return entries;
    }

    /// <summary>Replaces a version's row and appends the matching event, in the caller's transaction when there is one.</summary>
    public async Task RecordAsync(DbConnection connection, DbTransaction? transaction, JournalEntry entry, string eventName, string? detail, CancellationToken cancellationToken)
    {
        await using (var delete = connection.CreateCommand($"DELETE FROM {History} WHERE version = @version", transaction).AddParameter("@version", entry.Version))
        {
            await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var insert = connection.CreateCommand(
            $"INSERT INTO {History} (version, sort_key, description, script, checksum, checksum_algorithm, status, applied_by, host, started_utc, finished_utc, execution_ms, error, failed_statement, backup_id) " +
            "VALUES (@version, @sortKey, @description, @script, @checksum, @algorithm, @status, @appliedBy, @host, @started, @finished, @ms, @error, @statement, @backup)", transaction))
        {
            insert.AddParameter("@version", entry.Version)
                .AddParameter("@sortKey", entry.SortKey)
                .AddParameter("@description", entry.Description)
                .AddParameter("@script", entry.Script)
                .AddParameter("@checksum", entry.Checksum)
                .AddParameter("@algorithm", entry.ChecksumAlgorithm)
                .AddParameter("@status", entry.Status)
                .AddParameter("@appliedBy", entry.AppliedBy)
                .AddParameter("@host", entry.Host)
                .AddParameter("@started", WriteTime(entry.StartedUtc))
                .AddParameter("@finished", entry.FinishedUtc is null ? null : WriteTime(entry.FinishedUtc.Value))
                .AddParameter("@ms", entry.ExecutionMs)
                .AddParameter("@error", entry.Error)
                .AddParameter("@statement", entry.FailedStatement)
                .AddParameter("@backup", entry.BackupId);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await AddEventAsync(connection, transaction, entry.Version, eventName, entry.Status, entry.Checksum, entry.BackupId, detail, cancellationToken).ConfigureAwait(false);
    }

    public async Task AddEventAsync(DbConnection connection, DbTransaction? transaction, string version, string eventName, string status, string? checksum, string? backupId, string? detail, CancellationToken cancellationToken)
    {
        await using var insert = connection.CreateCommand(
            $"INSERT INTO {Events} (version, event, status, occurred_utc, applied_by, host, checksum, backup_id, detail) VALUES (@version, @event, @status, @at, @by, @host, @checksum, @backup, @detail)", transaction);
        insert.AddParameter("@version", version)
            .AddParameter("@event", eventName)
            .AddParameter("@status", status)
            .AddParameter("@at", WriteTime(DateTimeOffset.UtcNow))
            .AddParameter("@by", Actor.User)
            .AddParameter("@host", Actor.Host)
            .AddParameter("@checksum", checksum)
            .AddParameter("@backup", backupId)
            .AddParameter("@detail", detail);
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task SaveSnapshotAsync(DbConnection connection, string version, string json, CancellationToken cancellationToken)
    {
        await using var insert = connection.CreateCommand($"INSERT INTO {Snapshots} (version, captured_utc, schema_json) VALUES (@version, @at, @json)");
        insert.AddParameter("@version", version).AddParameter("@at", WriteTime(DateTimeOffset.UtcNow)).AddParameter("@json", json);
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<(string Version, string Json)?> LatestSnapshotAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand($"SELECT version, schema_json FROM {Snapshots} ORDER BY id DESC");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? (reader.GetString(0), reader.GetString(1)) : null;
    }

    public object WriteTime(DateTimeOffset value) => EngineSql.Time(Engine, value);

    public static DateTimeOffset? ReadTime(object value) => value switch
    {
        DBNull or null => null,
        DateTimeOffset dto => dto.ToUniversalTime(),
        DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
        string text => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
        _ => throw new InvalidCastException($"Unexpected timestamp value {value.GetType().Name}."),
    };
}

/// <summary>Who is doing this, for the journal and the lock row.</summary>
internal static class Actor
{
    public static string User => Environment.UserName;

    public static string Host => Environment.MachineName;

    public static int ProcessId => Environment.ProcessId;
}
