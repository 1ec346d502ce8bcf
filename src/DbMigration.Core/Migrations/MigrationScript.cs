using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using DbMigration.Errors;

namespace DbMigration.Migrations;

/// <summary>
/// One V&lt;version&gt;__&lt;description&gt;.sql file. Sections: "-- migrate:up" and "-- migrate:down" (without
/// them the whole file is the up part); header directives "-- requires: 1, 2.1" and "-- transaction: none".
/// </summary>
public sealed partial class MigrationScript
{
    /// <summary>Bump when normalisation changes; the journal records it beside each checksum.</summary>
    public const string ChecksumAlgorithm = "n1-sha256";

    private MigrationScript(MigrationVersion version, string description, string path, string up, string? down, IReadOnlyList<MigrationVersion> requires, bool transactional, string checksum)
    {
        Version = version;
        Description = description;
        Path = path;
        Up = up;
        Down = down;
        Requires = requires;
        Transactional = transactional;
        Checksum = checksum;
    }

    public MigrationVersion Version { get; }

    public string Description { get; }

    public string Path { get; }

    public string FileName => System.IO.Path.GetFileName(Path);

    public string Up { get; }

    public string? Down { get; }

    public IReadOnlyList<MigrationVersion> Requires { get; }

    /// <summary>False for "-- transaction: none" (statements such as CREATE INDEX CONCURRENTLY).</summary>
    public bool Transactional { get; }

    public string Checksum { get; }

    /// <summary>
    /// No statements in the up section yet (a fresh New-Migration scaffold). The file is listed as pending, and only
    /// a run that would apply it refuses (<see cref="EnsureRunnable"/>).
    /// </summary>
    public bool IsEmpty => string.IsNullOrWhiteSpace(StripComments(Up));

