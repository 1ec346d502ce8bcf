using System.Globalization;
using NodaTime;
using NodaTime.TimeZones;

namespace DbMigration.Bench.Data;

/// <summary>One row of the events table: about 190 bytes, timestamps as naive local text.</summary>
public sealed record EventRow(
    long Id,
    int DeviceId,
    string EventType,
    string Location,
    string CreatedAt,
    string UpdatedAt,
    decimal Amount,
    string EventUuid,
    string Note,
    DstEdge Edge);

/// <summary>Whether a row's created_at was placed on purpose in a DST gap or overlap.</summary>
public enum DstEdge
{
    None,
    Gap,
    Overlap,
}

/// <summary>
/// Deterministic V_Track-style events (see the V_Track timezone guide): a bigint key, a device id, two short
/// texts, two naive local timestamps stored as text, a decimal, a UUID stored as text and a note. Every
/// <see cref="EdgeInterval"/>-th row puts created_at inside a DST gap or overlap of the zone (0.1% by default);
/// every other timestamp is unambiguous in that zone.
/// </summary>
public sealed class EventsDataGenerator
{
    public const string DefaultTimeZone = "America/New_York";
    public const int EdgeInterval = 1000;
    private const string TimestampFormat = "yyyy-MM-dd HH:mm:ss";

    private static readonly string[] EventTypes = ["login", "logout", "motion", "door_open", "door_close", "alarm", "heartbeat", "upload"];
    private static readonly string[] Locations = ["warehouse-a", "warehouse-b", "front-desk", "loading-bay", "office-12", "garage", "lab-3", "roof"];
    private static readonly string[] Words = ["camera", "sensor", "battery", "ok", "retry", "signal", "north", "south", "gate", "badge", "reader", "timeout", "manual", "check", "zone", "shift"];

    private readonly DateTimeZone _zone;
    private readonly List<(LocalDateTime Start, LocalDateTime End, DstEdge Kind)> _edges;
    private readonly LocalDateTime _rangeStart = new(2019, 1, 1, 0, 0);
    private readonly int _rangeSeconds;

    public EventsDataGenerator(string timeZone = DefaultTimeZone)
    {
        _zone = DateTimeZoneProviders.Tzdb.GetZoneOrNull(timeZone) ?? throw new ArgumentException($"Unknown IANA time zone '{timeZone}'.", nameof(timeZone));
        var end = new LocalDateTime(2025, 1, 1, 0, 0);
        _rangeSeconds = (int)Period.Between(_rangeStart, end, PeriodUnits.Seconds).Seconds;
        _edges = FindEdges(_zone, _rangeStart, end);
    }

    /// <summary>The DST gaps and overlaps of the zone in the generated range, as local intervals.</summary>
    public IReadOnlyList<(LocalDateTime Start, LocalDateTime End, DstEdge Kind)> Edges => _edges;

    public DateTimeZone Zone => _zone;

    public IEnumerable<EventRow> Generate(long count, int seed = 42)
    {
        var random = new Random(seed);
        var uuidBytes = new byte[16];
        for (long id = 1; id <= count; id++)
        {
            var edge = DstEdge.None;
            LocalDateTime created;
            if (_edges.Count > 0 && id % EdgeInterval == EdgeInterval / 2)
            {
                var (start, endLocal, kind) = _edges[random.Next(_edges.Count)];
                var span = (int)Period.Between(start, endLocal, PeriodUnits.Seconds).Seconds;
                created = start.PlusSeconds(random.Next(Math.Max(1, span)));
                edge = kind;
            }
            else
            {
                created = _rangeStart.PlusSeconds(random.Next(_rangeSeconds));
                while (_zone.MapLocal(created).Count != 1)
                {
                    created = created.PlusHours(3);
                }
            }

            var updated = created.PlusSeconds(random.Next(1, 86_400 * 3));
            while (_zone.MapLocal(updated).Count != 1)
            {
                updated = updated.PlusHours(3);
            }

            random.NextBytes(uuidBytes);
            uuidBytes[6] = (byte)((uuidBytes[6] & 0x0F) | 0x40);
            uuidBytes[8] = (byte)((uuidBytes[8] & 0x3F) | 0x80);
            yield return new EventRow(
                id,
                random.Next(1, 5000),
                EventTypes[random.Next(EventTypes.Length)],
                Locations[random.Next(Locations.Length)],
                created.ToString(TimestampFormat, CultureInfo.InvariantCulture),
                updated.ToString(TimestampFormat, CultureInfo.InvariantCulture),
                Math.Round((decimal)random.Next(0, 10_000_000) / 100m, 2),
                new Guid(uuidBytes).ToString(),
                Note(random),
                edge);
        }
    }

    private static string Note(Random random)
    {
        var target = 64 + random.Next(17);
        var sb = new System.Text.StringBuilder(target + 12);
        while (sb.Length < target)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }

            sb.Append(Words[random.Next(Words.Length)]);
        }

        return sb.ToString();
    }

    private static List<(LocalDateTime, LocalDateTime, DstEdge)> FindEdges(DateTimeZone zone, LocalDateTime start, LocalDateTime end)
    {
        var edges = new List<(LocalDateTime, LocalDateTime, DstEdge)>();
        var from = start.InZoneLeniently(zone).ToInstant();
        var to = end.InZoneLeniently(zone).ToInstant();
        ZoneInterval? previous = null;
        foreach (var interval in zone.GetZoneIntervals(from, to))
        {
            if (previous is not null && interval.HasStart)
            {
                var before = interval.Start.WithOffset(previous.WallOffset).LocalDateTime;
                var after = interval.Start.WithOffset(interval.WallOffset).LocalDateTime;
                if (after > before)
                {
                    edges.Add((before, after, DstEdge.Gap));
                }
                else if (after < before)
                {
                    edges.Add((after, before, DstEdge.Overlap));
                }
            }

            previous = interval;
        }

        return edges;
    }
}
