using System.Data.Common;
using System.Globalization;

namespace DbMigration.MySql;

/// <summary>How the connection uses TLS.</summary>
public enum MySqlSslMode
{
    /// <summary>Never use TLS.</summary>
    None,

    /// <summary>Use TLS when the server offers it; accept any certificate.</summary>
    Preferred,

    /// <summary>Require TLS; accept any certificate.</summary>
    Required,

    /// <summary>Require TLS and a certificate chain that validates (against <c>SslCa</c> when given); ignore the host name.</summary>
    VerifyCA,

    /// <summary>Require TLS, a valid chain and a certificate issued for the host name.</summary>
    VerifyFull,
}

/// <summary>What reading a zero date ('0000-00-00') does.</summary>
public enum MySqlZeroDateTimeBehavior
{
    /// <summary>Throw: a zero date cannot be a DateTime.</summary>
    Error,

    /// <summary>Read it as NULL.</summary>
    Null,

    /// <summary>
    /// Read it as the text the server sent ("0000-00-00 00:00:00", "2024-00-01"), a string: it can be shown, compared
    /// and written back unchanged. Every other date still reads as a DateTime.
    /// </summary>
    Text,
}

/// <summary>Connection string keys (case-insensitive, with the usual aliases).</summary>
public sealed class MySqlConnectionStringBuilder : DbConnectionStringBuilder
{
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["server"] = "Server", ["host"] = "Server", ["data source"] = "Server", ["address"] = "Server", ["datasource"] = "Server",
        ["port"] = "Port",
        ["database"] = "Database", ["initial catalog"] = "Database",
        ["user id"] = "User ID", ["userid"] = "User ID", ["user"] = "User ID", ["username"] = "User ID", ["uid"] = "User ID", ["user name"] = "User ID",
        ["password"] = "Password", ["pwd"] = "Password",
        ["sslmode"] = "SslMode", ["ssl mode"] = "SslMode", ["ssl-mode"] = "SslMode",
        ["sslca"] = "SslCa", ["ssl-ca"] = "SslCa", ["ssl ca"] = "SslCa",
        ["connection timeout"] = "Connection Timeout", ["connect timeout"] = "Connection Timeout", ["connectiontimeout"] = "Connection Timeout",
        ["default command timeout"] = "Default Command Timeout", ["defaultcommandtimeout"] = "Default Command Timeout", ["command timeout"] = "Default Command Timeout",
        ["pooling"] = "Pooling",
        ["maximum pool size"] = "Maximum Pool Size", ["maximumpoolsize"] = "Maximum Pool Size", ["max pool size"] = "Maximum Pool Size",
        ["zero date time behavior"] = "Zero DateTime Behavior", ["zerodatetimebehavior"] = "Zero DateTime Behavior", ["zero datetime behavior"] = "Zero DateTime Behavior",
        ["treat tiny as boolean"] = "Treat Tiny As Boolean", ["treattinyasboolean"] = "Treat Tiny As Boolean",
        ["allow public key retrieval"] = "Allow Public Key Retrieval", ["allowpublickeyretrieval"] = "Allow Public Key Retrieval",
        ["server rsa public key file"] = "Server RSA Public Key File", ["serverrsapublickeyfile"] = "Server RSA Public Key File",
        ["application name"] = "Application Name", ["applicationname"] = "Application Name",
    };

    public MySqlConnectionStringBuilder()
    {
    }

    public MySqlConnectionStringBuilder(string connectionString) => ConnectionString = connectionString;

    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override object this[string keyword]
    {
        get => base[Canonical(keyword)];
        set => base[Canonical(keyword)] = value;
    }

    public override bool ContainsKey(string keyword) => base.ContainsKey(Canonical(keyword));

    public override bool Remove(string keyword) => base.Remove(Canonical(keyword));

    public override bool TryGetValue(string keyword, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out object? value) =>
        base.TryGetValue(Canonical(keyword), out value);

    /// <summary>Host name, IP address, or an absolute path to a Unix socket.</summary>
    public string Server { get => Get("Server") ?? "localhost"; set => this["Server"] = value; }

    public uint Port { get => uint.Parse(Get("Port") ?? "3306", CultureInfo.InvariantCulture); set => this["Port"] = value; }

    public string Database { get => Get("Database") ?? string.Empty; set => this["Database"] = value; }

    public string UserID { get => Get("User ID") ?? string.Empty; set => this["User ID"] = value; }

    public string Password { get => Get("Password") ?? string.Empty; set => this["Password"] = value; }

    public MySqlSslMode SslMode
    {
        get => Enum.Parse<MySqlSslMode>((Get("SslMode") ?? "Preferred").Replace("-", string.Empty, StringComparison.Ordinal).Replace("_", string.Empty, StringComparison.Ordinal), ignoreCase: true);
        set => this["SslMode"] = value.ToString();
    }

    /// <summary>A PEM file with the CA certificate(s) that VerifyCA and VerifyFull trust.</summary>
    public string SslCa { get => Get("SslCa") ?? string.Empty; set => this["SslCa"] = value; }

    /// <summary>Seconds to wait for a connection (default 15).</summary>
    public uint ConnectionTimeout { get => uint.Parse(Get("Connection Timeout") ?? "15", CultureInfo.InvariantCulture); set => this["Connection Timeout"] = value; }

    /// <summary>Seconds a command may run (default 30; 0 waits forever).</summary>
    public uint DefaultCommandTimeout { get => uint.Parse(Get("Default Command Timeout") ?? "30", CultureInfo.InvariantCulture); set => this["Default Command Timeout"] = value; }

    public bool Pooling { get => bool.Parse(Get("Pooling") ?? "true"); set => this["Pooling"] = value; }

    public uint MaximumPoolSize { get => uint.Parse(Get("Maximum Pool Size") ?? "100", CultureInfo.InvariantCulture); set => this["Maximum Pool Size"] = value; }

    public MySqlZeroDateTimeBehavior ZeroDateTimeBehavior
    {
        get => Enum.Parse<MySqlZeroDateTimeBehavior>(Get("Zero DateTime Behavior") ?? "Error", ignoreCase: true);
        set => this["Zero DateTime Behavior"] = value.ToString();
    }

    /// <summary>TINYINT(1) columns read as bool (default true); otherwise as sbyte/byte.</summary>
    public bool TreatTinyAsBoolean { get => bool.Parse(Get("Treat Tiny As Boolean") ?? "true"); set => this["Treat Tiny As Boolean"] = value; }

    /// <summary>Lets caching_sha2_password fetch the server's RSA key over an unencrypted connection.</summary>
    public bool AllowPublicKeyRetrieval { get => bool.Parse(Get("Allow Public Key Retrieval") ?? "false"); set => this["Allow Public Key Retrieval"] = value; }

    public string ServerRsaPublicKeyFile { get => Get("Server RSA Public Key File") ?? string.Empty; set => this["Server RSA Public Key File"] = value; }

    public string ApplicationName { get => Get("Application Name") ?? string.Empty; set => this["Application Name"] = value; }

    private string? Get(string key) => base.TryGetValue(key, out var value) ? Convert.ToString(value, CultureInfo.InvariantCulture) : null;

    private static string Canonical(string keyword) =>
        Aliases.TryGetValue(keyword.Trim(), out var canonical)
            ? canonical
            : throw new ArgumentException($"'{keyword}' is not a supported MySQL connection string option.", nameof(keyword));
}
