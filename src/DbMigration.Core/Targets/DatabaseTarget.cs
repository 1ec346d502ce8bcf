using System.Data.Common;
using System.Globalization;
using System.Text;
using DbMigration.Errors;

namespace DbMigration.Targets;

/// <summary>
/// Where a database lives: a SQLite file, a PostgreSQL or MySQL/MariaDB server database, or a raw connection
/// string. Every cmdlet's <c>-Database</c> binds to this type; PowerShell converts strings through
/// <see cref="Parse(string)"/>. The password is held privately and never appears in <see cref="ToString"/>.
/// </summary>
public sealed partial class DatabaseTarget
{
    /// <summary>Environment variable consulted for a password when nothing else supplies one.</summary>
    public const string PasswordEnvironmentVariable = "DBMIGRATION_PASSWORD";

    private const string PasswordEnvOption = "passwordEnv";

    private static readonly string[] PasswordKeys = ["password", "pwd"];

    private readonly string? _password;

    private DatabaseTarget(
        DatabaseEngine engine,
        string? filePath,
        string? host,
        int? port,
        string? database,
        string? userName,
        string? password,
        IReadOnlyDictionary<string, string> options,
        string? rawConnectionString,
        bool isMariaDbHint)
    {
        Engine = engine;
        FilePath = filePath;
        Host = host;
        Port = port;
        Database = database;
        UserName = userName;
        _password = password;
        Options = options;
        RawConnectionString = rawConnectionString;
        IsMariaDbHint = isMariaDbHint;
    }

    public DatabaseEngine Engine { get; }

    /// <summary>The SQLite database file, as given (see <see cref="ResolveFilePath"/>).</summary>
    public string? FilePath { get; }

    public string? Host { get; }

    public int? Port { get; }

    /// <summary>The server database name (PostgreSQL, MySQL).</summary>
    public string? Database { get; }

    public string? UserName { get; }

    /// <summary>Non-secret options from the URI query or the connection string.</summary>
    public IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>True when a password was given directly (URI, connection string or credential).</summary>
    public bool HasExplicitPassword => _password is not null;

    /// <summary>True when the target was written as <c>mariadb://</c>.</summary>
    public bool IsMariaDbHint { get; }

    /// <summary>A short name for catalogs and reports: the file name without extension, or the database name.</summary>
    public string Name => Engine == DatabaseEngine.Sqlite && FilePath is not null
        ? Path.GetFileNameWithoutExtension(FilePath)
        : Database ?? Host ?? "database";

    /// <summary>
    /// Which database this is, to tell same-named databases on different servers apart: the SQLite file's full path,
    /// or the engine, host, port and database name. The user and options do not count; loopback names are one host
    /// and a missing port is the engine's default, so <c>localhost</c> and <c>127.0.0.1:5432</c> are the same server.
    /// </summary>
    public string Identity
    {
        get
        {
            if (Engine == DatabaseEngine.Sqlite)
            {
                // Windows and macOS file systems ignore case by default.
                var path = FilePath is null or ":memory:" ? FilePath : Path.GetFullPath(FilePath);
                return "sqlite:" + (OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? path?.ToUpperInvariant() : path);
            }

            var host = (Host ?? "localhost").Trim('[', ']').ToLowerInvariant();
            host = host is "127.0.0.1" or "::1" || IsSocketFolder ? "localhost" : host;
            // A MySQL socket names its server itself (one without networking has no port to tell it apart).
            if (Engine == DatabaseEngine.MySql && Options.TryGetValue("socket", out var socket))
            {
                return string.Create(CultureInfo.InvariantCulture, $"mysql://socket{socket}/{Database?.ToLowerInvariant()}");
            }

            var port = Port ?? (Engine == DatabaseEngine.PostgreSql ? 5432 : 3306);
            return string.Create(CultureInfo.InvariantCulture, $"{(Engine == DatabaseEngine.PostgreSql ? "postgres" : "mysql")}://{host}:{port}/{Database?.ToLowerInvariant()}");
        }
    }

    /// <summary>The raw connection string, when the target was given as one. Internal: it may hold a password.</summary>
    internal string? RawConnectionString { get; }

