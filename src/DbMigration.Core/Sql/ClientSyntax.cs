using System.Text.RegularExpressions;
using DbMigration.Targets;

namespace DbMigration.Sql;

/// <summary>
/// Recognises what scripts written for a command-line client carry but a server never accepts: psql's
/// meta-commands (\connect, \set) and COPY … FROM stdin with its rows inline, as pg_dump writes them, and the mysql
/// client's SOURCE. Sent as SQL they fail with errors that name neither the line nor the cause.
/// </summary>
public static partial class ClientSyntax
{
    /// <summary>Why the statement is a client's syntax and how to write it instead; null for SQL.</summary>
    public static string? Describe(string sql, DatabaseEngine engine)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var text = LeadingComments().Replace(sql, string.Empty);
        if (engine == DatabaseEngine.PostgreSql)
        {
            if (text.StartsWith('\\'))
            {
                return $"'{FirstLine(text)}' is a psql meta-command, not SQL: remove it (DbMigration already connects to the target).";
            }

            if (CopyFromStdin().IsMatch(text))
            {
                return "COPY … FROM stdin with the rows inline is psql's syntax (pg_dump writes it): the rows are not SQL. Write them as INSERT statements (pg_dump --inserts), or load the dump with pg_restore.";
            }
        }

        if (engine == DatabaseEngine.MySql && MySqlSource().IsMatch(text))
        {
            return $"'{FirstLine(text)}' is a mysql client command, not SQL: put the file's statements in the script itself.";
        }

        return null;
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    [GeneratedRegex(@"\A(\s+|--[^\n]*(\n|\z)|/\*.*?\*/)*", RegexOptions.Singleline)]
    private static partial Regex LeadingComments();

    [GeneratedRegex(@"\ACOPY\b.*\bFROM\s+STDIN\b", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex CopyFromStdin();

    [GeneratedRegex(@"\A(SOURCE|\\\.)\s", RegexOptions.IgnoreCase)]
    private static partial Regex MySqlSource();
}
