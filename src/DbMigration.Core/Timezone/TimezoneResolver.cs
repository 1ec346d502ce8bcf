using DbMigration.Errors;
using NodaTime;
using NodaTime.TimeZones;

namespace DbMigration.Timezone;

/// <summary>
/// Finds a zone by IANA or Windows id in NodaTime's embedded tzdb, so results are the same on every OS. An unknown
/// id gets an error that suggests the closest known ones.
/// </summary>
public static class TimezoneResolver
{
    public static string TzdbVersion => TzdbDateTimeZoneSource.Default.TzdbVersion;

    public static DateTimeZone Resolve(string id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        var source = TzdbDateTimeZoneSource.Default;
        var trimmed = id.Trim();
        var zone = DateTimeZoneProviders.Tzdb.GetZoneOrNull(trimmed);
        if (zone is not null)
        {
            return zone;
        }

        // Windows ids ("Eastern Standard Time") through CLDR's mapping.
        if (source.WindowsMapping.PrimaryMapping.TryGetValue(trimmed, out var ianaId))
        {
            return DateTimeZoneProviders.Tzdb[ianaId];
        }

        var caseInsensitive = source.ZoneLocations?.Select(l => l.ZoneId).Concat(DateTimeZoneProviders.Tzdb.Ids)
            .FirstOrDefault(z => string.Equals(z, trimmed, StringComparison.OrdinalIgnoreCase));
        if (caseInsensitive is not null)
        {
            return DateTimeZoneProviders.Tzdb[caseInsensitive];
        }

        throw new DbMigrationException(ErrorIds.TimezoneUnknownZone, ErrorKind.InvalidArgument,
            $"'{id}' is not a known IANA or Windows time zone (tzdb {TzdbVersion}). Did you mean: {string.Join(", ", Suggest(trimmed))}?");
    }

    /// <summary>Every id <see cref="Resolve"/> accepts as written: the tzdb's IANA ids, then the Windows ids it maps.</summary>
    public static IEnumerable<string> KnownIds =>
        DateTimeZoneProviders.Tzdb.Ids.Concat(TzdbDateTimeZoneSource.Default.WindowsMapping.PrimaryMapping.Keys.Order(StringComparer.Ordinal)).Distinct();

    /// <summary>The closest zone ids by edit distance, preferring ids that contain the text.</summary>
    public static IReadOnlyList<string> Suggest(string text, int count = 3)
    {
        var candidates = KnownIds.ToList();
        var lower = text.ToLowerInvariant().Replace(' ', '_');
        return candidates
            .Select(c => (Id: c, Score: Distance(lower, c.ToLowerInvariant()) - (c.Contains(text, StringComparison.OrdinalIgnoreCase) ? 100 : 0)
                - (c.Split('/').Last().ToLowerInvariant() == lower.Split('/').Last() ? 50 : 0)))
            .OrderBy(c => c.Score)
            .ThenBy(c => c.Id, StringComparer.Ordinal)
            .Take(count)
            .Select(c => c.Id)
            .ToList();
    }

    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }
}
