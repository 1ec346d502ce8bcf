using System.Globalization;
using DbMigration.Errors;

namespace DbMigration.Backups;

public sealed record RetentionPolicy(int KeepLast, int KeepDaily, int KeepWeekly, int KeepMonthly);

/// <summary>
/// What Invoke-BackupRetention applies the policy to: a repository (and its secondary), optionally one database's
/// backups (by name) and only some categories.
/// </summary>
public sealed record RetentionRequest(string Path, RetentionPolicy Policy)
{
    public string? SecondaryPath { get; init; }

    public string? Database { get; init; }

    /// <summary>Empty: every category.</summary>
    public IReadOnlyList<BackupCategory> Categories { get; init; } = [];
}

/// <summary>
/// Grandfather-father-son retention over backup time: keep the newest <c>KeepLast</c>, the newest backup of each of
/// the last <c>KeepDaily</c> days, <c>KeepWeekly</c> ISO weeks and <c>KeepMonthly</c> months that have backups. The
/// newest verified backup of each database is never removed. Databases are told apart by name and source, so two
/// servers' same-named databases in one repository each keep their own set.
/// </summary>
public sealed class RetentionService
{
    /// <summary>
    /// Reads the repositories and decides what to remove; nothing is touched. A backup whose manifest cannot be read
    /// goes to <paramref name="onUnreadable"/> and is left alone.
    /// </summary>
    public IReadOnlyList<(BackupInfo Backup, string Reason)> Plan(RetentionRequest request, Action<DbMigrationException>? onUnreadable = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var repository = new BackupRepository(request.Path);
        repository.EnsureExists();
        var backups = repository.List(request.Database, onUnreadable).ToList();
        if (request.SecondaryPath is not null)
        {
            // A mistyped secondary is an error before anything is removed; copies whose primary an earlier run
            // removed (without -SecondaryPath) are under the policy too.
            var copies = new BackupRepository(request.SecondaryPath);
            copies.EnsureExists();
            var primaryIds = backups.Select(b => b.Id).ToHashSet(StringComparer.Ordinal);
            backups.AddRange(copies.List(request.Database, onUnreadable).Where(b => !primaryIds.Contains(b.Id)));
        }

        // Scoped to the scheduled categories, a nightly run keeps the PreMigration and Manual backups kept for a rollback.
        if (request.Categories.Count > 0)
        {
            backups.RemoveAll(b => !request.Categories.Contains(b.Category));
        }

        return Plan(backups, request.Policy);
    }

    /// <summary>Decides what to remove from a list of backups; nothing is touched.</summary>
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
