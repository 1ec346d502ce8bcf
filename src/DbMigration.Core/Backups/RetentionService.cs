using System.Globalization;

namespace DbMigration.Backups;

public sealed record RetentionPolicy(int KeepLast, int KeepDaily, int KeepWeekly, int KeepMonthly);

/// <summary>
/// Grandfather-father-son retention over backup time: keep the newest <c>KeepLast</c>, the newest backup of each of
/// the last <c>KeepDaily</c> days, <c>KeepWeekly</c> ISO weeks and <c>KeepMonthly</c> months that have backups. The
/// newest verified backup of each database is never removed. Databases are told apart by name and source, so two
/// servers' same-named databases in one repository each keep their own set.
/// </summary>
public sealed class RetentionService
{
    /// <summary>Decides what to remove; nothing is touched.</summary>
    public IReadOnlyList<(BackupInfo Backup, string Reason)> Plan(IReadOnlyList<BackupInfo> backups, RetentionPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(backups);
        var removals = new List<(BackupInfo, string)>();
        foreach (var database in backups.GroupBy(b => (Name: b.Database.ToUpperInvariant(), Source: b.SourceIdentity)))
        {
            var newestFirst = database.OrderByDescending(b => b.CreatedUtc).ThenByDescending(b => b.Id, StringComparer.Ordinal).ToList();
            var keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var b in newestFirst.Take(policy.KeepLast))
            {
                keep.Add(b.Id);
            }

            KeepPerPeriod(newestFirst, policy.KeepDaily, b => b.CreatedUtc.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), keep);
            KeepPerPeriod(newestFirst, policy.KeepWeekly, b => $"{ISOWeek.GetYear(b.CreatedUtc.UtcDateTime)}-W{ISOWeek.GetWeekOfYear(b.CreatedUtc.UtcDateTime):00}", keep);
            KeepPerPeriod(newestFirst, policy.KeepMonthly, b => b.CreatedUtc.UtcDateTime.ToString("yyyy-MM", CultureInfo.InvariantCulture), keep);
            var newestVerified = newestFirst.FirstOrDefault(b => b.Verification.Status == VerificationStatus.Passed);
            if (newestVerified is not null)
            {
                keep.Add(newestVerified.Id);
            }

            foreach (var backup in newestFirst.Where(b => !keep.Contains(b.Id)))
            {
                removals.Add((backup, $"Outside the policy (last {policy.KeepLast}, {policy.KeepDaily} daily, {policy.KeepWeekly} weekly, {policy.KeepMonthly} monthly)."));
            }
        }

        return removals;
    }

    private static void KeepPerPeriod(List<BackupInfo> newestFirst, int count, Func<BackupInfo, string> period, HashSet<string> keep)
    {
        foreach (var group in newestFirst.GroupBy(period).Take(count))
        {
            keep.Add(group.First().Id);
        }
    }

    /// <summary>Deletes a backup folder from the primary and secondary repositories.</summary>
    public static IReadOnlyList<string> Remove(BackupInfo backup, string? secondaryRoot)
    {
        var removed = new List<string>();
        foreach (var folder in new[] { backup.Path, secondaryRoot is null ? null : new BackupRepository(secondaryRoot).BackupFolder(backup.Database, backup.Id) })
        {
            if (folder is not null && Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
                removed.Add(folder);
            }
        }

        return removed;
    }
}
