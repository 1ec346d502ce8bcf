using System.Globalization;
using DbMigration.Timezone;
using NodaTime;
using NodaTime.Text;

namespace DbMigration.Tests.Timezone;

/// <summary>
/// The offset tables that text conversion and the servers' CASE expressions use, checked against NodaTime's own
/// mapping at every transition (and a second either side of each edge) and at random times, in zones with
/// unusual histories.
/// </summary>
public sealed class OffsetTimelineTests
{
    public static TheoryData<string, AmbiguousTimePolicy, NonexistentTimePolicy> Zones()
    {
        var data = new TheoryData<string, AmbiguousTimePolicy, NonexistentTimePolicy>();
        foreach (var zone in new[] { "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Apia", "Africa/Casablanca", "Asia/Kolkata", "America/St_Johns", "Europe/Moscow", "Antarctica/Troll" })
        {
            data.Add(zone, AmbiguousTimePolicy.Earlier, NonexistentTimePolicy.ShiftForward);
            data.Add(zone, AmbiguousTimePolicy.Later, NonexistentTimePolicy.ShiftForward);
            data.Add(zone, AmbiguousTimePolicy.Fail, NonexistentTimePolicy.Fail);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Zones))]
    public void Local_segments_agree_with_NodaTime_everywhere(string zoneId, AmbiguousTimePolicy ambiguous, NonexistentTimePolicy nonexistent)
    {
        var zone = TimezoneResolver.Resolve(zoneId);
        var converter = new TimezoneConverter(zone, ambiguous, nonexistent);
        var from = new LocalDateTime(1890, 1, 1, 0, 0);
        var to = new LocalDateTime(2060, 1, 1, 0, 0);
        var timeline = OffsetTimeline.Build(converter, from, to);

        var probes = new List<long>();
        foreach (var interval in zone.GetZoneIntervals(from.InUtc().ToInstant(), to.InUtc().ToInstant()).Where(i => i.HasStart))
        {
            var t = interval.Start.ToUnixTimeTicks();
            foreach (var offset in new[] { interval.WallOffset, zone.GetUtcOffset(interval.Start - Duration.FromTicks(1)) })
            {
                foreach (var delta in new[] { -TimeSpan.TicksPerSecond, 0, 1, TimeSpan.TicksPerSecond, 30 * TimeSpan.TicksPerMinute })
                {
                    probes.Add(t + offset.ToTimeSpan().Ticks + delta);
                }
            }
        }

        var random = new Random(zoneId.Length * 7919 + (int)ambiguous);
        var span = OffsetTimeline.Ticks(to) - OffsetTimeline.Ticks(from);
        for (var i = 0; i < 20_000; i++)
        {
            probes.Add(OffsetTimeline.Ticks(from) + random.NextInt64(span) / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond);
        }

        Assert.NotEmpty(timeline.Edges());
        foreach (var wall in probes.Where(timeline.Covers))
        {
            var local = OffsetTimeline.Wall(wall);
            var expectedKind = zone.MapLocal(local).Count switch { 1 => LocalTimeKind.Exact, 2 => LocalTimeKind.Ambiguous, _ => LocalTimeKind.Nonexistent };
            var segment = timeline.FindLocal(wall);
            Assert.True(expectedKind == segment.Kind, $"{zoneId} {local}: {segment.Kind}, NodaTime says {expectedKind}");
            var (instant, resolution) = converter.ToUtc(local);
            if (resolution != Resolution.Refused)
            {
                Assert.True(instant.ToUnixTimeTicks() == wall - segment.OffsetTicks, $"{zoneId} {local}: {Instant.FromUnixTimeTicks(wall - segment.OffsetTicks)}, NodaTime says {instant}");
            }
        }
    }

    [Theory]
    [InlineData("America/New_York")]
    [InlineData("Australia/Lord_Howe")]
    [InlineData("Pacific/Apia")]
    [InlineData("Africa/Casablanca")]
    public void Utc_segments_agree_with_NodaTime(string zoneId)
    {
        var zone = TimezoneResolver.Resolve(zoneId);
        var timeline = OffsetTimeline.Build(new TimezoneConverter(zone, AmbiguousTimePolicy.Earlier, NonexistentTimePolicy.ShiftForward), new LocalDateTime(1900, 1, 1, 0, 0), new LocalDateTime(2050, 1, 1, 0, 0));
        var random = new Random(42);
        var start = Instant.FromUtc(1900, 1, 3, 0, 0).ToUnixTimeTicks();
        var span = Instant.FromUtc(2049, 12, 29, 0, 0).ToUnixTimeTicks() - start;
        for (var i = 0; i < 20_000; i++)
        {
            var utc = start + random.NextInt64(span);
            Assert.Equal(zone.GetUtcOffset(Instant.FromUnixTimeTicks(utc)).ToTimeSpan().Ticks, timeline.FindUtcOffset(utc));
        }
    }

    [Fact]
    public void The_CASE_is_balanced_and_covers_only_the_range_asked_for()
    {
        var zone = TimezoneResolver.Resolve("America/New_York");
        var timeline = OffsetTimeline.Build(new TimezoneConverter(zone, AmbiguousTimePolicy.Earlier, NonexistentTimePolicy.ShiftForward), new LocalDateTime(2000, 1, 1, 0, 0), new LocalDateTime(2030, 1, 1, 0, 0));
        var all = timeline.LocalOffsets();
        var year = OffsetTimeline.Within(all, OffsetTimeline.Ticks(new LocalDateTime(2024, 1, 1, 0, 0)), OffsetTimeline.Ticks(new LocalDateTime(2024, 12, 31, 0, 0)));
        Assert.Equal(3, year.Count);
        Assert.Equal(long.MinValue, year[0].Start);
        Assert.Equal("2024-03-10 03:00:00", OffsetTimeline.Literal(year[1].Start));
        Assert.Equal("2024-11-03 02:00:00", OffsetTimeline.Literal(year[2].Start));

        var leaves = new List<long>();
        var sql = OffsetTimeline.Case(all, "v", t => $"'{OffsetTimeline.Literal(t)}'", o =>
        {
            leaves.Add(o.OffsetTicks);
            return (o.OffsetTicks / TimeSpan.TicksPerSecond).ToString(CultureInfo.InvariantCulture);
        });
        Assert.Equal(all.Count - 1, CountOf(sql, "WHEN"));
        Assert.Equal(all.Select(s => s.OffsetTicks), leaves);
        var depth = 0;
        var deepest = 0;
        foreach (var word in sql.Split(' '))
        {
            depth += word == "CASE" ? 1 : word == "END" ? -1 : 0;
            deepest = Math.Max(deepest, depth);
        }

        Assert.True(deepest <= Math.Ceiling(Math.Log2(all.Count)) + 1, $"{all.Count} segments nest {deepest} deep");
    }

    private static int CountOf(string text, string word) => text.Split(word).Length - 1;
}

