using System.Globalization;
using System.Text;

namespace DbMigration.MySql.Protocol;

/// <summary>
/// Substitutes named <c>@p</c> parameters into the SQL text as literals, on the client. Literals are escaped for
/// the session's current mode: with NO_BACKSLASH_ESCAPES only quotes are doubled; otherwise backslash escapes are
/// used too. Binary values go as hex literals. Names that are not parameters (user variables, @@system
/// variables) and anything inside quotes or comments are left alone.
/// </summary>
internal static class SqlParameterWriter
{
    public static string Substitute(string sql, MySqlParameterCollection parameters, bool noBackslashEscapes)
    {
        if (parameters.Count == 0)
        {
            return sql;
        }

        var sb = new StringBuilder(sql.Length + 16 * parameters.Count);
        var index = parameters.IndexByName();
        var i = 0;
        var copied = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            var next = i + 1 < sql.Length ? sql[i + 1] : '\0';
            switch (c)
            {
                case '\'':
                case '"':
                case '`':
                    i = SkipQuoted(sql, i, c, backslashes: c != '`' && !noBackslashEscapes);
                    continue;
                case '#':
                    i = SkipLine(sql, i);
                    continue;
                case '-' when next == '-' && (i + 2 >= sql.Length || char.IsWhiteSpace(sql[i + 2])):
                    i = SkipLine(sql, i);
                    continue;
                case '/' when next == '*':
                    var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    i = end < 0 ? sql.Length : end + 2;
                    continue;
                case '@' when next == '@':
                    i += 2;
                    while (i < sql.Length && IsNameChar(sql[i]))
                    {
                        i++;
                    }

                    continue;
                case '@':
                    var start = i;
                    i++;
                    while (i < sql.Length && IsNameChar(sql[i]))
                    {
                        i++;
                    }

                    var name = sql.AsSpan(start + 1, i - start - 1);
                    if (index is null ? parameters.TryFind(name, out var parameter) : index.TryGetValue(name.ToString(), out parameter))
                    {
                        sb.Append(sql, copied, start - copied);
                        AppendLiteral(sb, parameter.Value, noBackslashEscapes, parameter.ParameterName);
                        copied = i;
                    }

                    continue;
                default:
                    i++;
                    continue;
            }
        }

        if (copied == 0)
        {
            return sql;
        }

        sb.Append(sql, copied, sql.Length - copied);
        return sb.ToString();
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '$' or '.';

    private static int SkipLine(string sql, int i)
    {
        var end = sql.IndexOf('\n', i);
        return end < 0 ? sql.Length : end + 1;
    }

    private static int SkipQuoted(string sql, int i, char quote, bool backslashes)
    {
        var j = i + 1;
        while (j < sql.Length)
        {
            if (backslashes && sql[j] == '\\')
            {
                j += 2;
                continue;
            }

            if (sql[j] == quote)
            {
                if (j + 1 < sql.Length && sql[j + 1] == quote)
                {
                    j += 2;
                    continue;
                }

                return j + 1;
            }

            j++;
        }

        return sql.Length;
    }

    public static void AppendLiteral(StringBuilder sb, object? value, bool noBackslashEscapes, string? name = null)
    {
        switch (value)
        {
            case null:
            case DBNull:
                sb.Append("NULL");
                break;
            case bool b:
                sb.Append(b ? '1' : '0');
                break;
            case Enum e:
                sb.Append(Convert.ToString(Convert.ChangeType(e, Enum.GetUnderlyingType(e.GetType()), CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
                break;
            case sbyte or byte or short or ushort or int or uint or long or ulong:
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
            case decimal m:
                sb.Append(m.ToString(CultureInfo.InvariantCulture));
                break;
            case MySqlDecimal big:
                sb.Append(big.Value);
                break;
            case double d:
                AppendFloat(sb, d, name);
                break;
            case float f:
                AppendFloat(sb, f, name);
                break;
            case string s:
                AppendString(sb, s, noBackslashEscapes);
                break;
            case char ch:
                AppendString(sb, ch.ToString(), noBackslashEscapes);
                break;
            case byte[] bytes:
                AppendHex(sb, bytes);
                break;
            case ReadOnlyMemory<byte> memory:
                AppendHex(sb, memory.Span);
                break;
            case Guid g:
                sb.Append('\'').Append(g.ToString("D")).Append('\'');
                break;
            case DateTime dt:
                sb.Append('\'').Append(dt.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append('\'');
                break;
            case DateTimeOffset dto:
                // MySQL has no offset type: send the UTC instant (DbMigration pins its sessions to +00:00).
                sb.Append('\'').Append(dto.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append('\'');
                break;
            case DateOnly date:
                sb.Append('\'').Append(date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).Append('\'');
                break;
            case TimeOnly time:
                sb.Append('\'').Append(time.ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append('\'');
                break;
            case TimeSpan ts:
                var negative = ts < TimeSpan.Zero;
                var abs = negative ? ts.Negate() : ts;
                sb.Append('\'').Append(negative ? "-" : string.Empty)
                  .Append(((long)abs.TotalHours).ToString(CultureInfo.InvariantCulture)).Append(':')
                  .Append(abs.Minutes.ToString("00", CultureInfo.InvariantCulture)).Append(':')
                  .Append(abs.Seconds.ToString("00", CultureInfo.InvariantCulture)).Append('.')
                  .Append((abs.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", CultureInfo.InvariantCulture)).Append('\'');
                break;
            default:
                throw new NotSupportedException($"Parameter {name} has type {value.GetType().FullName}, which cannot be sent to MySQL. Supported: null, bool, integers, decimal, double, string, byte[], Guid, DateTime, DateTimeOffset, TimeSpan and enums.");
        }
    }

    private static void AppendFloat(StringBuilder sb, double value, string? name)
    {
        if (!double.IsFinite(value))
        {
            throw new NotSupportedException($"Parameter {name} is {value}; MySQL has no NaN or infinity.");
        }

        sb.Append(value.ToString("R", CultureInfo.InvariantCulture));
    }

    public static void AppendString(StringBuilder sb, string value, bool noBackslashEscapes)
    {
        sb.Append('\'');
        foreach (var c in value)
        {
            switch (c)
            {
                case '\'':
                    sb.Append(noBackslashEscapes ? "''" : "\\'");
                    break;
                case '\\' when !noBackslashEscapes:
                    sb.Append("\\\\");
                    break;
                case '\0' when !noBackslashEscapes:
                    sb.Append("\\0");
                    break;
                case '\n' when !noBackslashEscapes:
                    sb.Append("\\n");
                    break;
                case '\r' when !noBackslashEscapes:
                    sb.Append("\\r");
                    break;
                case '\x1a' when !noBackslashEscapes:
                    sb.Append("\\Z");
                    break;
                case '"' when !noBackslashEscapes:
                    sb.Append("\\\"");
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }

        sb.Append('\'');
    }

    private static void AppendHex(StringBuilder sb, ReadOnlySpan<byte> bytes)
    {
        sb.Append("X'");
        sb.Append(Convert.ToHexString(bytes));
        sb.Append('\'');
    }
}
