using System.Globalization;
using System.Text;

namespace DbMigration.Bench.Data;

/// <summary>The events table's DDL per engine, and CSV output for bulk loaders.</summary>
public static class EventsSchema
{
    public const string TableName = "events";
    public const string IndexName = "ix_events_created_at";

    public static readonly string[] Columns = ["id", "device_id", "event_type", "location", "created_at", "updated_at", "amount", "event_uuid", "note"];

    public const string Sqlite = """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL,
            event_type TEXT NOT NULL,
            location TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT,
            amount NUMERIC(12,2) NOT NULL,
            event_uuid TEXT NOT NULL,
            note TEXT
        );
        """;

    public const string PostgreSql = """
        CREATE TABLE events (
            id bigint PRIMARY KEY,
            device_id integer NOT NULL,
            event_type varchar(16) NOT NULL,
            location varchar(24) NOT NULL,
            created_at text NOT NULL,
            updated_at text,
            amount numeric(12,2) NOT NULL,
            event_uuid text NOT NULL,
            note text
        );
        """;

    public const string MariaDb = """
        CREATE TABLE events (
            id BIGINT PRIMARY KEY,
            device_id INT NOT NULL,
            event_type VARCHAR(16) NOT NULL,
            location VARCHAR(24) NOT NULL,
            created_at VARCHAR(32) NOT NULL,
            updated_at VARCHAR(32),
            amount DECIMAL(12,2) NOT NULL,
            event_uuid CHAR(36) NOT NULL,
            note VARCHAR(255)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
        """;

    public const string CreateIndex = "CREATE INDEX ix_events_created_at ON events (created_at);";

    /// <summary>One CSV line (no quoting needed: the generator never emits commas, quotes or newlines).</summary>
    public static void AppendCsv(StringBuilder sb, EventRow row)
    {
        sb.Append(row.Id.ToString(CultureInfo.InvariantCulture)).Append(',')
          .Append(row.DeviceId.ToString(CultureInfo.InvariantCulture)).Append(',')
          .Append(row.EventType).Append(',')
          .Append(row.Location).Append(',')
          .Append(row.CreatedAt).Append(',')
          .Append(row.UpdatedAt).Append(',')
          .Append(row.Amount.ToString("0.00", CultureInfo.InvariantCulture)).Append(',')
          .Append(row.EventUuid).Append(',')
          .Append(row.Note).Append('\n');
    }

    public static async Task WriteCsvAsync(string path, IEnumerable<EventRow> rows, CancellationToken cancellationToken = default)
    {
        await using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false), 1 << 20);
        var sb = new StringBuilder(256);
        foreach (var row in rows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            sb.Clear();
            AppendCsv(sb, row);
            await writer.WriteAsync(sb, cancellationToken).ConfigureAwait(false);
        }
    }
}
