using DbMigration.Errors;
using DbMigration.Timezone;
using NodaTime;
using NodaTime.Text;

namespace DbMigration.Tests.Timezone;

public sealed class TimestampParserTests
{
    [Theory]
    [InlineData("2024-03-10 02:30:00", TimestampKind.Local, 0)]
    [InlineData("2024-03-10T02:30:00.123456", TimestampKind.Local, 6)]
    [InlineData("2024-03-10", TimestampKind.Local, 0)]
    [InlineData("2024-03-10 02:30", TimestampKind.Local, 0)]
    [InlineData("2024-03-10T02:30:00Z", TimestampKind.AlreadyUtc, 0)]
    [InlineData("2024-03-10 02:30:00+02:00", TimestampKind.AlreadyUtc, 0)]
    [InlineData("2024-03-10T02:30:00.5-0530", TimestampKind.AlreadyUtc, 1)]
    [InlineData("1700000000", TimestampKind.EpochSeconds, 0)]
    [InlineData("1700000000123", TimestampKind.EpochMilliseconds, 3)]
    [InlineData("54191", TimestampKind.Unparseable, 0)]
    [InlineData("2024-02-30 10:00:00", TimestampKind.Unparseable, 0)]
    [InlineData("yesterday", TimestampKind.Unparseable, 0)]
    [InlineData("2024-03-10 25:00:00", TimestampKind.Unparseable, 0)]
    public void Parses_the_shapes_applications_store(string text, TimestampKind kind, int fractionDigits)
    {
        var parsed = TimestampParser.Parse(text);
        Assert.Equal(kind, parsed.Kind);
        Assert.Equal(fractionDigits, parsed.FractionDigits);
    }

    [Fact]
    public void Epoch_values_keep_their_instant_and_never_become_year_54191()
    {
        Assert.Equal(Instant.FromUtc(2023, 11, 14, 22, 13, 20), TimestampParser.Parse("1700000000").Instant);
        Assert.Equal(Instant.FromUtc(2023, 11, 14, 22, 13, 20).PlusNanoseconds(123_000_000), TimestampParser.Parse("1700000000123").Instant);
        Assert.Equal("2023-11-14T22:13:20.123Z", TimestampParser.FormatUtc(TimestampParser.Parse("1700000000123").Instant, 3));
    }

    [Fact]
    public void Output_keeps_the_source_precision()
    {
        var instant = Instant.FromUtc(2024, 3, 10, 7, 30, 5).PlusNanoseconds(123_456_000);
        Assert.Equal("2024-03-10T07:30:05Z", TimestampParser.FormatUtc(instant, 0));
        Assert.Equal("2024-03-10T07:30:05.123456Z", TimestampParser.FormatUtc(instant, 6));
    }
}

/// <summary>DST edges in five zones, with expected instants worked out by hand from each zone's rules.</summary>
public sealed class TimezoneConverterTests
{
    private static readonly LocalDateTimePattern Local = LocalDateTimePattern.CreateWithInvariantCulture("uuuu-MM-dd HH:mm");

    private static Instant Utc(string text) => InstantPattern.ExtendedIso.Parse(text).Value;

    private static (Instant, Resolution) Convert(string zone, string local, AmbiguousTimePolicy ambiguous = AmbiguousTimePolicy.Fail, NonexistentTimePolicy nonexistent = NonexistentTimePolicy.Fail) =>
        new TimezoneConverter(TimezoneResolver.Resolve(zone), ambiguous, nonexistent).ToUtc(Local.Parse(local).Value);

    [Theory]
    // New York: 2024-03-10 02:00 -> 03:00 (gap); 2024-11-03 02:00 -> 01:00 (overlap).
    [InlineData("America/New_York", "2024-03-10 02:30", "2024-03-10T07:30:00Z", "2024-11-03 01:30", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z")]
    // London: 2024-03-31 01:00 -> 02:00 (gap); 2024-10-27 02:00 -> 01:00 (overlap).
    [InlineData("Europe/London", "2024-03-31 01:30", "2024-03-31T01:30:00Z", "2024-10-27 01:30", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z")]
    // Lord Howe, a 30-minute DST: 2024-10-06 02:00 -> 02:30 (+10:30 -> +11); 2024-04-07 02:00 -> 01:30.
    [InlineData("Australia/Lord_Howe", "2024-10-06 02:15", "2024-10-05T15:45:00Z", "2024-04-07 01:45", "2024-04-06T14:45:00Z", "2024-04-06T15:15:00Z")]
    // Sao Paulo before DST was abolished: 2018-11-04 00:00 -> 01:00; 2019-02-16 24:00 -> 23:00.
    [InlineData("America/Sao_Paulo", "2018-11-04 00:30", "2018-11-04T03:30:00Z", "2019-02-16 23:30", "2019-02-17T01:30:00Z", "2019-02-17T02:30:00Z")]
    public void Gaps_shift_forward_and_overlaps_follow_the_policy(string zone, string gap, string shifted, string overlap, string earlier, string later)
    {
        Assert.Equal((Utc(shifted), Resolution.ShiftedForward), Convert(zone, gap, nonexistent: NonexistentTimePolicy.ShiftForward));
        Assert.Equal(Resolution.Refused, Convert(zone, gap).Item2);
        Assert.Equal((Utc(earlier), Resolution.AmbiguousEarlier), Convert(zone, overlap, AmbiguousTimePolicy.Earlier));
        Assert.Equal((Utc(later), Resolution.AmbiguousLater), Convert(zone, overlap, AmbiguousTimePolicy.Later));
        Assert.Equal(Resolution.Refused, Convert(zone, overlap).Item2);
    }

    [Theory]
    [InlineData("Asia/Ho_Chi_Minh", "2024-03-10 02:30", "2024-03-09T19:30:00Z")]
    [InlineData("America/Sao_Paulo", "2024-11-03 00:30", "2024-11-03T03:30:00Z")]
    [InlineData("Eastern Standard Time", "2024-07-01 12:00", "2024-07-01T16:00:00Z")]
    public void Zones_without_DST_now_and_Windows_ids_convert_exactly(string zone, string local, string utc)
    {
        Assert.Equal((Utc(utc), Resolution.Exact), Convert(zone, local));
    }

    [Fact]
    public void An_unknown_zone_gets_close_matches()
    {
        var ex = Assert.Throws<DbMigrationException>(() => TimezoneResolver.Resolve("America/New_Yrok"));
        Assert.Equal(ErrorIds.TimezoneUnknownZone, ex.ErrorId);
        Assert.Contains("America/New_York", ex.Message, StringComparison.Ordinal);
        Assert.Contains(TimezoneResolver.TzdbVersion, ex.Message, StringComparison.Ordinal);
    }
}
