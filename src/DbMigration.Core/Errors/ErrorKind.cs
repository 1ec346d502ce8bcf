namespace DbMigration.Errors;

/// <summary>
/// What went wrong, in the vocabulary of PowerShell's ErrorCategory. Every name here exists in
/// System.Management.Automation.ErrorCategory (a contract test checks it), so the cmdlet layer maps by name
/// while the core stays free of PowerShell.
/// </summary>
public enum ErrorKind
{
    NotSpecified,
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    ObjectNotFound,
    PermissionDenied,
    ResourceBusy,
    ResourceExists,
    ResourceUnavailable,
    ConnectionError,
    AuthenticationError,
    OperationTimeout,
    OperationStopped,
    ReadError,
    WriteError,
    NotImplemented,
    NotInstalled,
    SyntaxError,
    ProtocolError,
    SecurityError,
}
