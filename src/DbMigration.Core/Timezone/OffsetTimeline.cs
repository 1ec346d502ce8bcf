using System.Globalization;
using NodaTime;

namespace DbMigration.Timezone;

/// <summary>Whether a local time is ordinary, occurs twice (clocks went back) or never occurred (clocks went forward).</summary>
internal enum LocalTimeKind
{
    Exact,
    Ambiguous,
    Nonexistent,
}

/// <summary>One stretch of local time (or of UTC) over which the offset to apply is the same.</summary>
/// <param name="Start">First tick of the stretch (ticks since 1970 of the wall-clock reading); long.MinValue for the first.</param>
/// <param name="OffsetTicks">Local minus UTC.</param>
internal readonly record struct OffsetSegment(long Start, long OffsetTicks, LocalTimeKind Kind);

/// <summary>
/// A zone's offsets as sorted, piecewise-constant segments between two dates, built from NodaTime's tzdb with the
/// run's policies applied: local wall-clock time to UTC (DST gaps and overlaps marked) and UTC back to local time.
/// One table serves the in-process conversion of text values and the CASE expressions the servers evaluate for
/// typed columns, so every engine converts with the same rules and tzdb version rather than the server's own.
/// </summary>
internal sealed class OffsetTimeline
{
    private readonly OffsetSegment[] _local;
    private readonly OffsetSegment[] _utc;

    /// <summary>Wall-clock ticks per bucket of <see cref="_localBuckets"/>: 2^40 ticks, about 30.5 hours.</summary>
    private const int BucketShift = 40;

    /// <summary>
    /// For each bucket of wall-clock time from <see cref="From"/> to <see cref="To"/>, the last local segment that
    /// starts at or before the bucket's start: a lookup is then a shift and a step or two instead of a binary
    /// search (SQLite calls it for every value).
    /// </summary>
    private readonly int[] _localBuckets;

    private OffsetTimeline(OffsetSegment[] local, OffsetSegment[] utc, long from, long to)
    {
        _local = local;
        _utc = utc;
        From = from;
        To = to;
        _localBuckets = new int[(int)((to - from) >> BucketShift) + 1];
        var segment = 0;
        for (var bucket = 0; bucket < _localBuckets.Length; bucket++)
        {
            var start = from + ((long)bucket << BucketShift);
            while (segment + 1 < local.Length && local[segment + 1].Start <= start)
            {
                segment++;
            }

            _localBuckets[bucket] = segment;
        }
    }

    /// <summary>First wall-clock tick the timeline was built for (values outside it still convert, through the edge segments).</summary>
    public long From { get; }

    public long To { get; }

    /// <summary>Local-time segments; consecutive entries may share an offset when their kind differs.</summary>
    public IReadOnlyList<OffsetSegment> Local => _local;

    /// <summary>UTC segments, merged by offset.</summary>
    public IReadOnlyList<OffsetSegment> Utc => _utc;

    /// <summary>The segments from <paramref name="from"/> to <paramref name="to"/> (wall-clock, either end inclusive).</summary>
    public static OffsetTimeline Build(TimezoneConverter converter, LocalDateTime from, LocalDateTime to)
    {
        ArgumentNullException.ThrowIfNull(converter);
        var zone = converter.Zone;
        var fromTicks = Ticks(from);
        var toTicks = Ticks(to);

        // Two days of margin: no zone has changed its offset by more than that at once.
        var margin = TimeSpan.TicksPerDay * 2;
        var start = Instant.FromUnixTimeTicks(Math.Max(fromTicks - margin, Ticks(LocalDateTime.FromDateTime(DateTime.MinValue.AddDays(3)))));
        var end = Instant.FromUnixTimeTicks(Math.Min(toTicks + margin, Ticks(LocalDateTime.FromDateTime(DateTime.MaxValue.AddDays(-3)))));
        var intervals = zone.GetZoneIntervals(start, end).ToList();

        // The mapping of a local time only changes where some transition, seen with the offset on either side,
        // lands; between those points it is constant, so one probe per stretch classifies the whole stretch.
        var points = new SortedSet<long>();
        var utc = new List<OffsetSegment>();
        for (var i = 0; i < intervals.Count; i++)
        {
            var interval = intervals[i];
            var offset = interval.WallOffset.ToTimeSpan().Ticks;
            var utcStart = i == 0 || !interval.HasStart ? long.MinValue : interval.Start.ToUnixTimeTicks();
            if (utc.Count == 0 || utc[^1].OffsetTicks != offset)
            {
                utc.Add(new OffsetSegment(utc.Count == 0 ? long.MinValue : utcStart, offset, LocalTimeKind.Exact));
            }

            if (i > 0 && interval.HasStart)
            {
                var before = intervals[i - 1].WallOffset.ToTimeSpan().Ticks;
                points.Add(utcStart + before);
                points.Add(utcStart + offset);
            }
        }

        var local = new List<OffsetSegment>();
        var probes = new List<long> { long.MinValue };
        probes.AddRange(points);
        foreach (var point in probes)
        {
            var probe = point == long.MinValue ? (points.Count == 0 ? fromTicks : points.Min - TimeSpan.TicksPerDay) : point;
            var (offset, kind) = Classify(converter, probe);
            if (local.Count == 0 || local[^1].OffsetTicks != offset || local[^1].Kind != kind)
            {
                local.Add(new OffsetSegment(local.Count == 0 ? long.MinValue : point, offset, kind));
            }
        }

        return new OffsetTimeline([.. local], [.. utc], fromTicks, toTicks);
    }

