using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>Maps text-protocol values to CLR types by column type, flags and character set.</summary>
internal static class TextValueParser
{
    private const int MaxSystemDecimalPrecision = 28;

    public static Type FieldType(ColumnDefinition column, ConnectionSettings settings) => column.Type switch
    {
        ColumnType.Tiny when settings.TreatTinyAsBoolean && column.Length == 1 => typeof(bool),
        ColumnType.Tiny => column.IsUnsigned ? typeof(byte) : typeof(sbyte),
        ColumnType.Short => column.IsUnsigned ? typeof(ushort) : typeof(short),
        ColumnType.Int24 or ColumnType.Long => column.IsUnsigned ? typeof(uint) : typeof(int),
        ColumnType.LongLong => column.IsUnsigned ? typeof(ulong) : typeof(long),
        ColumnType.Year => typeof(int),
        ColumnType.Float => typeof(float),
        ColumnType.Double => typeof(double),
        ColumnType.Decimal or ColumnType.NewDecimal => Precision(column) <= MaxSystemDecimalPrecision ? typeof(decimal) : typeof(MySqlDecimal),
        ColumnType.Bit => column.Length == 1 ? typeof(bool) : typeof(ulong),
        ColumnType.Date or ColumnType.NewDate or ColumnType.DateTime or ColumnType.DateTime2 or ColumnType.Timestamp or ColumnType.Timestamp2 => typeof(DateTime),
        ColumnType.Time or ColumnType.Time2 => typeof(TimeSpan),
        ColumnType.Json or ColumnType.Enum or ColumnType.Set => typeof(string),
        ColumnType.Geometry => typeof(byte[]),
        ColumnType.Null => typeof(object),
        _ => column.IsBinary ? typeof(byte[]) : typeof(string),
    };

    public static string DataTypeName(ColumnDefinition column) => column.Type switch
    {
        ColumnType.Tiny => "TINYINT",
        ColumnType.Short => "SMALLINT",
        ColumnType.Int24 => "MEDIUMINT",
        ColumnType.Long => "INT",
        ColumnType.LongLong => "BIGINT",
        ColumnType.Year => "YEAR",
        ColumnType.Float => "FLOAT",
        ColumnType.Double => "DOUBLE",
        ColumnType.Decimal or ColumnType.NewDecimal => "DECIMAL",
        ColumnType.Bit => "BIT",
        ColumnType.Date or ColumnType.NewDate => "DATE",
        ColumnType.DateTime or ColumnType.DateTime2 => "DATETIME",
        ColumnType.Timestamp or ColumnType.Timestamp2 => "TIMESTAMP",
        ColumnType.Time or ColumnType.Time2 => "TIME",
        ColumnType.Json => "JSON",
        ColumnType.Enum => "ENUM",
        ColumnType.Set => "SET",
        ColumnType.Geometry => "GEOMETRY",
        ColumnType.TinyBlob or ColumnType.MediumBlob or ColumnType.LongBlob or ColumnType.Blob => column.IsBinary ? "BLOB" : "TEXT",
        ColumnType.String => column.IsBinary ? "BINARY" : "CHAR",
        _ => column.IsBinary ? "VARBINARY" : "VARCHAR",
    };

    /// <summary>DECIMAL(M,D) is sent with length M plus one for the point and one for the sign.</summary>
    public static int Precision(ColumnDefinition column) =>
        (int)column.Length - (column.Decimals > 0 ? 1 : 0) - (column.IsUnsigned ? 0 : 1);

