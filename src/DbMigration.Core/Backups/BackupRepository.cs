using System.Globalization;
using System.Security.Cryptography;
using DbMigration.Errors;

namespace DbMigration.Backups;

/// <summary>
/// The on-disk catalog: &lt;root&gt;/&lt;database&gt;/&lt;backup-id&gt;/. A backup is written into a hidden
/// ".partial-…" folder and renamed into place only when complete, so the catalog never lists a half backup.
/// </summary>
public sealed class BackupRepository
{
    private const string PartialPrefix = ".partial-";

    public BackupRepository(string root)
    {
        if (string.IsNullOrWhiteSpace(root))
        {
            throw new DbMigrationException(ErrorIds.BackupDestinationNotWritable, ErrorKind.InvalidArgument, "A backup path is required.");
        }

        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>For readers of the catalog: a repository that does not exist is most likely a mistyped path, not an empty one.</summary>
    public void EnsureExists()
    {
        if (!Directory.Exists(Root))
        {
            throw new DbMigrationException(ErrorIds.BackupRepositoryNotFound, ErrorKind.ObjectNotFound,
                $"The backup repository '{Root}' does not exist; check -Path (Backup-Database creates it with the first backup).")
            { Target = Root };
        }
    }

    /// <summary>A sortable UTC timestamp plus a short random suffix: 20261121T024600123Z-3fa9c1.</summary>
    public static string NewId(DateTimeOffset now) =>
        now.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture) + "-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    public static string SafeName(string database)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var safe = new string(database.Select(c => invalid.Contains(c) || c is '/' or '\\' or ':' ? '_' : c).ToArray()).Trim('.', ' ');
        return safe.Length == 0 ? "database" : safe;
    }

    public string DatabaseFolder(string database) => Path.Combine(Root, SafeName(database));

    public string BackupFolder(string database, string id) => Path.Combine(DatabaseFolder(database), id);

    /// <summary>
    /// Refuses a repository that cannot be written (read-only, below a file, no permission) before anything is
    /// written anywhere; creates its folders, as the first backup would.
    /// </summary>
    internal void EnsureWritable(string database)
    {
        // Mode bits first: root writes through them, but a repository someone made read-only is not to be used.
        var existing = IO.DiskSpace.NearestExistingDirectory(Root);
        if (existing is not null && IO.DirectoryProbe.CheckWritable(existing) is { } problem)
        {
            throw NotWritable(problem);
        }

        try
        {
            SecureFiles.CreateDirectory(Root);
            SecureFiles.CreateDirectory(DatabaseFolder(database));
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw NotWritable(ex.Message, ex);
        }

        if (IO.DirectoryProbe.CheckWritable(DatabaseFolder(database)) is { } folderProblem)
        {
            throw NotWritable(folderProblem);
        }
    }

    internal string BeginPartial(string database, string id)
    {
        EnsureWritable(database);
        try
        {
            var partial = Path.Combine(DatabaseFolder(database), PartialPrefix + id);
            SecureFiles.CreateDirectory(partial);
            return partial;
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw NotWritable(ex.Message, ex);
        }
    }

    private DbMigrationException NotWritable(string why, Exception? inner = null) =>
        new(ErrorIds.BackupDestinationNotWritable, ErrorKind.PermissionDenied, $"Cannot write backups to '{Root}': {why}", inner) { Target = Root };

    internal string Publish(string partial, string database, string id)
    {
        var final = BackupFolder(database, id);
        Directory.Move(partial, final);
        SecureFiles.FlushDirectory(DatabaseFolder(database));
        return final;
    }

    /// <summary>
    /// Removes partial folders left by backups that were killed; they were never in the catalog. A folder counts as
    /// abandoned when nothing in it was written for <paramref name="olderThan"/>: a live backup of a large database
    /// writes its snapshot for hours while the folder's own time stays at its start, and another backup of the same
    /// database (the next night's, say) must not remove it. Times, not locks, so that it holds on a share another
    /// host writes to.
    /// </summary>
    internal static void RemoveStalePartials(string databaseFolder, TimeSpan olderThan)
    {
        if (!Directory.Exists(databaseFolder))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(databaseFolder, PartialPrefix + "*"))
        {
            if (DateTime.UtcNow - LastWriteUtc(dir) > olderThan)
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>The latest write to a folder or anything in it.</summary>
    private static DateTime LastWriteUtc(string folder)
    {
        var latest = Directory.GetLastWriteTimeUtc(folder);
        try
        {
            foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
            {
                latest = entry.LastWriteTimeUtc > latest ? entry.LastWriteTimeUtc : latest;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Being written or removed right now: not abandoned.
            return DateTime.UtcNow;
        }

        return latest;
    }

    /// <summary>Every complete backup, oldest first; unreadable manifests are skipped and reported to <paramref name="onError"/>.</summary>
    public IReadOnlyList<BackupInfo> List(string? database = null, Action<DbMigrationException>? onError = null)
    {
        if (!Directory.Exists(Root))
        {
            return [];
        }

        var folders = database is null
            ? Directory.EnumerateDirectories(Root).Where(d => !Path.GetFileName(d).StartsWith('.'))
            : [DatabaseFolder(database)];
        var result = new List<BackupInfo>();
        foreach (var dbFolder in folders.Where(Directory.Exists))
        {
            foreach (var backup in Directory.EnumerateDirectories(dbFolder).Where(d => !Path.GetFileName(d).StartsWith('.')))
            {
                if (!File.Exists(Path.Combine(backup, BackupManifest.FileName)))
                {
                    continue;
                }

                try
                {
                    result.Add(BackupManifest.Read(backup));
                }
                catch (DbMigrationException ex)
                {
                    onError?.Invoke(ex);
                }
            }
        }

        return result.OrderBy(b => b.CreatedUtc).ThenBy(b => b.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The newest backup taken from <paramref name="target"/> itself (the emergency rollback's choice). Backups of a
    /// same-named database on another server or file are never chosen silently: when only those exist, the error
    /// names the newest of each, ready to restore by id.
    /// </summary>
    public BackupInfo Latest(Targets.DatabaseTarget target, BackupCategory? category)
    {
        ArgumentNullException.ThrowIfNull(target);
        var named = List(target.Name).Where(b => category is null || b.Category == category).ToList();
        if (named.LastOrDefault(b => b.MayComeFrom(target)) is { } own)
        {
            return own;
        }

        var kind = category is null ? string.Empty : category + " ";
        if (named.Count == 0)
        {
            throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound, $"No {kind}backup of '{target.Name}' under '{Root}'.") { Target = Root };
        }

        var others = named.GroupBy(b => b.SourceIdentity).Select(g => g.Last()).OrderByDescending(b => b.CreatedUtc)
            .Select(b => $"{b.Id} (taken {b.CreatedUtc:u} from {b.Source})");
        throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound,
            $"No {kind}backup under '{Root}' was taken from {target}. Backups of a database named '{target.Name}' from elsewhere are not chosen on their own; the newest of each: {string.Join("; ", others)}. To restore one of them onto {target}, name it with -Id.")
        { Target = Root };
    }

    public BackupInfo Get(string id, string? database = null)
    {
        var match = List(database).Where(b => b.Id == id).ToList();
        return match.Count switch
        {
            1 => match[0],
            0 => throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound, $"No backup with id '{id}' under '{Root}'.") { Target = Root },
            _ => throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.InvalidArgument, $"Backup id '{id}' exists for several databases under '{Root}'; name the database.") { Target = Root },
        };
    }
}
