using System.Globalization;

namespace DbMigration.IO;

/// <summary>Free space and writability of folders.</summary>
internal static class DiskSpace
{
    public static string? NearestExistingDirectory(string path)
    {
        for (var dir = Path.GetFullPath(path); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            if (Directory.Exists(dir))
            {
                return dir;
            }
        }

        return null;
    }

    /// <summary>Bytes available to this user on the file system holding <paramref name="directory"/>.</summary>
    public static long AvailableBytes(string directory) => new DriveInfo(directory).AvailableFreeSpace;
}

internal static class DirectoryProbe
{
    /// <summary>
    /// Returns why <paramref name="directory"/> is not writable, or null when it is. Mode bits are read first because
    /// root writes anyway: a folder made read-only is a mistake to stop on, even for root.
    /// </summary>
    public static string? CheckWritable(string directory)
    {
        if (!OperatingSystem.IsWindows())
        {
            const UnixFileMode anyWrite = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
            var mode = File.GetUnixFileMode(directory);
            if ((mode & anyWrite) == 0)
            {
                return $"'{directory}' is read-only (mode {Providers.Sqlite.SqliteProvider.FormatMode(mode)}).";
            }
        }

        var probe = Path.Combine(directory, ".dbmigration-write-probe-" + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture));
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }

            return null;
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            return $"'{directory}' is not writable: {ex.Message}";
        }
    }
}

/// <summary>Human-readable byte sizes.</summary>
public static class ByteSize
{
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }
}