public sealed class TimestampWriterTests
{
    [Fact]
    public void Writes_exactly_what_NodaTime_patterns_write()
    {
        var random = new Random(7);
        for (var i = 0; i < 20_000; i++)
        {
            var instant = Instant.FromUnixTimeTicks(random.NextInt64(Instant.FromUtc(1, 1, 2, 0, 0).ToUnixTimeTicks(), Instant.FromUtc(9999, 12, 30, 0, 0).ToUnixTimeTicks()));
            var digits = random.Next(0, 9);
            var pattern = "uuuu'-'MM'-'dd'T'HH':'mm':'ss" + (digits > 0 ? "'.'" + new string('f', Math.Min(digits, 7)) : string.Empty) + "'Z'";
            var expected = instant.InUtc().LocalDateTime.ToString(pattern, CultureInfo.InvariantCulture);
            Assert.Equal(expected, TimestampParser.FormatUtc(instant, digits));
            Assert.Equal(expected.Replace('T', ' ')[..^1] + "+00:00", TimestampParser.FormatUtc(instant, digits, TimestampOutputFormat.Native));
        }
    }

    [Fact]
    public void Years_outside_1_to_9999_fall_back_to_NodaTime()
    {
        var instant = Instant.FromUtc(1, 1, 1, 0, 30) - Duration.FromHours(1);
        Assert.Equal("0000-12-31T23:30:00Z", TimestampParser.FormatUtc(instant, 0));
    }
}