    /// <summary>
    /// How long every connection to this target waits to open (and, for SQLite, for another connection's write
    /// lock), as the caller's <c>-ConnectTimeout</c> asked; null leaves each operation its own default.
    /// </summary>
    public TimeSpan? ConnectTimeout { get; private init; }

    /// <summary>The same target, whose connections wait at most <paramref name="timeout"/>.</summary>
    public DatabaseTarget WithConnectTimeout(TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        return new(Engine, FilePath, Host, Port, Database, UserName, _password, Options, RawConnectionString, IsMariaDbHint) { ConnectTimeout = timeout };
    }

    /// <summary>The wait the caller asked for, else <paramref name="fallback"/>.</summary>
    internal TimeSpan ConnectTimeoutOr(TimeSpan fallback) => ConnectTimeout ?? fallback;

    /// <summary>
    /// The password to connect with: the one given, else the variable named by the <c>passwordEnv</c> option,
    /// else <c>DBMIGRATION_PASSWORD</c>, else the engine's own variable (<c>PGPASSWORD</c>, <c>MYSQL_PWD</c>).
    /// </summary>
    internal string? ResolvePassword()
    {
        if (_password is not null)
        {
            return _password;
        }

        if (Options.TryGetValue(PasswordEnvOption, out var variable))
        {
            return Environment.GetEnvironmentVariable(variable)
                ?? throw new DbMigrationException(
                    ErrorIds.TargetInvalid,
                    ErrorKind.InvalidArgument,
                    $"The target names the password variable '{variable}', but it is not set.")
                { Target = ToString() };
        }

        return Environment.GetEnvironmentVariable(PasswordEnvironmentVariable)
            ?? Engine switch
            {
                DatabaseEngine.PostgreSql => Environment.GetEnvironmentVariable("PGPASSWORD"),
                DatabaseEngine.MySql => Environment.GetEnvironmentVariable("MYSQL_PWD"),
                _ => null,
            };
    }

    /// <summary>
    /// Parses a file path, a <c>sqlite:</c>, <c>postgres://</c>, <c>postgresql://</c>, <c>mysql://</c> or
    /// <c>mariadb://</c> URI, or a raw <c>key=value;</c> connection string (whose engine is given later with
    /// <see cref="WithEngine"/>).
    /// </summary>
    public static DatabaseTarget Parse(string value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw Invalid("A database target is required: a SQLite file path, or a postgres://, mysql:// or sqlite: URI.", value);
        }

        var text = value.Trim();
        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (text.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            return ParseSqliteUri(text);
        }

        var firstEquals = text.IndexOf('=', StringComparison.Ordinal);
        if (schemeEnd > 0 && (firstEquals < 0 || schemeEnd < firstEquals))
        {
            var scheme = text[..schemeEnd].ToLowerInvariant();
            return scheme switch
            {
                "postgres" or "postgresql" => ParseServerUri(text, DatabaseEngine.PostgreSql, mariaDb: false),
                "mysql" => ParseServerUri(text, DatabaseEngine.MySql, mariaDb: false),
                "mariadb" => ParseServerUri(text, DatabaseEngine.MySql, mariaDb: true),
                _ => throw new DbMigrationException(
                    ErrorIds.TargetUnsupportedScheme,
                    ErrorKind.InvalidArgument,
                    $"'{scheme}://' is not a supported target. Use a SQLite file path, sqlite:, postgres://, postgresql://, mysql:// or mariadb://.")
                { Target = scheme + "://…" },
            };
        }

        if (LooksLikeConnectionString(text))
        {
            return new DatabaseTarget(DatabaseEngine.Unknown, null, null, null, null, null, null, EmptyOptions, text, false);
        }

