using System.Net;
using System.Security;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>SecureString parameters become plain text only for the call that needs them.</summary>
internal static class Secrets
{
    public static string? ToPlain(SecureString? secret) => secret is null ? null : new NetworkCredential(string.Empty, secret).Password;
}