/// <summary>The fast text conversion against the plain one (parse, NodaTime mapping, NodaTime pattern), value by value.</summary>
public sealed class TextTimestampConverterTests
{
    [Theory]
    [InlineData("America/New_York", AmbiguousTimePolicy.Earlier, NonexistentTimePolicy.ShiftForward, TimestampOutputFormat.Iso8601Z)]
    [InlineData("Europe/London", AmbiguousTimePolicy.Later, NonexistentTimePolicy.ShiftForward, TimestampOutputFormat.Native)]
    [InlineData("Australia/Lord_Howe", AmbiguousTimePolicy.Fail, NonexistentTimePolicy.Fail, TimestampOutputFormat.Iso8601Z)]
    public void Agrees_with_the_reference_conversion_on_mixed_values(string zoneId, AmbiguousTimePolicy ambiguous, NonexistentTimePolicy nonexistent, TimestampOutputFormat format)
    {
        var zone = TimezoneResolver.Resolve(zoneId);
        var converter = new TimezoneConverter(zone, ambiguous, nonexistent);
        var fast = new TextTimestampConverter(converter, format);
        var tally = new TimestampTally();
        var random = new Random(11);
        var values = new List<string> { "1700000000", "1700000000123", "2024-06-01T10:00:00Z", "2024-06-01 10:00:00+02:00", "nope", "1750-06-01 12:00:00", "2250-06-01 12:00:00" };
        foreach (var interval in zone.GetZoneIntervals(Instant.FromUtc(2015, 1, 1, 0, 0), Instant.FromUtc(2030, 1, 1, 0, 0)).Where(i => i.HasStart))
        {
            var local = interval.Start.InZone(zone).LocalDateTime;
            for (var minutes = -90; minutes <= 90; minutes += 15)
            {
                values.Add(local.PlusMinutes(minutes).ToString("uuuu-MM-dd HH:mm:ss", CultureInfo.InvariantCulture));
            }
        }

        for (var i = 0; i < 5_000; i++)
        {
            var local = new LocalDateTime(1995, 1, 1, 0, 0).PlusSeconds(random.NextInt64(40L * 365 * 86_400)).PlusTicks(random.Next(10_000_000));
            values.Add(local.ToString(random.Next(3) switch { 0 => "uuuu-MM-dd HH:mm:ss", 1 => "uuuu-MM-dd'T'HH:mm:ss.ffffff", _ => "uuuu-MM-dd'T'HH:mm" }, CultureInfo.InvariantCulture));
        }

        foreach (var value in values)
        {
            var actual = fast.Convert(value, tally, out var issue);
            var (expected, expectedIssue) = Reference(value, converter, format);
            Assert.True(expected == actual && expectedIssue == issue, $"{zoneId} '{value}': got '{actual}' ({issue}), expected '{expected}' ({expectedIssue})");
        }

        Assert.Equal(values.Count, tally.Converted + tally.AlreadyUtc + tally.Unparseable + tally.Ambiguous * (ambiguous == AmbiguousTimePolicy.Fail ? 1 : 0) + tally.Nonexistent * (nonexistent == NonexistentTimePolicy.Fail ? 1 : 0));
    }

