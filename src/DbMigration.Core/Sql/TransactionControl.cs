namespace DbMigration.Sql;

/// <summary>
/// Recognises statements that begin, end or abandon a transaction (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK,
/// ABORT, PREPARE TRANSACTION). Inside a migration's own transaction they would commit part of it early and leave
/// its journal row behind. ROLLBACK TO a savepoint stays inside the transaction and does not count.
/// </summary>
public static class TransactionControl
{
    /// <summary>The statement's keyword, such as "COMMIT", when it controls the transaction; otherwise null.</summary>
    public static string? Keyword(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var words = LeadingWords(sql, 4);
        if (words.Count == 0)
        {
            return null;
        }

        return words[0] switch
        {
            "BEGIN" or "COMMIT" or "END" or "ABORT" => words[0],
            "START" or "PREPARE" when words.Count > 1 && words[1] == "TRANSACTION" => words[0] + " TRANSACTION",
            "ROLLBACK" when words.Skip(1).SkipWhile(w => w is "WORK" or "TRANSACTION").FirstOrDefault() != "TO" => "ROLLBACK",
            _ => null,
        };
    }

    /// <summary>
    /// The statement's leading keywords, such as "ALTER", when MySQL and MariaDB commit the open transaction before
    /// running it (DDL, account and lock statements), so a later ROLLBACK cannot undo it; otherwise null.
    /// </summary>
    public static string? MySqlImplicitCommit(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var words = LeadingWords(sql, 3);
        if (words.Count == 0)
        {
            return null;
        }

        return words[0] switch
        {
            // Temporary tables are the exception the servers document.
            "CREATE" or "DROP" when words.Count > 1 && words[1] == "TEMPORARY" => null,
            "CREATE" or "ALTER" or "DROP" or "RENAME" or "TRUNCATE" or "GRANT" or "REVOKE" or "LOCK" or "UNLOCK"
                or "FLUSH" or "RESET" or "INSTALL" or "UNINSTALL" or "ANALYZE" or "OPTIMIZE" or "REPAIR" or "CACHE" => words[0],
            "SET" when words.Count > 1 && words[1] == "PASSWORD" => "SET PASSWORD",
            // Switching autocommit on commits the open transaction too.
            "SET" when words.Skip(1).Contains("AUTOCOMMIT") => "SET autocommit",
            _ => null,
        };
    }

    /// <summary>Up to <paramref name="count"/> leading words in upper case, after whitespace and comments.</summary>
    private static List<string> LeadingWords(string sql, int count)
    {
        var words = new List<string>();
        var i = 0;
        while (i < sql.Length && words.Count < count)
        {
            if (char.IsWhiteSpace(sql[i]))
            {
                i++;
            }
            else if (sql.AsSpan(i).StartsWith("--"))
            {
                var end = sql.IndexOf('\n', i);
                i = end < 0 ? sql.Length : end + 1;
            }
            else if (sql.AsSpan(i).StartsWith("/*"))
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? sql.Length : end + 2;
            }
            else if (char.IsLetter(sql[i]))
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] == '_'))
                {
                    i++;
                }

                words.Add(sql[start..i].ToUpperInvariant());
            }
            else
            {
                // A symbol: no keyword can follow that matters here.
                break;
            }
        }

        return words;
    }
}