        return FromFile(text);
    }

    /// <summary>A SQLite database file.</summary>
    public static DatabaseTarget FromFile(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw Invalid("A SQLite file path must not be empty.", path);
        }

        if (path.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            throw Invalid("The SQLite file path contains characters that are not valid in a path.", path);
        }

        return new DatabaseTarget(DatabaseEngine.Sqlite, path, null, null, null, null, null, EmptyOptions, null, false);
    }

    /// <summary>A raw connection string for a known engine.</summary>
    public static DatabaseTarget FromConnectionString(DatabaseEngine engine, string connectionString)
    {
        if (engine == DatabaseEngine.Unknown)
        {
            throw new DbMigrationException(ErrorIds.TargetEngineRequired, ErrorKind.InvalidArgument,
                "A raw connection string needs an engine: pass -Engine Sqlite, PostgreSql or MySql.");
        }

        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        string? Get(params string[] keys)
        {
            foreach (var key in keys)
            {
                if (builder.TryGetValue(key, out var v) && v is not null && v.ToString() is { Length: > 0 } s)
                {
                    return s;
                }
            }

            return null;
        }

        int? port = null;
        if (Get("port") is { } portText)
        {
            port = ParsePort(portText, connectionString);
        }

        if (engine == DatabaseEngine.Sqlite)
        {
            var file = Get("data source", "datasource", "filename") ?? throw Invalid("A SQLite connection string needs 'Data Source'.", "(connection string)");
            return new DatabaseTarget(DatabaseEngine.Sqlite, file, null, null, null, null, null, EmptyOptions, connectionString, false);
        }

        return new DatabaseTarget(
            engine,
            null,
            Get("host", "server", "data source"),
            port,
            Get("database", "initial catalog"),
            Get("username", "user id", "user", "uid", "userid"),
            Get(PasswordKeys),
            EmptyOptions,
            connectionString,
            false);
    }

    /// <summary>Applies <c>-Engine</c>: required for a raw connection string, checked for anything else.</summary>
    public DatabaseTarget WithEngine(DatabaseEngine engine)
    {
        if (engine == DatabaseEngine.Unknown || engine == Engine)
        {
            return this;
        }

        if (Engine == DatabaseEngine.Unknown && RawConnectionString is not null)
        {
            var parsed = FromConnectionString(engine, RawConnectionString);
            parsed = ConnectTimeout is { } timeout ? parsed.WithConnectTimeout(timeout) : parsed;
            return _password is null ? parsed : parsed.WithCredential(parsed.UserName, _password);
        }

        throw new DbMigrationException(
            ErrorIds.TargetInvalid,
            ErrorKind.InvalidArgument,
            $"The target is a {Engine} database, but -Engine says {engine}.")
        { Target = ToString() };
    }

    /// <summary>Applies a credential (user name and password); a null user keeps the current one.</summary>
    public DatabaseTarget WithCredential(string? userName, string? password) =>
        new(Engine, FilePath, Host, Port, Database, string.IsNullOrEmpty(userName) ? UserName : userName,
            password, Options, RawConnectionString, IsMariaDbHint) { ConnectTimeout = ConnectTimeout };

    /// <summary>The same server with another database (scratch databases for restores and tests).</summary>
    public DatabaseTarget WithDatabase(string database)
    {
        if (Engine == DatabaseEngine.Sqlite)
        {
            return new DatabaseTarget(Engine, database, null, null, null, null, null, Options, null, false) { ConnectTimeout = ConnectTimeout };
        }

        return new(Engine, FilePath, Host, Port, database, UserName, _password, Options, RawConnectionString is null ? null : ReplaceDatabase(RawConnectionString, database), IsMariaDbHint) { ConnectTimeout = ConnectTimeout };
    }

    /// <summary>
    /// The SQLite file path as <paramref name="resolve"/> turns it into a full path (PowerShell resolves ~, drives such
    /// as TestDrive: and its current location); other targets, and :memory:, are returned as they are.
    /// </summary>
    public DatabaseTarget ResolveFilePath(Func<string, string> resolve)
    {
        ArgumentNullException.ThrowIfNull(resolve);
        if (Engine != DatabaseEngine.Sqlite || FilePath is null || FilePath == ":memory:")
        {
            return this;
        }

        var full = resolve(FilePath);
        return new DatabaseTarget(Engine, full, null, null, null, null, null, Options, RawConnectionString is null ? null : ReplaceDataSource(RawConnectionString, full), false) { ConnectTimeout = ConnectTimeout };
    }

    /// <summary>The target without any secret: safe for logs, errors, reports and manifests.</summary>
    public override string ToString()
    {
        if (Engine == DatabaseEngine.Sqlite)
        {
            return FilePath ?? "(sqlite)";
        }

        if (RawConnectionString is not null)
        {
            return RedactConnectionString(RawConnectionString);
        }

        var sb = new StringBuilder();
        sb.Append(Engine == DatabaseEngine.PostgreSql ? "postgres://" : IsMariaDbHint ? "mariadb://" : "mysql://");
        if (!string.IsNullOrEmpty(UserName))
        {
            sb.Append(Uri.EscapeDataString(UserName)).Append('@');
        }

        var options = Options.Select(o => Uri.EscapeDataString(o.Key) + "=" + Uri.EscapeDataString(o.Value)).ToList();
        if (IsSocketFolder)
        {
            // libpq's socket form, which Parse reads back.
            options.InsertRange(0, Port is null ? ["host=" + Uri.EscapeDataString(Host!)] : ["host=" + Uri.EscapeDataString(Host!), "port=" + Port.Value.ToString(CultureInfo.InvariantCulture)]);
        }
        else
        {
            sb.Append(Host is not null && Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host);
            if (Port is not null)
            {
                sb.Append(':').Append(Port.Value.ToString(CultureInfo.InvariantCulture));
            }
        }

        sb.Append('/').Append(Database);
        if (options.Count > 0)
        {
            sb.Append('?').Append(string.Join("&", options));
        }

        return sb.ToString();
    }

    /// <summary>Removes every password-like key from a connection string.</summary>
    public static string RedactConnectionString(string connectionString)
    {
        try
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
            foreach (var key in builder.Keys.Cast<string>().ToList())
            {
                if (PasswordKeys.Contains(key, StringComparer.OrdinalIgnoreCase))
                {
                    builder[key] = "********";
                }
            }

            return builder.ConnectionString;
        }
        catch (ArgumentException)
        {
            return "(unreadable connection string)";
        }
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyOptions =
        new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    private static bool LooksLikeConnectionString(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            return false;
        }

        try
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = text };
            return builder.Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static DatabaseTarget ParseSqliteUri(string text)
    {
        var rest = text["sqlite:".Length..];
        var query = string.Empty;
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            rest = rest[2..];
        }

        // sqlite:///C:/data/x.db on Windows: drop the slash before the drive letter.
        if (rest.Length >= 3 && rest[0] == '/' && char.IsAsciiLetter(rest[1]) && rest[2] == ':')
        {
            rest = rest[1..];
        }

        rest = Uri.UnescapeDataString(rest);
        var target = FromFile(rest);
        if (query.Length > 0)
        {
            var options = ParseQuery(query, text, out _);
            return new DatabaseTarget(DatabaseEngine.Sqlite, target.FilePath, null, null, null, null, null, options, null, false);
        }

        return target;
    }

    private static DatabaseTarget ParseServerUri(string text, DatabaseEngine engine, bool mariaDb)
    {
        var original = text;
        // libpq's form for a Unix socket: no host in the URI (postgres:///app, postgres://user@/app), and the socket's
        // folder, if not the default, in ?host=/var/run/postgresql.
        var socketForm = engine == DatabaseEngine.PostgreSql && EmptyHostPattern().IsMatch(text);
        if (socketForm)
        {
            var match = EmptyHostPattern().Match(text);
            text = text[..match.Length] + SocketPlaceholder + text[match.Length..];
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid("The URI is not valid. Expected scheme://user@host:port/database.", RedactUri(original));
        }

        string? user = null;
        string? password = null;
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon >= 0 ? uri.UserInfo[..colon] : uri.UserInfo);
            password = colon >= 0 ? Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]) : null;
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length == 0)
        {
            throw Invalid("The URI names no database. Expected scheme://user@host:port/database.", RedactUri(original));
        }

        var options = ParseQuery(uri.Query.TrimStart('?'), original, out var queryPassword);
        password ??= queryPassword;
        var host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
        int? port = uri.IsDefaultPort || uri.Port < 0 ? null : uri.Port;
        if (engine == DatabaseEngine.PostgreSql)
        {
            // libpq also takes the host and port as options.
            if (options.Remove("host", out var optionHost))
            {
                host = optionHost;
            }
            else if (socketForm)
            {
                host = null;
            }

            if (options.Remove("port", out var optionPort))
            {
                port = ParsePort(optionPort, RedactUri(original));
            }

            host ??= DefaultPostgresSocketFolder(port ?? 5432)
                ?? throw Invalid($"The URI names no host, and no PostgreSQL socket for port {port ?? 5432} was found in {string.Join(" or ", PostgresSocketFolders)}. Name the host, or the socket's folder with ?host=/path.", RedactUri(original));
        }

        return new DatabaseTarget(engine, null, host, port, database, user, password, options, null, mariaDb);
    }

    private const string SocketPlaceholder = "dbmigration-socket";

    [System.Text.RegularExpressions.GeneratedRegex(@"^postgres(ql)?://([^/@?#]*@)?(?=[/:])", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex EmptyHostPattern();

    /// <summary>Where libpq builds look for the server's socket by default (Debian's folder first).</summary>
    private static readonly string[] PostgresSocketFolders = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

    private static string? DefaultPostgresSocketFolder(int port) =>
        OperatingSystem.IsWindows() ? null : PostgresSocketFolders.FirstOrDefault(folder => File.Exists(Path.Combine(folder, ".s.PGSQL." + port.ToString(CultureInfo.InvariantCulture))));

    /// <summary>A PostgreSQL host that is a Unix socket's folder rather than a name.</summary>
    private bool IsSocketFolder => Engine == DatabaseEngine.PostgreSql && Host is not null && Host.StartsWith('/');

    /// <summary>The Unix socket a server target connects through, or null for TCP (and SQLite).</summary>
    internal string? SocketPath => Engine switch
    {
        DatabaseEngine.PostgreSql when IsSocketFolder => Path.Combine(Host!, ".s.PGSQL." + (Port ?? 5432).ToString(CultureInfo.InvariantCulture)),
        DatabaseEngine.MySql when Options.TryGetValue("socket", out var socket) => socket,
        _ => null,
    };

    /// <summary>Where a connection goes, for errors: "the socket /run/mysqld/mysqld.sock" or "db1:5432".</summary>
    internal string Endpoint => SocketPath is { } socket
        ? "the socket " + socket
        : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port ?? (Engine == DatabaseEngine.PostgreSql ? 5432 : 3306)}");

    private static Dictionary<string, string> ParseQuery(string query, string original, out string? password)
    {
        password = null;
        var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq >= 0 ? pair[..eq] : pair);
            var value = eq >= 0 ? Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' ')) : string.Empty;
            if (PasswordKeys.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                password = value;
                continue;
            }

            if (!options.TryAdd(key, value))
            {
                throw Invalid($"The option '{key}' is given twice.", RedactUri(original));
            }
        }

        return options;
    }

    private static int ParsePort(string text, string context)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw Invalid($"'{text}' is not a valid port (1-65535).", RedactConnectionString(context));
        }

        return port;
    }

    private static string ReplaceDatabase(string connectionString, string database)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        foreach (var key in new[] { "database", "initial catalog" })
        {
            if (builder.ContainsKey(key))
            {
                builder.Remove(key);
            }
        }

        builder["Database"] = database;
        return builder.ConnectionString;
    }

    private static string ReplaceDataSource(string connectionString, string path)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        foreach (var key in new[] { "data source", "datasource", "filename" })
        {
            if (builder.ContainsKey(key))
            {
                builder.Remove(key);
            }
        }

        builder["Data Source"] = path;
        return builder.ConnectionString;
    }

    /// <summary>Strips the password from a URI-looking string, for error messages about malformed targets.</summary>
    internal static string RedactUri(string text)
    {
        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
        {
            return text;
        }

        var at = text.LastIndexOf('@');
        var colon = text.IndexOf(':', schemeEnd + 3);
        var result = at > schemeEnd && colon > schemeEnd && colon < at
            ? string.Concat(text.AsSpan(0, colon), ":********", text.AsSpan(at))
            : text;
        var query = result.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            var parts = result[(query + 1)..].Split('&').Select(p =>
                PasswordKeys.Any(k => p.StartsWith(k + "=", StringComparison.OrdinalIgnoreCase)) ? p[..(p.IndexOf('=', StringComparison.Ordinal) + 1)] + "********" : p);
            result = result[..(query + 1)] + string.Join("&", parts);
        }

        return result;
    }

    private static DbMigrationException Invalid(string message, string? target) =>
        new(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument, message) { Target = target };
}