    /// <summary>Throws for a script that cannot be applied as it stands.</summary>
    public void EnsureRunnable()
    {
        if (IsEmpty)
        {
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                $"{FileName} has no statements in its up section yet: write them, or remove the file.") { Target = Path };
        }
    }

    [GeneratedRegex(@"^V(?<version>[0-9][0-9._]*?)__(?<description>.+)\.sql$", RegexOptions.IgnoreCase)]
    private static partial Regex FileNamePattern();

    /// <summary>Reads every V*.sql file in a folder, in version order. Other files are ignored.</summary>
    public static IReadOnlyList<MigrationScript> LoadFolder(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new DbMigrationException(ErrorIds.MigrationFolderNotFound, ErrorKind.ObjectNotFound, $"The migrations folder '{folder}' does not exist.") { Target = folder };
        }

        // A migration that is silently not read is never applied: V1__x.SQL (as Windows tools write it) is read,
        // and one in a subfolder, or misnamed, is refused rather than skipped.
        var scripts = new List<MigrationScript>();
        var options = new EnumerationOptions { MatchCasing = MatchCasing.CaseInsensitive, RecurseSubdirectories = true, IgnoreInaccessible = true };
        var fullFolder = System.IO.Path.GetFullPath(folder);
        foreach (var file in Directory.EnumerateFiles(fullFolder, "*.sql", options).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(file);
            var looksLikeOne = name.StartsWith('V') || name.StartsWith('v');
            if (!string.Equals(System.IO.Path.GetDirectoryName(file), fullFolder.TrimEnd(System.IO.Path.DirectorySeparatorChar), StringComparison.Ordinal))
            {
                if (looksLikeOne && FileNamePattern().IsMatch(name))
                {
                    throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument,
                        $"'{System.IO.Path.GetRelativePath(fullFolder, file)}' is in a subfolder, and migrations are read from '{folder}' itself only: move it up, or rename it (for example to .sql.disabled) to keep it out.") { Target = file };
                }
            }
            else if (FileNamePattern().IsMatch(name))
            {
                scripts.Add(Load(file));
            }
            else if (looksLikeOne)
            {
                throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument,
                    $"'{name}' looks like a migration but is not named V<version>__<description>.sql.") { Target = file };
            }
        }

        foreach (var duplicate in scripts.GroupBy(s => s.Version).Where(g => g.Count() > 1))
        {
            throw new DbMigrationException(ErrorIds.MigrationDuplicateVersion, ErrorKind.InvalidData,
                $"Version {duplicate.Key} is used by several files: {string.Join(", ", duplicate.Select(s => s.FileName))}.") { Target = folder };
        }

        return scripts.OrderBy(s => s.Version).ToList();
    }

    public static MigrationScript Load(string path)
    {
        var match = FileNamePattern().Match(System.IO.Path.GetFileName(path));
        if (!match.Success)
        {
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument,
                $"'{System.IO.Path.GetFileName(path)}' is not named V<version>__<description>.sql.") { Target = path };
        }

        var version = MigrationVersion.Parse(match.Groups["version"].Value.Replace('_', '.'));
        var description = match.Groups["description"].Value.Replace('_', ' ');
        var text = Normalize(ReadText(path));
        return Parse(version, description, path, text);
    }

    private static readonly System.Text.Encoding StrictUtf8 = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The file as UTF-8 (or UTF-16/32 by its byte order mark). Bytes that are not UTF-8 are refused: decoded
    /// leniently, a file saved in a legacy code page (Windows-1252 é) wrote U+FFFD into the database in silence.
    /// </summary>
    private static string ReadText(string path)
    {
        using var reader = new StreamReader(path, StrictUtf8, detectEncodingFromByteOrderMarks: true);
        try
        {
            return reader.ReadToEnd();
        }
        catch (System.Text.DecoderFallbackException ex)
        {
            var bytes = File.ReadAllBytes(path);
            var at = FirstInvalidUtf8(bytes);
            var where = at < 0 ? string.Empty : $" at line {1 + bytes.AsSpan(0, at).Count((byte)'\n')} (byte 0x{bytes[at]:X2})";
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                $"{System.IO.Path.GetFileName(path)} is not UTF-8{where}: it was probably saved in a legacy code page such as Windows-1252. Save it as UTF-8 and run again; read as it is, its text would reach the database changed.", ex)
            { Target = path };
        }
    }

    private static int FirstInvalidUtf8(byte[] bytes)
    {
        var offset = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes.AsSpan(offset), new char[bytes.Length], out var read, out _, replaceInvalidSequences: false);
        return status == System.Buffers.OperationStatus.InvalidData ? offset + read : -1;
    }

    internal static MigrationScript Parse(MigrationVersion version, string description, string path, string text)
    {
        var lines = text.Split('\n');
        var requires = new List<MigrationVersion>();
        var transactional = true;
        int? upAt = null;
        int? downAt = null;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (!line.StartsWith("--", StringComparison.Ordinal))
            {
                continue;
            }

            var directive = line[2..].Trim();
            if (directive.Equals("migrate:up", StringComparison.OrdinalIgnoreCase))
            {
                upAt ??= i;
            }
            else if (directive.Equals("migrate:down", StringComparison.OrdinalIgnoreCase))
            {
                downAt ??= i;
            }
            else if (directive.StartsWith("requires:", StringComparison.OrdinalIgnoreCase))
            {
                foreach (var item in directive["requires:".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!MigrationVersion.TryParse(item, out var required))
                    {
                        throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                            $"{System.IO.Path.GetFileName(path)}: '-- requires: {item}' is not a version.") { Target = path };
                    }

                    requires.Add(required);
                }
            }
            else if (directive.StartsWith("transaction:", StringComparison.OrdinalIgnoreCase))
            {
                var value = directive["transaction:".Length..].Trim();
                transactional = value.ToLowerInvariant() switch
                {
                    "none" or "off" or "false" => false,
                    "default" or "on" or "true" => true,
                    _ => throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                        $"{System.IO.Path.GetFileName(path)}: '-- transaction: {value}' is not valid; use 'none'.") { Target = path },
                };
            }
        }

        if (downAt is not null && upAt is not null && downAt < upAt)
        {
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                $"{System.IO.Path.GetFileName(path)}: '-- migrate:down' comes before '-- migrate:up'.") { Target = path };
        }

        string up;
        string? down = null;
        if (upAt is null && downAt is null)
        {
            up = text;
        }
        else
        {
            // Each section keeps its lines where they are in the file (the lines before it left empty), so a failed
            // statement's line number is the file's.
            var upStart = (upAt ?? -1) + 1;
            var upEnd = downAt ?? lines.Length;
            up = new string('\n', upStart) + string.Join('\n', lines[upStart..upEnd]);
            if (downAt is not null)
            {
                down = new string('\n', downAt.Value + 1) + string.Join('\n', lines[(downAt.Value + 1)..]);
                if (string.IsNullOrWhiteSpace(StripComments(down)))
                {
                    down = null;
                }
            }
        }

        return new MigrationScript(version, description, path, up, down, requires, transactional, ComputeChecksum(text));
    }

    /// <summary>Strips a BOM, turns CRLF and CR into LF, and trailing whitespace off every line and the end.</summary>
    public static string Normalize(string text)
    {
        text = text.TrimStart('\uFEFF').Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        var lines = text.Split('\n').Select(l => l.TrimEnd());
        return string.Join('\n', lines).TrimEnd('\n');
    }

    public static string ComputeChecksum(string normalizedText) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(normalizedText))).ToLowerInvariant();

    private static string StripComments(string sql) =>
        string.Join('\n', sql.Split('\n').Where(l => !l.TrimStart().StartsWith("--", StringComparison.Ordinal)));
}
