using NodaTime;

namespace DbMigration.Timezone;

/// <summary>Per-column counts of what the values turned out to be.</summary>
internal sealed class TimestampTally
{
    public long Rows;
    public long Converted;
    public long AlreadyUtc;
    public long Epoch;
    public long Unparseable;
    public long Ambiguous;
    public long Nonexistent;

    /// <summary>NULLs seen (SQLite's functions count them; other paths skip them).</summary>
    public long Nulls;

    /// <summary>Text values that already ended in the output format's UTC marker ("Z" or "+00:00"), whatever they were.</summary>
    public long Marked;
}

/// <summary>
/// Converts one stored text value to UTC text under the run's policies, writing ASCII into a caller's buffer.
/// Text columns on every engine go through here; SQLite calls it for each row from inside its UPDATE, so the
/// common case (a naive time in the years 1900-2100) is a parse, a binary search of the zone's offsets and a
/// formatted write, with no allocation.
/// </summary>
internal sealed class TextTimestampConverter
{
    private readonly TimezoneConverter _converter;
    private readonly OffsetTimeline _timeline;

    public TextTimestampConverter(TimezoneConverter converter, TimestampOutputFormat format)
    {
        _converter = converter;
        Format = format;
        _timeline = OffsetTimeline.Build(converter, new LocalDateTime(1900, 1, 1, 0, 0), new LocalDateTime(2100, 1, 1, 0, 0));
    }

    public TimestampOutputFormat Format { get; }

    /// <summary>The ending every converted value has, as validation counts it (case-sensitive, like GLOB).</summary>
    public ReadOnlySpan<byte> Marker => Format == TimestampOutputFormat.Native ? "+00:00"u8 : "Z"u8;

    public TimezoneConverter Converter => _converter;

    /// <summary>
    /// Counts the value in <paramref name="tally"/> and, when it should change, writes its replacement and returns
    /// true. <paramref name="issue"/> names what needed judgement (ambiguous, nonexistent) or stopped it
    /// (unparseable, or a refusing policy).
    /// </summary>
    public bool TryConvert(ReadOnlySpan<char> text, TimestampTally tally, Span<byte> output, out int written, out string? issue)
    {
        written = 0;
        issue = null;
        if (TryParseCanonical(text, out var canonicalWall, out var canonicalDigits) && _timeline.Covers(canonicalWall))
        {
            return ConvertWall(canonicalWall, canonicalDigits, tally, output, out written, out issue);
        }

        var parsed = TimestampParser.Parse(text);
        switch (parsed.Kind)
        {
            case TimestampKind.AlreadyUtc:
                tally.AlreadyUtc++;
                return false;
            case TimestampKind.EpochSeconds:
            case TimestampKind.EpochMilliseconds:
                tally.Epoch++;
                tally.Converted++;
                return Write(parsed.Instant.ToUnixTimeTicks(), parsed.FractionDigits, output, out written);
            case TimestampKind.Local:
                if (TimezoneConverter.AtCalendarEdge(parsed.Local))
                {
                    // A sentinel such as 9999-12-31 23:59:59: its UTC reading may not exist, and it means "never".
                    tally.Unparseable++;
                    issue = TimezoneConverter.OutOfRange;
                    return false;
                }

                var wall = OffsetTimeline.Ticks(parsed.Local);
                long utcTicks;
                if (_timeline.Covers(wall))
                {
                    return ConvertWall(wall, parsed.FractionDigits, tally, output, out written, out issue);
                }
                else
                {
                    var (instant, resolution) = _converter.ToUtc(parsed.Local);
                    var mappings = _converter.Zone.MapLocal(parsed.Local).Count;
                    if (mappings == 2)
                    {
                        tally.Ambiguous++;
                        issue = "ambiguous";
                    }
                    else if (mappings == 0)
                    {
                        tally.Nonexistent++;
                        issue = "nonexistent";
                    }

                    if (resolution == Resolution.Refused)
                    {
                        issue ??= "refused";
                        return false;
                    }

                    utcTicks = instant.ToUnixTimeTicks();
                }

                tally.Converted++;
                return Write(utcTicks, parsed.FractionDigits, output, out written);
            default:
                tally.Unparseable++;
                issue = "unparseable";
                return false;
        }
    }

