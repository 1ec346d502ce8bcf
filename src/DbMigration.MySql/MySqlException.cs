using System.Data.Common;

namespace DbMigration.MySql;

/// <summary>
/// Client-side error numbers, from MySQL's client error range (2000-2999), so callers can match on
/// <see cref="MySqlException.Number"/> for client and server errors alike.
/// </summary>
public static class MySqlClientError
{
    public const int UnknownError = 2000;
    public const int ConnectionRefused = 2003;
    public const int UnknownHost = 2005;
    public const int ServerGone = 2006;
    public const int ServerLost = 2013;
    public const int ProtocolError = 2027;
    public const int SslConnectionError = 2026;
    public const int AuthPluginNotSupported = 2059;
    public const int InsecureAuthRefused = 2061;
    public const int LocalInfileRefused = 2068;
    public const int CommandTimeout = 2062;
    public const int ConnectTimeout = 2064;
    public const int ZeroDate = 2070;
    public const int PoolExhausted = 2071;
}

/// <summary>
/// An error from the server (with its error number and SQLSTATE) or from this client (2000-range numbers).
/// </summary>
public sealed class MySqlException : DbException
{
    public MySqlException(string message, int number, string? sqlState = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Number = number;
        SqlStateCode = sqlState;
        HResult = number;
    }

    /// <summary>The server's error number (1000-1999, 3000+) or a <see cref="MySqlClientError"/> number.</summary>
    public int Number { get; }

    public override int ErrorCode => Number;

    /// <summary>The five-character SQLSTATE the server reported, when it did.</summary>
    public string? SqlStateCode { get; }

    public override string? SqlState => SqlStateCode;

    /// <summary>The text of the command the server refused, as written (parameters not substituted); null for connection errors.</summary>
    public string? CommandText { get; internal set; }

    /// <summary>True for errors after which the connection cannot be used again.</summary>
    public bool IsFatal => Number is MySqlClientError.ServerGone or MySqlClientError.ServerLost or MySqlClientError.ProtocolError;

    internal static MySqlException ConnectionLost(Exception? inner = null) =>
        new("The server closed the connection unexpectedly (lost connection during a query, a server restart, or a killed session).", MySqlClientError.ServerLost, "08S01", inner);
}
