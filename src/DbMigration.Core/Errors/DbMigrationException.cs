namespace DbMigration.Errors;

/// <summary>
/// The one exception type the core throws on purpose. It carries a stable <see cref="ErrorId"/>, an
/// <see cref="ErrorKind"/>, the redacted target and, where a statement failed, the SQL and the server's codes.
/// Messages never contain passwords: callers pass redacted targets only.
/// </summary>
public sealed class DbMigrationException : Exception
{
    public DbMigrationException(string errorId, ErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorId = errorId;
        Kind = kind;
    }

    public string ErrorId { get; }

    public ErrorKind Kind { get; }

    /// <summary>The redacted target the error is about (a file path, a URI without password, a table).</summary>
    public string? Target { get; init; }

    /// <summary>The statement that failed, when one did.</summary>
    public string? Sql { get; init; }

    /// <summary>The SQLSTATE the server reported, when it did.</summary>
    public string? SqlState { get; init; }

    /// <summary>The engine's own error number (SQLite result code, MySQL error number).</summary>
    public int? ServerErrorNumber { get; init; }
}