    private bool ConvertWall(long wall, int fractionDigits, TimestampTally tally, Span<byte> output, out int written, out string? issue)
    {
        written = 0;
        issue = null;
        var segment = _timeline.FindLocal(wall);
        if (segment.Kind == LocalTimeKind.Ambiguous)
        {
            tally.Ambiguous++;
            issue = "ambiguous";
            if (_converter.Ambiguous == AmbiguousTimePolicy.Fail)
            {
                return false;
            }
        }
        else if (segment.Kind == LocalTimeKind.Nonexistent)
        {
            tally.Nonexistent++;
            issue = "nonexistent";
            if (_converter.Nonexistent == NonexistentTimePolicy.Fail)
            {
                return false;
            }
        }

        tally.Converted++;
        return Write(wall - segment.OffsetTicks, fractionDigits, output, out written);
    }

    private static readonly long[] FractionScale = [0, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

    /// <summary>
    /// The shape nearly every application writes, "YYYY-MM-DD[T ]HH:MM:SS[.f…f]" with up to 7 digits and nothing
    /// around it, read straight into wall-clock ticks since 1970. Anything else goes to <see cref="TimestampParser"/>,
    /// which reads it the same way (a test compares them).
    /// </summary>
    internal static bool TryParseCanonical(ReadOnlySpan<char> text, out long wallTicks, out int fractionDigits)
    {
        wallTicks = 0;
        fractionDigits = 0;
        if (text.Length is < 19 or 20 or > 27 || text[4] != '-' || text[7] != '-' || text[10] is not ('T' or ' ') || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        if (!Two(text, 0, out var century) || !Two(text, 2, out var yy) || !Two(text, 5, out var month) || !Two(text, 8, out var day) ||
            !Two(text, 11, out var hour) || !Two(text, 14, out var minute) || !Two(text, 17, out var second))
        {
            return false;
        }

        var year = century * 100 + yy;
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        long fraction = 0;
        if (text.Length > 19)
        {
            if (text[19] is not ('.' or ','))
            {
                return false;
            }

            for (var i = 20; i < text.Length; i++)
            {
                var digit = text[i] - '0';
                if ((uint)digit > 9)
                {
                    return false;
                }

                fraction = fraction * 10 + digit;
            }

            fractionDigits = text.Length - 20;
            fraction *= FractionScale[fractionDigits];
        }

        wallTicks = DaysSinceEpoch(year, month, day) * TimeSpan.TicksPerDay + (hour * 3600L + minute * 60 + second) * TimeSpan.TicksPerSecond + fraction;
        return true;
    }

    /// <summary>Days from 1970-01-01 to a valid date.</summary>
    internal static long DaysSinceEpoch(int year, int month, int day) => new DateOnly(year, month, day).DayNumber - UnixEpochDay;

    private static readonly int UnixEpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    private static bool Two(ReadOnlySpan<char> text, int start, out int value)
    {
        var high = text[start] - '0';
        var low = text[start + 1] - '0';
        value = high * 10 + low;
        return (uint)high <= 9 && (uint)low <= 9;
    }

    /// <summary>The replacement as a string, or null to leave the value as it is.</summary>
    public string? Convert(string text, TimestampTally tally, out string? issue)
    {
        Span<byte> buffer = stackalloc byte[TimestampParser.MaxFormattedLength];
        return TryConvert(text, tally, buffer, out var written, out issue) ? System.Text.Encoding.ASCII.GetString(buffer[..written]) : null;
    }

    private bool Write(long utcTicks, int fractionDigits, Span<byte> output, out int written)
    {
        if (TimestampParser.TryWriteUtc(utcTicks, fractionDigits, Format, output, out written))
        {
            return true;
        }

        var text = TimestampParser.FormatUtc(Instant.FromUnixTimeTicks(utcTicks), fractionDigits, Format);
        written = System.Text.Encoding.ASCII.GetBytes(text, output);
        return true;
    }
}
