using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using DbMigration.Errors;

namespace DbMigration.Backups;

/// <summary>Reads and writes backup.json. Writes go to a temp file that is renamed over the old one.</summary>
public static class BackupManifest
{
    public const string FileName = "backup.json";

    internal static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        // Generated metadata first: reflection-built serializers cost tens of milliseconds on a cold start.
        TypeInfoResolver = JsonTypeInfoResolver.Combine(DocumentJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };

    public static BackupInfo Read(string folder)
    {
        var path = System.IO.Path.Combine(folder, FileName);
        try
        {
            var info = BackupManifestReader.Parse(File.ReadAllBytes(path));
            // A secondary copy removed since (its own retention, a lost disk) is not offered.
            return info with { Path = folder, SecondaryPath = info.SecondaryPath is { } copy && Directory.Exists(copy) ? copy : null };
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException)
        {
            throw new DbMigrationException(ErrorIds.BackupCorrupt, ErrorKind.InvalidData, $"'{path}' is not a readable backup manifest: {ex.Message}", ex) { Target = path };
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound, $"No backup manifest at '{path}'.", ex) { Target = path };
        }
    }

    public static void Write(string folder, BackupInfo info)
    {
        var path = System.IO.Path.Combine(folder, FileName);
        var temp = path + ".tmp";
        using (var stream = SecureFiles.Create(temp))
        {
            JsonSerializer.Serialize(stream, info, Options);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }
}
