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
