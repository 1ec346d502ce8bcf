namespace DbMigration.Backups;

/// <summary>
/// An owner-only folder in the system temp folder for one operation's extracted, decompressed or decrypted files.
/// A process killed mid-restore or mid-verification cannot remove its folder, and what it leaves is a whole copy of
/// the database, decrypted if the backup was encrypted. So the owner holds an exclusive lock on a file inside for
/// as long as the folder lives; the OS releases it when the process dies, whatever killed it. Each new folder first
/// removes the folders whose lock nobody holds.
/// </summary>
internal sealed class TempWorkFolder : IDisposable
{
    internal const string OwnerFileName = ".owner";

    /// <summary>The kinds of folder this class makes, each a prefix of the folder's name.</summary>
    internal static readonly string[] Kinds = ["dbm-restore-", "dbm-verify-", "dbm-toc-"];

    /// <summary>A folder made without its owner file (killed between the two) is left alone this long.</summary>
    private static readonly TimeSpan UnownedGrace = TimeSpan.FromHours(1);

    private readonly FileStream _owner;

    private TempWorkFolder(string path, FileStream owner)
    {
        Path = path;
        _owner = owner;
    }

    public string Path { get; }

    /// <summary>Removes what killed runs left, then makes a new folder whose name starts with <paramref name="kind"/>.</summary>
    public static TempWorkFolder Create(string kind, string? root = null)
    {
        if (!Kinds.Contains(kind, StringComparer.Ordinal))
        {
            throw new ArgumentException($"Unknown temp folder kind {kind}.", nameof(kind));
        }

        root ??= System.IO.Path.GetTempPath();
        RemoveAbandoned(root);
        var path = System.IO.Path.Combine(root, kind + Guid.NewGuid().ToString("N"));
        SecureFiles.CreateDirectory(path);
        try
        {
            return new TempWorkFolder(path, SecureFiles.Create(System.IO.Path.Combine(path, OwnerFileName), bufferSize: 0));
        }
        catch
        {
            BackupService.TryDelete(path);
            throw;
        }
    }

    /// <summary>Folders of these kinds under <paramref name="root"/> whose owner is gone; returns how many were removed.</summary>
    internal static int RemoveAbandoned(string root)
    {
        if (!Directory.Exists(root))
        {
            return 0;
        }

        var removed = 0;
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(root, "dbm-*").Where(d => Kinds.Any(k => System.IO.Path.GetFileName(d).StartsWith(k, StringComparison.Ordinal))).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }

        foreach (var folder in candidates)
        {
            if (IsAbandoned(folder))
            {
                BackupService.TryDelete(folder);
                removed += Directory.Exists(folder) ? 0 : 1;
            }
        }

        return removed;
    }

    private static bool IsAbandoned(string folder)
    {
        var owner = System.IO.Path.Combine(folder, OwnerFileName);
        try
        {
            // Opening it exclusively succeeds only when no live process holds it. Another user's folder is not
            // readable here and is left alone.
            using var probe = new FileStream(owner, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            return true;
        }
        catch (FileNotFoundException)
        {
            return DateTime.UtcNow - Directory.GetLastWriteTimeUtc(folder) > UnownedGrace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _owner.Dispose();
        BackupService.TryDelete(Path);
    }
}