    public static object Parse(ColumnDefinition column, ReadOnlySpan<byte> data, ConnectionSettings settings)
    {
        switch (column.Type)
        {
            case ColumnType.Tiny:
                var tiny = ParseInt64(data);
                return settings.TreatTinyAsBoolean && column.Length == 1 ? tiny != 0 : column.IsUnsigned ? (byte)tiny : (sbyte)tiny;
            case ColumnType.Short:
                return column.IsUnsigned ? (ushort)ParseInt64(data) : (short)ParseInt64(data);
            case ColumnType.Int24:
            case ColumnType.Long:
                return column.IsUnsigned ? (uint)ParseInt64(data) : (int)ParseInt64(data);
            case ColumnType.LongLong:
                return column.IsUnsigned ? ParseUInt64(data) : ParseInt64(data);
            case ColumnType.Year:
                return (int)ParseInt64(data);
            case ColumnType.Float:
                return float.Parse(Ascii(data), NumberStyles.Float, CultureInfo.InvariantCulture);
            case ColumnType.Double:
                return Utf8Parser.TryParse(data, out double d, out var used) && used == data.Length
                    ? d
                    : double.Parse(Ascii(data), NumberStyles.Float, CultureInfo.InvariantCulture);
            case ColumnType.Decimal:
            case ColumnType.NewDecimal:
                if (Precision(column) <= MaxSystemDecimalPrecision)
                {
                    return Utf8Parser.TryParse(data, out decimal m, out var usedDecimal) && usedDecimal == data.Length
                        ? m
                        : decimal.Parse(Ascii(data), NumberStyles.Number, CultureInfo.InvariantCulture);
                }

                return new MySqlDecimal(Ascii(data));
            case ColumnType.Bit:
                ulong bits = 0;
                foreach (var b in data)
                {
                    bits = bits << 8 | b;
                }

                return column.Length == 1 ? bits != 0 : bits;
            case ColumnType.Date:
            case ColumnType.NewDate:
            case ColumnType.DateTime:
            case ColumnType.DateTime2:
            case ColumnType.Timestamp:
            case ColumnType.Timestamp2:
                return ParseDateTime(data, settings);
            case ColumnType.Time:
            case ColumnType.Time2:
                return ParseTime(data);
            case ColumnType.Geometry:
                return data.ToArray();
            case ColumnType.Json:
            case ColumnType.Enum:
            case ColumnType.Set:
                return CharacterSets.ForCollation(column.Collation).GetString(data);
            default:
                return column.IsBinary ? data.ToArray() : CharacterSets.ForCollation(column.Collation).GetString(data);
        }
    }

    private static string Ascii(ReadOnlySpan<byte> data) => Encoding.ASCII.GetString(data);

    private static long ParseInt64(ReadOnlySpan<byte> data) =>
        Utf8Parser.TryParse(data, out long value, out var used) && used == data.Length
            ? value
            : throw new FormatException($"'{Ascii(data)}' is not an integer.");

    private static ulong ParseUInt64(ReadOnlySpan<byte> data) =>
        Utf8Parser.TryParse(data, out ulong value, out var used) && used == data.Length
            ? value
            : throw new FormatException($"'{Ascii(data)}' is not an unsigned integer.");

    private static int Digits(ReadOnlySpan<byte> data, int start, int count)
    {
        var value = 0;
        for (var i = start; i < start + count; i++)
        {
            var digit = data[i] - '0';
            if ((uint)digit > 9)
            {
                throw new FormatException($"'{Ascii(data)}' is not a valid date or time.");
            }

            value = value * 10 + digit;
        }

        return value;
    }

    /// <summary>"YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS[.ffffff]"; zero dates by the connection's policy.</summary>
    public static object ParseDateTime(ReadOnlySpan<byte> data, ConnectionSettings settings)
    {
        var year = Digits(data, 0, 4);
        var month = Digits(data, 5, 2);
        var day = Digits(data, 8, 2);
        if (year == 0 || month == 0 || day == 0)
        {
            return settings.ZeroDateTimeBehavior switch
            {
                MySqlZeroDateTimeBehavior.Null => DBNull.Value,
                MySqlZeroDateTimeBehavior.Text => Ascii(data),
                _ => throw new MySqlException(
                    $"The zero date '{Ascii(data)}' cannot be represented as a DateTime. Use Zero DateTime Behavior=Null to read such values as NULL, or Text to read them as text.",
                    MySqlClientError.ZeroDate),
            };
        }

        if (data.Length == 10)
        {
            return new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Unspecified);
        }

        var value = new DateTime(year, month, day, Digits(data, 11, 2), Digits(data, 14, 2), Digits(data, 17, 2), DateTimeKind.Unspecified);
        return data.Length > 20 ? value.AddTicks(FractionTicks(data[20..])) : value;
    }

    /// <summary>"[-]H+:MM:SS[.ffffff]", up to ±838:59:59.</summary>
    public static TimeSpan ParseTime(ReadOnlySpan<byte> data)
    {
        var negative = data[0] == '-';
        if (negative)
        {
            data = data[1..];
        }

        var colon = data.IndexOf((byte)':');
        var hours = Digits(data, 0, colon);
        var minutes = Digits(data, colon + 1, 2);
        var seconds = Digits(data, colon + 4, 2);
        var ticks = new TimeSpan(hours, minutes, seconds).Ticks;
        if (data.Length > colon + 7)
        {
            ticks += FractionTicks(data[(colon + 7)..]);
        }

        return new TimeSpan(negative ? -ticks : ticks);
    }

    /// <summary>Fractional seconds as sent (1 to 6 digits) to 100 ns ticks.</summary>
    private static long FractionTicks(ReadOnlySpan<byte> digits)
    {
        long micros = 0;
        for (var i = 0; i < 6; i++)
        {
            micros = micros * 10 + (i < digits.Length ? digits[i] - '0' : 0);
        }

        return micros * 10;
    }
}
