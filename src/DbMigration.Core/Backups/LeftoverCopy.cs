using System.Text.RegularExpressions;

namespace DbMigration.Backups;

/// <summary>What a copy left behind was for.</summary>
public enum LeftoverCopyKind
{
    /// <summary>A scratch copy Test-DatabaseBackup restored into.</summary>
    Verification,

    /// <summary>A copy Restore-MigrationBackup restored into, stopped before swapping it in.</summary>
    Restore,

    /// <summary>The database as it was before a restore swapped in its copy, left when the restore stopped after the swap.</summary>
    Replaced,
}

/// <summary>
/// A whole copy of a database left behind by a restore or verification that was stopped (killed, or a drop that
/// failed) before it cleaned up: a database on the server, or a file beside a SQLite database.
/// </summary>
/// <param name="Bytes">Its size, when this user may see it.</param>
/// <param name="InUse">A session is connected to it now: the restore or verification may still be running.</param>
public sealed record LeftoverCopy(string Name, LeftoverCopyKind Kind, long? Bytes, bool InUse);

/// <summary>The names restores and verifications give their copies of a server database.</summary>
internal static partial class LeftoverCopies
{
    internal const string VerifyPrefix = "dbm_verify";
    internal const string RestorePrefix = "dbm_restore";
    internal const string ReplacedPrefix = "dbm_old";

    /// <summary>
    /// What a run's copy names are hashed from: the backup and the run. Names from the backup alone made restoring the
    /// same backup again, after a restore that was stopped and left its copy, fail on "database exists".
    /// </summary>
    internal static string RunId(BackupInfo backup) => backup.Id + Guid.NewGuid().ToString("N");

    /// <summary>The kind of copy <paramref name="name"/> is of <paramref name="database"/>, or null for any other database.</summary>
    internal static LeftoverCopyKind? KindOf(string name, string database)
    {
        foreach (var (prefix, kind) in new[] { (VerifyPrefix, LeftoverCopyKind.Verification), (RestorePrefix, LeftoverCopyKind.Restore), (ReplacedPrefix, LeftoverCopyKind.Replaced) })
        {
            // ShortName: the prefix, the database name's first 40 characters and 8 hex digits of a hash.
            var start = PostgreSqlBackupStrategy.ShortName(prefix, database, string.Empty)[..^8];
            if (name.Length == start.Length + 8 && name.StartsWith(start, StringComparison.OrdinalIgnoreCase) && HashSuffix().IsMatch(name[start.Length..]))
            {
                return kind;
            }
        }

        return null;
    }

    [GeneratedRegex("^[0-9a-f]{8}$")]
    private static partial Regex HashSuffix();
}
