using System.Text;
using DbMigration.Targets;

namespace DbMigration.Sql;

/// <summary>
/// One statement of a script, with where it starts so errors can point at it, and the @name parameter markers it
/// uses outside literals and comments (PostgreSQL and SQLite; on MySQL @name is a user variable).
/// </summary>
public sealed record SqlStatement(int Index, int Line, string Text)
{
    public IReadOnlyList<string> Parameters { get; init; } = [];
}

/// <summary>
/// Splits a script into statements at top-level semicolons. It knows each engine's quoting and comments
/// (PostgreSQL dollar quotes and nested comments, MySQL backslash escapes and # comments, SQLite brackets) and
/// keeps the BEGIN … END bodies of triggers (and of MySQL procedures, functions and events, and PostgreSQL's BEGIN ATOMIC
/// bodies) whole, as it keeps what is inside parentheses. On MySQL it also
/// reads the mysql client's <c>DELIMITER</c> lines, as scripts written for that client use them.
/// </summary>
public static class SqlScriptSplitter
{
    public static IReadOnlyList<SqlStatement> Split(string script, DatabaseEngine engine)
    {
        ArgumentNullException.ThrowIfNull(script);
        var statements = new List<SqlStatement>();
        var state = new StatementState();
        var line = 1;
        var start = 0;
        var startLine = 1;
        var i = 0;
        var n = script.Length;
        var delimiter = ";";

        void Finish(int end)
        {
            var text = script[start..end].Trim();
            if (state.HasContent && text.Length > 0)
            {
                statements.Add(new SqlStatement(statements.Count + 1, startLine, text) { Parameters = state.Parameters });
            }

            state = new StatementState();
        }

        while (i < n)
        {
            var c = script[i];
            var next = i + 1 < n ? script[i + 1] : '\0';
            if (!state.HasContent && char.IsWhiteSpace(c))
            {
                if (c == '\n')
                {
                    line++;
                }

                i++;
                start = i;
                startLine = line;
                continue;
            }

            if (c == '-' && next == '-' || c == '#' && engine == DatabaseEngine.MySql)
            {
                i = SkipTo(script, i, "\n", ref line, inclusive: false);
                if (!state.HasContent)
                {
                    start = i;
                    startLine = line;
                }

                continue;
            }

            if (c == '/' && next == '*')
            {
                i = SkipBlockComment(script, i, engine == DatabaseEngine.PostgreSql, ref line);
                if (!state.HasContent)
                {
                    start = i;
                    startLine = line;
                }

                continue;
            }

            if (engine == DatabaseEngine.MySql && !state.HasContent && TryReadDelimiterLine(script, i, out var newDelimiter, out var lineEnd))
            {
                // A client directive, not SQL: it is never sent.
                delimiter = newDelimiter;
                i = lineEnd;
                start = i;
                startLine = line;
                continue;
            }

            if (delimiter != ";" && string.CompareOrdinal(script, i, delimiter, 0, delimiter.Length) == 0)
            {
                Finish(i);
                i += delimiter.Length;
                start = i;
                startLine = line;
                continue;
            }

            state.HasContent = true;
            switch (c)
            {
                case '\'':
                    var backslashes = engine == DatabaseEngine.MySql
                        || engine == DatabaseEngine.PostgreSql && i > 0 && (script[i - 1] is 'E' or 'e') && (i < 2 || !IsWordChar(script[i - 2]));
                    i = SkipQuoted(script, i, '\'', backslashes, ref line);
                    continue;
                case '"':
                    i = SkipQuoted(script, i, '"', engine == DatabaseEngine.MySql, ref line);
                    continue;
                case '`' when engine != DatabaseEngine.PostgreSql:
                    i = SkipQuoted(script, i, '`', false, ref line);
                    continue;
                case '[' when engine == DatabaseEngine.Sqlite:
                    i = SkipTo(script, i + 1, "]", ref line, inclusive: true);
                    continue;
                case '$' when engine == DatabaseEngine.PostgreSql && (i == 0 || !IsWordChar(script[i - 1])) && TryReadDollarTag(script, i, out var tag):
                    i = SkipTo(script, i + tag.Length, tag, ref line, inclusive: true);
                    continue;
                case '(':
                    state.ParenDepth++;
                    i++;
                    continue;
                case ')':
                    state.ParenDepth = Math.Max(0, state.ParenDepth - 1);
                    i++;
                    continue;
                case ';':
                    // Inside parentheses a semicolon separates the actions of a PostgreSQL rule (DO INSTEAD (…; …)).
                    if (state.BlockDepth > 0 || state.ParenDepth > 0 || delimiter != ";")
                    {
                        i++;
                        continue;
                    }

                    Finish(i);
                    i++;
                    start = i;
                    startLine = line;
                    continue;
                case '\n':
                    line++;
                    i++;
                    continue;
                case '@' when engine != DatabaseEngine.MySql && (char.IsLetter(next) || next == '_') && (i == 0 || !IsWordChar(script[i - 1]) && script[i - 1] != '@'):
                    // As Npgsql and Microsoft.Data.Sqlite read a named parameter.
                    var nameEnd = i + 1;
                    while (nameEnd < n && IsWordChar(script[nameEnd]))
                    {
                        nameEnd++;
                    }

                    state.Parameters.Add(script[i..nameEnd]);
                    i = nameEnd;
                    continue;
            }

            if (IsWordChar(c) && (i == 0 || !IsWordChar(script[i - 1])))
            {
                var end = i;
                while (end < n && IsWordChar(script[end]))
                {
                    end++;
                }

                state.AddWord(script.AsSpan(i, end - i), engine);
                i = end;
                continue;
            }

            i++;
        }

        Finish(n);
        return statements;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>A "DELIMITER //" line (the word, then the new delimiter up to the end of the line or a space).</summary>
    private static bool TryReadDelimiterLine(string s, int i, out string delimiter, out int lineEnd)
    {
        const string word = "DELIMITER";
        delimiter = string.Empty;
        lineEnd = i;
        if (string.Compare(s, i, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) != 0
            || i + word.Length >= s.Length || s[i + word.Length] is not (' ' or '\t'))
        {
            return false;
        }

        var j = i + word.Length;
        while (j < s.Length && s[j] is ' ' or '\t')
        {
            j++;
        }

        var end = j;
        while (end < s.Length && !char.IsWhiteSpace(s[end]))
        {
            end++;
        }

        if (end == j)
        {
            return false;
        }

        delimiter = s[j..end];
        lineEnd = s.IndexOf('\n', end) is var newline and >= 0 ? newline : s.Length;
        return true;
    }

    private static int SkipTo(string s, int from, string terminator, ref int line, bool inclusive)
    {
        var end = s.IndexOf(terminator, from, StringComparison.Ordinal);
        var stop = end < 0 ? s.Length : inclusive ? end + terminator.Length : end;
        line += CountNewLines(s, from, stop);
        return stop;
    }

    private static int SkipQuoted(string s, int i, char quote, bool backslashEscapes, ref int line)
    {
        var j = i + 1;
        while (j < s.Length)
        {
            var c = s[j];
            if (c == '\n')
            {
                line++;
            }

            if (backslashEscapes && c == '\\')
            {
                j += 2;
                continue;
            }

            if (c == quote)
            {
                if (j + 1 < s.Length && s[j + 1] == quote)
                {
                    j += 2;
                    continue;
                }

                return j + 1;
            }

            j++;
        }

        return s.Length;
    }

    private static int SkipBlockComment(string s, int i, bool nested, ref int line)
    {
        var depth = 0;
        var j = i;
        while (j < s.Length - 1)
        {
            if (s[j] == '/' && s[j + 1] == '*' && (nested || depth == 0))
            {
                depth++;
                j += 2;
                continue;
            }

            if (s[j] == '*' && s[j + 1] == '/')
            {
                depth--;
                j += 2;
                if (depth == 0)
                {
                    return j;
                }

                continue;
            }

            if (s[j] == '\n')
            {
                line++;
            }

            j++;
        }

        return s.Length;
    }

    private static bool TryReadDollarTag(string s, int i, out string tag)
    {
        var j = i + 1;
        while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_'))
        {
            j++;
        }

        if (j < s.Length && s[j] == '$' && (j == i + 1 || !char.IsDigit(s[i + 1])))
        {
            tag = s[i..(j + 1)];
            return true;
        }

        tag = string.Empty;
        return false;
    }

    private static int CountNewLines(string s, int from, int to)
    {
        var count = 0;
        for (var k = from; k < to && k < s.Length; k++)
        {
            if (s[k] == '\n')
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Tracks the leading words so trigger bodies (BEGIN … END) are kept whole.</summary>
    private sealed class StatementState
    {
        private static readonly string[] CompoundObjects = ["TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "DEFINER"];
        private readonly StringBuilder _lead = new();
        private int _words;
        private bool _isTrigger;
        private bool _afterEnd;

        public bool HasContent { get; set; }

        public int BlockDepth { get; private set; }

        public int ParenDepth { get; set; }

        public List<string> Parameters { get; } = [];

        public void AddWord(ReadOnlySpan<char> word, DatabaseEngine engine)
        {
            if (_words < 4)
            {
                _lead.Append(word).Append(' ');
                _words++;
                // CREATE [TEMP|TEMPORARY] TRIGGER on SQLite; CREATE [OR REPLACE] [AGGREGATE] {TRIGGER|PROCEDURE|
                // FUNCTION|EVENT|DEFINER=…} on MySQL; CREATE [OR REPLACE] {FUNCTION|PROCEDURE} on PostgreSQL, whose
                // SQL-standard bodies are BEGIN ATOMIC … END (a body in dollar quotes has no words outside them).
                var lead = _lead.ToString().ToUpperInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var kind = lead.Skip(1).SkipWhile(w => w is "TEMP" or "TEMPORARY" or "OR" or "REPLACE" or "AGGREGATE").FirstOrDefault();
                _isTrigger = lead[0] == "CREATE" && kind is not null && engine switch
                {
                    DatabaseEngine.Sqlite => kind == "TRIGGER",
                    DatabaseEngine.MySql => CompoundObjects.Contains(kind),
                    DatabaseEngine.PostgreSql => kind is "FUNCTION" or "PROCEDURE",
                    _ => false,
                };
            }

            if (!_isTrigger)
            {
                return;
            }

            // END closes BEGIN or CASE; END IF, END LOOP, END WHILE and END REPEAT close what never opened a level,
            // and the CASE of END CASE opens none.
            var afterEnd = _afterEnd;
            _afterEnd = false;
            if (afterEnd && (word.Equals("IF", StringComparison.OrdinalIgnoreCase) || word.Equals("LOOP", StringComparison.OrdinalIgnoreCase)
                || word.Equals("WHILE", StringComparison.OrdinalIgnoreCase) || word.Equals("REPEAT", StringComparison.OrdinalIgnoreCase)))
            {
                BlockDepth++;
            }
            else if (afterEnd && word.Equals("CASE", StringComparison.OrdinalIgnoreCase))
            {
                // Closed by its END already.
            }
            else if (word.Equals("BEGIN", StringComparison.OrdinalIgnoreCase) || word.Equals("CASE", StringComparison.OrdinalIgnoreCase))
            {
                BlockDepth++;
            }
            else if (word.Equals("END", StringComparison.OrdinalIgnoreCase) && BlockDepth > 0)
            {
                BlockDepth--;
                _afterEnd = true;
            }
        }
    }
}
