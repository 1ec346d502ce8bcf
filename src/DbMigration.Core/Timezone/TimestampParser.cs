using System.Globalization;
using NodaTime;

namespace DbMigration.Timezone;

/// <summary>What a stored value turned out to be.</summary>
public enum TimestampKind
{
    /// <summary>A naive local date-time (or date) to convert.</summary>
    Local,

    /// <summary>Already carries Z or an offset: left alone, which makes a second run a no-op.</summary>
    AlreadyUtc,

    /// <summary>Seconds since 1970 (10 digits), converted as UTC instants.</summary>
    EpochSeconds,

    /// <summary>Milliseconds since 1970 (13 digits), converted as UTC instants.</summary>
    EpochMilliseconds,

    Unparseable,
}

/// <summary>A parsed stored value: its kind, the local time when it is local, and how many fractional digits it had.</summary>
public readonly record struct ParsedTimestamp(TimestampKind Kind, LocalDateTime Local, bool DateOnly, int FractionDigits, Instant Instant);

/// <summary>
/// Parses the shapes applications store: ISO-8601 with or without T, fractional seconds, date-only,
/// "YYYY-MM-DD HH:MM:SS", trailing Z or ±HH:MM (already UTC-aware), and epoch numbers by magnitude.
/// </summary>
public static class TimestampParser
{
    /// <summary>The epoch rule, as reported: 10-digit integers are seconds, 13-digit integers are milliseconds (years 2001-2286).</summary>
    public const string EpochRule = "integers from 1,000,000,000 to 9,999,999,999 are epoch seconds; from 1,000,000,000,000 to 9,999,999,999,999 epoch milliseconds; other numbers are unparseable";

    public static ParsedTimestamp Parse(ReadOnlySpan<char> text)
    {
        text = text.Trim();
        if (text.Length == 0)
        {
            return Unparseable;
        }

        if (IsAllDigits(text))
        {
            if (text.Length == 10 && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            {
                return new ParsedTimestamp(TimestampKind.EpochSeconds, default, false, 0, Instant.FromUnixTimeSeconds(seconds));
            }

            if (text.Length == 13 && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var millis))
            {
                return new ParsedTimestamp(TimestampKind.EpochMilliseconds, default, false, 3, Instant.FromUnixTimeMilliseconds(millis));
            }

            return Unparseable;
        }

        // YYYY-MM-DD
        if (text.Length < 10 || !Digits(text, 0, 4, out var year) || text[4] != '-' || !Digits(text, 5, 2, out var month) || text[7] != '-' || !Digits(text, 8, 2, out var day))
        {
            return Unparseable;
        }

        if (!IsValidDate(year, month, day))
        {
            return Unparseable;
        }

        if (text.Length == 10)
        {
            return new ParsedTimestamp(TimestampKind.Local, new LocalDateTime(year, month, day, 0, 0), true, 0, default);
        }

        // [T ]HH:MM[:SS[.fffffff]]
        if (text[10] is not ('T' or 't' or ' ') || text.Length < 16 || !Digits(text, 11, 2, out var hour) || text[13] != ':' || !Digits(text, 14, 2, out var minute))
        {
            return Unparseable;
        }

        var i = 16;
        var second = 0;
        long ticks = 0;
        var fractionDigits = 0;
        if (i < text.Length && text[i] == ':')
        {
            if (!Digits(text, i + 1, 2, out second))
            {
                return Unparseable;
            }

            i += 3;
            if (i < text.Length && text[i] is '.' or ',')
            {
                i++;
                var start = i;
                while (i < text.Length && char.IsAsciiDigit(text[i]))
                {
                    if (i - start < 7)
                    {
                        ticks = ticks * 10 + (text[i] - '0');
                    }

                    i++;
                }

                fractionDigits = i - start;
                if (fractionDigits == 0)
                {
                    return Unparseable;
                }

                for (var k = Math.Min(fractionDigits, 7); k < 7; k++)
                {
                    ticks *= 10;
                }
            }
        }

        if (hour > 23 || minute > 59 || second > 59)
        {
            return Unparseable;
        }

        var local = new LocalDateTime(year, month, day, hour, minute, second).PlusTicks(ticks);
        if (i == text.Length)
        {
            return new ParsedTimestamp(TimestampKind.Local, local, false, fractionDigits, default);
        }

        // Z, +HH:MM, +HHMM, +HH: the value already says where it is.
        var rest = text[i..].TrimStart();
        if (rest is "Z" or "z" || rest.Length >= 3 && rest[0] is '+' or '-' && char.IsAsciiDigit(rest[1]) && char.IsAsciiDigit(rest[2]) && IsOffsetTail(rest[3..]))
        {
            return new ParsedTimestamp(TimestampKind.AlreadyUtc, local, false, fractionDigits, default);
        }

        return Unparseable;
    }

    private static readonly ParsedTimestamp Unparseable = new(TimestampKind.Unparseable, default, false, 0, default);

