using System.Text.Json;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// Reads backup.json with <see cref="Utf8JsonReader"/> and maps it by hand. Every restore and catalog listing reads
/// manifests on a cold start, where System.Text.Json's serializer spent about 45 ms compiling its generic metadata for
/// BackupInfo; the plain reader is already compiled. It reads what <see cref="BackupManifest.Write"/> writes: unknown
/// properties are skipped, optional ones may be missing, a missing required one or a wrong type is a JsonException.
/// </summary>
internal static class BackupManifestReader
{
    public static BackupInfo Parse(ReadOnlySpan<byte> json)
    {
        if (json.StartsWith("\uFEFF"u8))
        {
            json = json[3..];
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        Next(ref reader);
        var info = ReadInfo(ref reader);
        if (reader.Read())
        {
            throw new JsonException($"Unexpected {reader.TokenType} after the manifest's closing brace.");
        }

        return info;
    }

    private static BackupInfo ReadInfo(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "the manifest");
        string? id = null, database = null, serverVersion = null, source = null, toolVersion = null, format = null, compressionMethod = null, secondaryPath = null, sourceFileMode = null;
        var contentHashVersion = 1;
        DatabaseEngine? engine = null;
        DateTimeOffset? created = null;
        BackupCategory? category = null;
        BackupCompression? compression = null;
        long? durationMs = null;
        List<string> tags = [];
        List<BackupFile>? files = null;
        List<TableSnapshot>? tables = null;
        BackupEncryption? encryption = null;
        var verification = new BackupVerificationState(VerificationStatus.NotVerified, null, null);
        while (NextProperty(ref reader) is { } name)
        {
            switch (name)
            {
                case "id": id = String(ref reader, name); break;
                case "database": database = String(ref reader, name); break;
                case "engine": engine = Enum<DatabaseEngine>(ref reader, name); break;
                case "serverVersion": serverVersion = String(ref reader, name); break;
                case "source": source = String(ref reader, name); break;
                case "createdUtc": created = Time(ref reader, name); break;
                case "category": category = Enum<BackupCategory>(ref reader, name); break;
                case "tags": tags = Array(ref reader, name, static (ref Utf8JsonReader r) => String(ref r, "tags[]")); break;
                case "toolVersion": toolVersion = String(ref reader, name); break;
                case "format": format = String(ref reader, name); break;
                case "files": files = Array(ref reader, name, ReadFile); break;
                case "tables": tables = Array(ref reader, name, ReadTable); break;
                case "compression": compression = Enum<BackupCompression>(ref reader, name); break;
                case "compressionMethod": compressionMethod = NullableString(ref reader, name); break;
                case "encryption": encryption = reader.TokenType == JsonTokenType.Null ? null : ReadEncryption(ref reader); break;
                case "durationMs": durationMs = Number(ref reader, name); break;
                case "verification": verification = ReadVerification(ref reader); break;
                case "secondaryPath": secondaryPath = NullableString(ref reader, name); break;
                case "sourceFileMode": sourceFileMode = NullableString(ref reader, name); break;
                case "contentHashVersion": contentHashVersion = (int)Number(ref reader, name); break;
                default: reader.Skip(); break;
            }
        }

        return new BackupInfo
        {
            Id = Required(id, "id"),
            Database = Required(database, "database"),
            Engine = Required(engine, "engine"),
            ServerVersion = Required(serverVersion, "serverVersion"),
            Source = Required(source, "source"),
            CreatedUtc = Required(created, "createdUtc"),
            Category = Required(category, "category"),
            Tags = tags,
            ToolVersion = Required(toolVersion, "toolVersion"),
            Format = Required(format, "format"),
            Files = Required(files, "files"),
            Tables = Required(tables, "tables"),
            Compression = Required(compression, "compression"),
            CompressionMethod = compressionMethod,
            Encryption = encryption,
            DurationMs = Required(durationMs, "durationMs"),
            Verification = verification,
            SecondaryPath = secondaryPath,
            SourceFileMode = sourceFileMode,
            ContentHashVersion = contentHashVersion,
        };
    }

    private static BackupFile ReadFile(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "files[]");
        string? name = null, sha256 = null, kind = null;
        long? size = null;
        while (NextProperty(ref reader) is { } property)
        {
            switch (property)
            {
                case "name": name = String(ref reader, "files[].name"); break;
                case "size": size = Number(ref reader, "files[].size"); break;
                case "sha256": sha256 = String(ref reader, "files[].sha256"); break;
                case "kind": kind = String(ref reader, "files[].kind"); break;
                default: reader.Skip(); break;
            }
        }