    private static (long Offset, LocalTimeKind Kind) Classify(TimezoneConverter converter, long wallTicks)
    {
        var mapping = converter.Zone.MapLocal(Wall(wallTicks));
        switch (mapping.Count)
        {
            case 1:
                return (mapping.First().Offset.ToTimeSpan().Ticks, LocalTimeKind.Exact);
            case 2:
                // Earlier is also what a refusing policy's (absent) values would get: only the offset of a stretch matters to SQL.
                var chosen = converter.Ambiguous == AmbiguousTimePolicy.Later ? mapping.Last() : mapping.First();
                return (chosen.Offset.ToTimeSpan().Ticks, LocalTimeKind.Ambiguous);
            default:
                return (mapping.EarlyInterval.WallOffset.ToTimeSpan().Ticks, LocalTimeKind.Nonexistent);
        }
    }

    /// <summary>The segment a wall-clock reading falls in.</summary>
    public OffsetSegment FindLocal(long wallTicks)
    {
        if (!Covers(wallTicks))
        {
            return Find(_local, wallTicks);
        }

        var segment = _localBuckets[(int)((wallTicks - From) >> BucketShift)];
        while (segment + 1 < _local.Length && _local[segment + 1].Start <= wallTicks)
        {
            segment++;
        }

        return _local[segment];
    }

    /// <summary>The offset in force at a UTC instant.</summary>
    public long FindUtcOffset(long utcTicks) => Find(_utc, utcTicks).OffsetTicks;

    private static OffsetSegment Find(OffsetSegment[] segments, long ticks)
    {
        int lo = 0, hi = segments.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >> 1;
            if (segments[mid].Start <= ticks)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return segments[lo];
    }

    /// <summary>Whether the timeline answers for this wall-clock reading exactly as NodaTime would.</summary>
    public bool Covers(long wallTicks) => wallTicks >= From && wallTicks <= To;

    public static long Ticks(LocalDateTime local) => local.InUtc().ToInstant().ToUnixTimeTicks();

    public static LocalDateTime Wall(long ticks) => Instant.FromUnixTimeTicks(ticks).InUtc().LocalDateTime;

    /// <summary>The local-time segments reduced to changes of offset (kinds dropped), for SQL.</summary>
    public IReadOnlyList<OffsetSegment> LocalOffsets()
    {
        var merged = new List<OffsetSegment>();
        foreach (var segment in _local)
        {
            if (merged.Count == 0 || merged[^1].OffsetTicks != segment.OffsetTicks)
            {
                merged.Add(segment with { Kind = LocalTimeKind.Exact });
            }
        }

        return merged;
    }

    /// <summary>The DST gaps and overlaps, as [start, end) wall-clock ranges.</summary>
    public IEnumerable<(long Start, long End, LocalTimeKind Kind)> Edges()
    {
        for (var i = 0; i < _local.Length; i++)
        {
            if (_local[i].Kind != LocalTimeKind.Exact)
            {
                yield return (_local[i].Start, i + 1 < _local.Length ? _local[i + 1].Start : long.MaxValue, _local[i].Kind);
            }
        }
    }

    /// <summary>A wall-clock reading as an SQL timestamp literal body ("2024-03-10 03:00:00").</summary>
    public static string Literal(long ticks) =>
        new DateTime(ticks + DateTime.UnixEpoch.Ticks, DateTimeKind.Unspecified).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    /// <summary>
    /// A balanced CASE over the segments: <paramref name="value"/> is compared with each boundary
    /// (<paramref name="boundary"/> renders a literal) and the leaf renders the segment (its offset, or its kind), so a row costs
    /// log2(segments) comparisons.
    /// </summary>
    public static string Case(IReadOnlyList<OffsetSegment> segments, string value, Func<long, string> boundary, Func<OffsetSegment, string> leaf)
    {
        ArgumentNullException.ThrowIfNull(segments);
        return Build(0, segments.Count - 1);

        string Build(int lo, int hi)
        {
            if (lo == hi)
            {
                return leaf(segments[lo]);
            }

            var mid = (lo + hi + 1) >> 1;
            return $"CASE WHEN {value} < {boundary(segments[mid].Start)} THEN {Build(lo, mid - 1)} ELSE {Build(mid, hi)} END";
        }
    }

    /// <summary>The segments that touch [from, to], so a CASE only carries the transitions the data spans.</summary>
    public static IReadOnlyList<OffsetSegment> Within(IReadOnlyList<OffsetSegment> segments, long from, long to)
    {
        ArgumentNullException.ThrowIfNull(segments);
        var result = new List<OffsetSegment>();
        for (var i = 0; i < segments.Count; i++)
        {
            var end = i + 1 < segments.Count ? segments[i + 1].Start : long.MaxValue;
            if (end > from && segments[i].Start <= to)
            {
                result.Add(result.Count == 0 ? segments[i] with { Start = long.MinValue } : segments[i]);
            }
        }

        return result;
    }
}