    private static (string? Value, string? Issue) Reference(string text, TimezoneConverter converter, TimestampOutputFormat format)
    {
        var parsed = TimestampParser.Parse(text);
        string Format(Instant instant, int digits)
        {
            var pattern = "uuuu'-'MM'-'dd'T'HH':'mm':'ss" + (digits > 0 ? "'.'" + new string('f', Math.Min(digits, 7)) : string.Empty) + "'Z'";
            var iso = instant.InUtc().LocalDateTime.ToString(pattern, CultureInfo.InvariantCulture);
            return format == TimestampOutputFormat.Native ? iso.Replace('T', ' ')[..^1] + "+00:00" : iso;
        }

        switch (parsed.Kind)
        {
            case TimestampKind.AlreadyUtc:
                return (null, null);
            case TimestampKind.EpochSeconds:
            case TimestampKind.EpochMilliseconds:
                return (Format(parsed.Instant, parsed.FractionDigits), null);
            case TimestampKind.Local:
                var mappings = converter.Zone.MapLocal(parsed.Local).Count;
                var issue = mappings == 2 ? "ambiguous" : mappings == 0 ? "nonexistent" : null;
                var (instant, resolution) = converter.ToUtc(parsed.Local);
                return resolution == Resolution.Refused ? (null, issue) : (Format(instant, parsed.FractionDigits), issue);
            default:
                return (null, "unparseable");
        }
    }
}

public sealed class CanonicalParserTests
{
    [Theory]
    [InlineData("2024-03-10 02:30:00")]
    [InlineData("2024-03-10T02:30:00.1")]
    [InlineData("2024-03-10T02:30:00,1234567")]
    [InlineData("0001-01-01 00:00:00")]
    [InlineData("9999-12-31T23:59:59.9999999")]
    [InlineData("2024-02-29 12:00:00")]
    public void Reads_what_the_full_parser_reads(string text)
    {
        Assert.True(TextTimestampConverter.TryParseCanonical(text, out var wall, out var digits));
        var parsed = TimestampParser.Parse(text);
        Assert.Equal(OffsetTimeline.Ticks(parsed.Local), wall);
        Assert.Equal(parsed.FractionDigits, digits);
    }

    [Theory]
    [InlineData("2023-02-29 12:00:00")]
    [InlineData("2024-03-10 24:00:00")]
    [InlineData("2024-03-10t02:30:00")]
    [InlineData(" 2024-03-10 02:30:00")]
    [InlineData("2024-03-10 02:30:00Z")]
    [InlineData("2024-03-10T02:30:00.123Z")]
    [InlineData("2024-03-10T02:30:00.12345678")]
    [InlineData("2024-03-10 02:30")]
    [InlineData("0000-01-01 00:00:00")]
    [InlineData("2024-3-10 02:30:00x")]
    [InlineData("1900-02-29 00:00:00")]
    [InlineData("2100-02-29 00:00:00")]
    [InlineData("2024-04-31 00:00:00")]
    [InlineData("2024-13-01 00:00:00")]
    [InlineData("2024-00-10 00:00:00")]
    public void Leaves_every_other_shape_to_the_full_parser(string text) =>
        Assert.False(TextTimestampConverter.TryParseCanonical(text, out _, out _));

    [Fact]
    public void Every_day_from_year_1_to_9999_reads_as_the_calendar_says()
    {
        var epoch = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
        var checkedDays = 0;
        for (var day = DateOnly.MinValue; ; day = day.AddDays(1))
        {
            var expected = day.DayNumber - epoch;
            var actual = TextTimestampConverter.DaysSinceEpoch(day.Year, day.Month, day.Day);
            if (actual != expected)
            {
                Assert.Fail($"{day:yyyy-MM-dd}: {actual} days since 1970, expected {expected}");
            }

            checkedDays++;
            if (day == DateOnly.MaxValue)
            {
                break;
            }
        }

        Assert.Equal(DateOnly.MaxValue.DayNumber + 1, checkedDays);
        Assert.True(TextTimestampConverter.TryParseCanonical("2000-02-29 00:00:00", out var wall, out _));
        Assert.Equal(new DateTime(2000, 2, 29, 0, 0, 0, DateTimeKind.Utc).Ticks - DateTime.UnixEpoch.Ticks, wall);
    }
}