        return new BackupFile(Required(name, "files[].name"), Required(size, "files[].size"), Required(sha256, "files[].sha256"), Required(kind, "files[].kind"));
    }

    private static TableSnapshot ReadTable(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "tables[]");
        string? table = null, contentHash = null;
        long? rows = null;
        while (NextProperty(ref reader) is { } property)
        {
            switch (property)
            {
                case "table": table = String(ref reader, "tables[].table"); break;
                case "rows": rows = Number(ref reader, "tables[].rows"); break;
                case "contentHash": contentHash = String(ref reader, "tables[].contentHash"); break;
                default: reader.Skip(); break;
            }
        }

        return new TableSnapshot(Required(table, "tables[].table"), Required(rows, "tables[].rows"), Required(contentHash, "tables[].contentHash"));
    }

    private static BackupEncryption ReadEncryption(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "encryption");
        string? algorithm = null, keyDerivation = null, salt = null, keyCheck = null;
        long? iterations = null, chunkSize = null;
        while (NextProperty(ref reader) is { } property)
        {
            switch (property)
            {
                case "algorithm": algorithm = String(ref reader, "encryption.algorithm"); break;
                case "keyDerivation": keyDerivation = String(ref reader, "encryption.keyDerivation"); break;
                case "iterations": iterations = Number(ref reader, "encryption.iterations"); break;
                case "salt": salt = String(ref reader, "encryption.salt"); break;
                case "keyCheck": keyCheck = String(ref reader, "encryption.keyCheck"); break;
                case "chunkSize": chunkSize = Number(ref reader, "encryption.chunkSize"); break;
                default: reader.Skip(); break;
            }
        }

        return new BackupEncryption(
            Required(algorithm, "encryption.algorithm"),
            Required(keyDerivation, "encryption.keyDerivation"),
            Int(Required(iterations, "encryption.iterations"), "encryption.iterations"),
            Required(salt, "encryption.salt"),
            Required(keyCheck, "encryption.keyCheck"),
            Int(Required(chunkSize, "encryption.chunkSize"), "encryption.chunkSize"));
    }

    private static BackupVerificationState ReadVerification(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "verification");
        VerificationStatus? status = null;
        DateTimeOffset? verified = null;
        string? message = null, filesDigest = null;
        while (NextProperty(ref reader) is { } property)
        {
            switch (property)
            {
                case "status": status = Enum<VerificationStatus>(ref reader, "verification.status"); break;
                case "verifiedUtc": verified = reader.TokenType == JsonTokenType.Null ? null : Time(ref reader, "verification.verifiedUtc"); break;
                case "message": message = NullableString(ref reader, "verification.message"); break;
                case "filesDigest": filesDigest = NullableString(ref reader, "verification.filesDigest"); break;
                default: reader.Skip(); break;
            }
        }

        return new BackupVerificationState(Required(status, "verification.status"), verified, message, filesDigest);
    }

    private delegate T ItemReader<T>(ref Utf8JsonReader reader);

    private static List<T> Array<T>(ref Utf8JsonReader reader, string name, ItemReader<T> item)
    {
        Expect(ref reader, JsonTokenType.StartArray, name);
        var items = new List<T>();
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return items;
            }

            items.Add(item(ref reader));
        }
    }

    /// <summary>The next property's name, with the reader on its value; null at the object's end.</summary>
    private static string? NextProperty(ref Utf8JsonReader reader)
    {
        Next(ref reader);
        if (reader.TokenType == JsonTokenType.EndObject)
        {
            return null;
        }

        var name = reader.GetString()!;
        Next(ref reader);
        return name;
    }

    private static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new JsonException("The manifest ends early.");
        }
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string name)
    {
        if (reader.TokenType != type)
        {
            throw new JsonException($"'{name}' must be {(type == JsonTokenType.StartArray ? "an array" : "an object")}, not {reader.TokenType}.");
        }
    }

    private static string String(ref Utf8JsonReader reader, string name) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException($"'{name}' must be a string, not {reader.TokenType}.");

    private static string? NullableString(ref Utf8JsonReader reader, string name) =>
        reader.TokenType == JsonTokenType.Null ? null : String(ref reader, name);

    private static long Number(ref Utf8JsonReader reader, string name) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) ? value : throw new JsonException($"'{name}' must be a whole number, not {reader.TokenType}.");

    private static int Int(long value, string name) =>
        value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new JsonException($"'{name}' is out of range: {value}.");

    private static DateTimeOffset Time(ref Utf8JsonReader reader, string name) =>
        reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out var value) ? value : throw new JsonException($"'{name}' must be an ISO-8601 time.");

    /// <summary>An enum by name (any case, as the serializer reads them) or by number, and only a defined value.</summary>
    private static T Enum<T>(ref Utf8JsonReader reader, string name)
        where T : struct, Enum
    {
        object? value = null;
        if (reader.TokenType == JsonTokenType.String && System.Enum.TryParse(typeof(T), reader.GetString(), ignoreCase: true, out var parsed) && System.Enum.IsDefined(typeof(T), parsed!))
        {
            value = parsed;
        }
        else if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var number) && System.Enum.IsDefined(typeof(T), number))
        {
            value = System.Enum.ToObject(typeof(T), number);
        }

        return value is T known ? known : throw new JsonException($"'{name}' is not one of {string.Join(", ", System.Enum.GetNames(typeof(T)))}.");
    }

    private static T Required<T>(T? value, string name)
        where T : class =>
        value ?? throw new JsonException($"The manifest has no '{name}'.");

    private static T Required<T>(T? value, string name)
        where T : struct =>
        value ?? throw new JsonException($"The manifest has no '{name}'.");
}
