using NodaTime;

namespace DbMigration.Timezone;

/// <summary>What to do with a local time that occurs twice (clocks went back).</summary>
public enum AmbiguousTimePolicy
{
    /// <summary>The first occurrence (daylight time): the earlier instant.</summary>
    Earlier,

    /// <summary>The second occurrence (standard time): the later instant.</summary>
    Later,

    /// <summary>Leave the value unchanged, list it, and fail the column.</summary>
    Fail,
}

/// <summary>What to do with a local time that never occurred (clocks went forward).</summary>
public enum NonexistentTimePolicy
{
    /// <summary>Move it forward by the length of the gap (02:30 in a one-hour gap becomes 03:30).</summary>
    ShiftForward,

    /// <summary>Leave the value unchanged, list it, and fail the column.</summary>
    Fail,
}

/// <summary>How a value was converted.</summary>
public enum Resolution
{
    Exact,
    AmbiguousEarlier,
    AmbiguousLater,
    ShiftedForward,
    Refused,
}

/// <summary>Local wall-clock time to UTC under an explicit policy for DST gaps and overlaps.</summary>
public sealed class TimezoneConverter(DateTimeZone zone, AmbiguousTimePolicy ambiguous, NonexistentTimePolicy nonexistent)
{
    public DateTimeZone Zone { get; } = zone;

    public AmbiguousTimePolicy Ambiguous { get; } = ambiguous;

    public NonexistentTimePolicy Nonexistent { get; } = nonexistent;

    /// <summary>The issue reported for a value <see cref="AtCalendarEdge"/>.</summary>
    public const string OutOfRange = "out of range";

    /// <summary>
    /// The first two and last two days of the calendar (before 0001-01-03, from 9999-12-30). Converting such a value
    /// can leave the calendar, and these are the sentinels applications store for "always" and "never"
    /// (9999-12-31 23:59:59): every engine leaves them as they are and reports them.
    /// </summary>
    public static bool AtCalendarEdge(LocalDateTime local) => local < FirstConvertible || local >= EndOfConvertible;

    public static bool AtCalendarEdge(DateTime local) => local < FirstConvertibleClock || local >= EndOfConvertibleClock;

    internal static readonly LocalDateTime FirstConvertible = new(1, 1, 3, 0, 0);

    internal static readonly LocalDateTime EndOfConvertible = new(9999, 12, 30, 0, 0);

    private static readonly DateTime FirstConvertibleClock = FirstConvertible.ToDateTimeUnspecified();

    private static readonly DateTime EndOfConvertibleClock = EndOfConvertible.ToDateTimeUnspecified();

    public (Instant Instant, Resolution Resolution) ToUtc(LocalDateTime local)
    {
        var mapping = Zone.MapLocal(local);
        switch (mapping.Count)
        {
            case 1:
                return (mapping.Single().ToInstant(), Resolution.Exact);
            case 2:
                return Ambiguous switch
                {
                    AmbiguousTimePolicy.Earlier => (mapping.First().ToInstant(), Resolution.AmbiguousEarlier),
                    AmbiguousTimePolicy.Later => (mapping.Last().ToInstant(), Resolution.AmbiguousLater),
                    _ => (default, Resolution.Refused),
                };
            default:
                if (Nonexistent == NonexistentTimePolicy.Fail)
                {
                    return (default, Resolution.Refused);
                }

                // Shift by the gap: interpret with the offset in force before the transition.
                var before = mapping.EarlyInterval.WallOffset;
                return (new OffsetDateTime(local, before).ToInstant(), Resolution.ShiftedForward);
        }
    }

    /// <summary>UTC back to local wall-clock time (for validation samples and undo checks).</summary>
    public LocalDateTime ToLocal(Instant instant) => instant.InZone(Zone).LocalDateTime;
}
