using System.Data.Common;
using Npgsql;
using Npgsql.PostgresTypes;
using NpgsqlTypes;

namespace DbMigration.Providers.PostgreSql;

/// <summary>
/// Reads the result values whose Npgsql conversion would refuse or change them, alone or in arrays of any shape (NULL
/// elements kept):
/// <list type="bullet">
/// <item>an interval, as TimeSpan when it has no months, else as a NodaTime Period (a month is 28 to 31 days).
/// Npgsql's TimeSpan refuses positive months and silently drops negative ones: '-1 year' read as zero;</item>
/// <item>±infinity in a timestamp, timestamptz or date, as the strings "infinity" and "-infinity". Npgsql reads them
/// as DateTime.MaxValue and MinValue, and the latter is also a real '0001-01-01 00:00:00'. In arrays only infinity
/// is told apart (see <see cref="InfinityInArray"/>); arrays of timestamps could not be read at all before.</item>
/// </list>
/// </summary>
internal static class PostgresValueReaders
{
    /// <summary>The reader for one result column, or null when the driver's own value is exact.</summary>
    public static Func<DbDataReader, int, object>? For(NpgsqlDataReader reader, int ordinal)
    {
        var type = reader.GetPostgresType(ordinal);
        var array = type is PostgresArrayType;
        return ((type as PostgresArrayType)?.Element ?? type).InternalName switch
        {
            "interval" => array ? (r, i) => MapArray<NpgsqlInterval>(r, i, FromInterval) : (r, i) => FromInterval(r.GetFieldValue<NpgsqlInterval>(i)),
            "timestamp" or "timestamptz" => array ? (r, i) => MapArray<DateTime>(r, i, InfinityInArray) : ReadTimestamp,
            "date" when !array => ReadDate,
            _ => null,
        };
    }

    private static object ReadTimestamp(DbDataReader reader, int ordinal) => reader.GetFieldValue<long>(ordinal) switch
    {
        long.MaxValue => "infinity",
        long.MinValue => "-infinity",
        _ => reader.GetValue(ordinal),
    };

    /// <summary>
    /// In an array Npgsql gives only its DateTime, where infinity is MaxValue (no real timestamp ends in a seventh
    /// decimal) and -infinity is MinValue, which a real '0001-01-01 00:00:00' is too: that one is left as it is.
    /// </summary>
    private static object InfinityInArray(DateTime value) => value == DateTime.MaxValue ? "infinity" : value;

    private static object ReadDate(DbDataReader reader, int ordinal) => reader.GetFieldValue<int>(ordinal) switch
    {
        int.MaxValue => "infinity",
        int.MinValue => "-infinity",
        _ => reader.GetValue(ordinal),
    };

    private static object FromInterval(NpgsqlInterval interval)
    {
        var microseconds = interval.Time;
        if (interval.Months == 0)
        {
            return new TimeSpan(interval.Days * TimeSpan.TicksPerDay + microseconds * 10);
        }

        return new NodaTime.PeriodBuilder
        {
            Years = interval.Months / 12,
            Months = interval.Months % 12,
            Days = interval.Days,
            Hours = microseconds / 3_600_000_000,
            Minutes = microseconds / 60_000_000 % 60,
            Seconds = microseconds / 1_000_000 % 60,
            Ticks = microseconds % 1_000_000 * 10,
        }.Build();
    }

    /// <summary>An array of raw values mapped element by element into an object array of the same shape.</summary>
    private static object MapArray<TRaw>(DbDataReader reader, int ordinal, Func<TRaw, object> map)
        where TRaw : struct
    {
        // The reader must be asked for an array of the value's own rank, which each value carries for itself.
        Array array;
        try
        {
            array = reader.GetFieldValue<TRaw?[]>(ordinal);
        }
        catch (InvalidCastException)
        {
            try
            {
                array = reader.GetFieldValue<TRaw?[,]>(ordinal);
            }
            catch (InvalidCastException)
            {
                array = reader.GetFieldValue<TRaw?[,,]>(ordinal);
            }
        }

        var lengths = Enumerable.Range(0, array.Rank).Select(array.GetLength).ToArray();
        var converted = Array.CreateInstance(typeof(object), lengths);
        var index = new int[array.Rank];
        foreach (var element in array)
        {
            converted.SetValue(element is TRaw value ? map(value) : null, index);
            // The next index in row-major order, the order in which a multi-dimensional array enumerates.
            for (var d = array.Rank - 1; d >= 0 && ++index[d] == lengths[d] && d > 0; d--)
            {
                index[d] = 0;
            }
        }

        return converted;
    }
}
