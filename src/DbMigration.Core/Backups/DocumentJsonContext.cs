using System.Text.Json.Serialization;
using DbMigration.Timezone;

namespace DbMigration.Backups;

/// <summary>
/// Compile-time JSON metadata for the documents DbMigration writes on every run (backup.json, the timezone report),
/// so a cold process does not build serializers by reflection. The options match <see cref="BackupManifest.Options"/>.
/// </summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(BackupInfo))]
[JsonSerializable(typeof(TimezoneReport))]
internal sealed partial class DocumentJsonContext : JsonSerializerContext;