    private static bool IsOffsetTail(ReadOnlySpan<char> tail) =>
        tail.Length == 0 || tail.Length == 2 && IsAllDigits(tail) || tail.Length == 3 && tail[0] == ':' && IsAllDigits(tail[1..]);

    private static bool IsAllDigits(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return text.Length > 0;
    }

    private static bool Digits(ReadOnlySpan<char> text, int start, int count, out int value)
    {
        value = 0;
        if (start + count > text.Length)
        {
            return false;
        }

        for (var i = start; i < start + count; i++)
        {
            var digit = text[i] - '0';
            if ((uint)digit > 9)
            {
                return false;
            }

            value = value * 10 + digit;
        }

        return true;
    }

    private static bool IsValidDate(int year, int month, int day) =>
        year >= 1 && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year, month);

    /// <summary>Writes an instant as ISO-8601 UTC with Z, keeping the source's fractional precision (never less than seconds).</summary>
    public static string FormatUtc(Instant instant, int fractionDigits) => FormatUtc(instant, fractionDigits, TimestampOutputFormat.Iso8601Z);

    /// <summary>An instant as text in the chosen output format (digits truncated, as the source had them, up to 7).</summary>
    public static string FormatUtc(Instant instant, int fractionDigits, TimestampOutputFormat format)
    {
        Span<byte> buffer = stackalloc byte[MaxFormattedLength];
        if (!TryWriteUtc(instant.ToUnixTimeTicks(), fractionDigits, format, buffer, out var written))
        {
            // Outside 0001-9999 after the shift: NodaTime's own pattern copes.
            var pattern = "uuuu'-'MM'-'dd'T'HH':'mm':'ss" + (fractionDigits > 0 ? "'.'" + new string('f', Math.Clamp(fractionDigits, 0, 7)) : string.Empty) + "'Z'";
            var iso = instant.InUtc().LocalDateTime.ToString(pattern, CultureInfo.InvariantCulture);
            return format == TimestampOutputFormat.Native ? iso.Replace('T', ' ')[..^1] + "+00:00" : iso;
        }

        return System.Text.Encoding.ASCII.GetString(buffer[..written]);
    }

    /// <summary>Room for any formatted value ("yyyy-MM-dd HH:mm:ss.fffffff+00:00" is 33; NodaTime's signed years a little more).</summary>
    public const int MaxFormattedLength = 40;

    /// <summary>
    /// Writes UTC ticks since 1970 as ASCII without allocating; false when the year is outside 1-9999.
    /// Iso8601Z: "2024-03-10T07:30:00.123Z"; Native: "2024-03-10 07:30:00.123+00:00".
    /// </summary>
    public static bool TryWriteUtc(long unixTicks, int fractionDigits, TimestampOutputFormat format, Span<byte> destination, out int written)
    {
        written = 0;
        var ticks = unixTicks + DateTime.UnixEpoch.Ticks;
        if (ticks < 0 || ticks > DateTime.MaxValue.Ticks || destination.Length < MaxFormattedLength)
        {
            return false;
        }

        var utc = new DateTime(ticks, DateTimeKind.Utc);
        utc.Deconstruct(out int year, out int month, out int day);
        var timeOfDay = ticks % TimeSpan.TicksPerDay;
        var seconds = (int)(timeOfDay / TimeSpan.TicksPerSecond);
        var fraction = (int)(timeOfDay % TimeSpan.TicksPerSecond);
        WritePair(destination, 0, year / 100);
        WritePair(destination, 2, year % 100);
        destination[4] = (byte)'-';
        WritePair(destination, 5, month);
        destination[7] = (byte)'-';
        WritePair(destination, 8, day);
        destination[10] = format == TimestampOutputFormat.Native ? (byte)' ' : (byte)'T';
        WritePair(destination, 11, seconds / 3600);
        destination[13] = (byte)':';
        WritePair(destination, 14, seconds / 60 % 60);
        destination[16] = (byte)':';
        WritePair(destination, 17, seconds % 60);
        var i = 19;
        var digits = Math.Clamp(fractionDigits, 0, 7);
        if (digits > 0)
        {
            destination[i++] = (byte)'.';
            Write(destination, i, fraction / Pow10[7 - digits], digits);
            i += digits;
        }

        if (format == TimestampOutputFormat.Native)
        {
            "+00:00"u8.CopyTo(destination[i..]);
            i += 6;
        }
        else
        {
            destination[i++] = (byte)'Z';
        }

        written = i;
        return true;
    }

    private static readonly int[] Pow10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

    /// <summary>"00" to "99", so each two digits are one lookup instead of two divisions.</summary>
    private static ReadOnlySpan<byte> Pairs => "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"u8;

    private static void WritePair(Span<byte> destination, int start, int value)
    {
        destination[start] = Pairs[value * 2];
        destination[start + 1] = Pairs[value * 2 + 1];
    }

    private static void Write(Span<byte> destination, int start, int value, int width)
    {
        for (var i = start + width - 1; i >= start; i--)
        {
            destination[i] = (byte)('0' + value % 10);
            value /= 10;
        }
    }
}
