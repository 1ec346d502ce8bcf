using System.Text.RegularExpressions;
using DbMigration.Sql;
using DbMigration.Targets;

namespace DbMigration.Backups;

/// <summary>
/// The backed-up database's own settings: ALTER DATABASE … SET and CONNECTION LIMIT, per-role settings in it, its
/// comment and security labels, and its GRANTs. pg_dump keeps them in the archive, but pg_restore writes them only
/// with --create, which restores under the backed-up name. DbMigration restores under another name and swaps, so
/// it takes them from pg_restore's --create script and applies them itself, renamed to the target.
/// </summary>
internal static partial class PostgreSqlDatabaseSettings
{
    /// <summary>
    /// A pg_restore <c>--create</c> script taken apart: the backed-up database's name as pg_dump quoted it, its
    /// ALTER DATABASE … OWNER TO, its other database-level statements, and the rest (the objects inside it).
    /// </summary>
    internal sealed record Script(string? Source, string? Owner, IReadOnlyList<string> Settings, string Objects);

    /// <summary>Takes a pg_restore <c>--create</c> script apart. CREATE DATABASE is left out: the restore creates the database itself.</summary>
    public static Script Split(string script)
    {
        ArgumentNullException.ThrowIfNull(script);

        // psql meta-commands (\connect, \restrict) end at the line's end, not at a semicolon.
        var sql = string.Join('\n', script.Split('\n').Where(l => !l.StartsWith('\\')));
        var source = CreateDatabase().Match(sql) is { Success: true } created ? created.Groups[1].Value : null;
        if (source is null)
        {
            return new Script(null, null, [], script);
        }

        string? owner = null;
        var settings = new List<string>();
        var objects = new List<string>();
        foreach (var statement in SqlScriptSplitter.Split(sql, DatabaseEngine.PostgreSql))
        {
            var text = statement.Text;
            if (text.StartsWith("CREATE DATABASE ", StringComparison.Ordinal))
            {
                continue;
            }

            if (text.StartsWith($"ALTER DATABASE {source} OWNER TO ", StringComparison.Ordinal))
            {
                owner = text;
            }
            else if (NamesDatabase(text, source))
            {
                settings.Add(text);
            }
            else
            {
                objects.Add(text + ";");
            }
        }

        return new Script(source, owner, settings, string.Join('\n', objects));
    }

    /// <summary>Points each statement at <paramref name="targetIdentifier"/> instead of the backed-up database.</summary>
    public static IReadOnlyList<string> Rename(IReadOnlyList<string> settings, string sourceIdentifier, string targetIdentifier) =>
        settings.Select(s =>
        {
            var at = DatabaseReference(s, sourceIdentifier);
            return at < 0 ? s : string.Concat(s.AsSpan(0, at), "DATABASE ", targetIdentifier, s.AsSpan(at + "DATABASE ".Length + sourceIdentifier.Length));
        }).ToList();

    /// <summary>The statement shapes pg_dump writes for a database's own properties, naming this database.</summary>
    private static bool NamesDatabase(string statement, string source) =>
        DatabaseStatement().IsMatch(statement) && DatabaseReference(statement, source) >= 0;

    /// <summary>Where "DATABASE &lt;source&gt;" stands in the statement, followed by a space or the end.</summary>
    private static int DatabaseReference(string statement, string source)
    {
        var needle = "DATABASE " + source;
        for (var at = statement.IndexOf(needle, StringComparison.Ordinal); at >= 0; at = statement.IndexOf(needle, at + 1, StringComparison.Ordinal))
        {
            var end = at + needle.Length;
            if (end == statement.Length || statement[end] is ' ' or ';' or '\n')
            {
                return at;
            }
        }

        return -1;
    }

    [GeneratedRegex(@"^CREATE DATABASE (""(?:[^""]|"""")+""|[a-z_][a-z0-9_$]*) WITH ", RegexOptions.CultureInvariant | RegexOptions.Multiline)]
    private static partial Regex CreateDatabase();

    [GeneratedRegex(@"^(?:ALTER DATABASE |COMMENT ON DATABASE |ALTER ROLE (?:""(?:[^""]|"""")+""|\S+) IN DATABASE |SECURITY LABEL FOR \S+ ON DATABASE |GRANT [A-Z, ]+ ON DATABASE |REVOKE [A-Z, ]+ ON DATABASE |REVOKE GRANT OPTION FOR [A-Z, ]+ ON DATABASE )", RegexOptions.CultureInvariant)]
    private static partial Regex DatabaseStatement();
}
