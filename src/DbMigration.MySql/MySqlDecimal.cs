using System.Globalization;

namespace DbMigration.MySql;

/// <summary>
/// A DECIMAL value too precise for System.Decimal (MySQL allows 65 digits). Columns declared with more than 28
/// digits of precision read as this type, so no value is ever rounded silently.
/// </summary>
public readonly struct MySqlDecimal : IEquatable<MySqlDecimal>
{
    public MySqlDecimal(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        if (!value.All(c => char.IsAsciiDigit(c) || c is '-' or '.'))
        {
            throw new FormatException($"'{value}' is not a decimal number.");
        }

        Value = value;
    }

    /// <summary>The exact decimal text as the server sent it.</summary>
    public string Value { get; }

    /// <summary>Converts to System.Decimal; throws OverflowException rather than rounding.</summary>
    public decimal ToDecimal()
    {
        if (!decimal.TryParse(Value, NumberStyles.Number, CultureInfo.InvariantCulture, out var result)
            || Normalize(result.ToString(CultureInfo.InvariantCulture)) != Normalize(Value))
        {
            throw new OverflowException($"{Value} does not fit System.Decimal exactly.");
        }

        return result;
    }

    private static string Normalize(string text)
    {
        var negative = text.StartsWith('-');
        var body = negative ? text[1..] : text;
        if (body.Contains('.', StringComparison.Ordinal))
        {
            body = body.TrimEnd('0').TrimEnd('.');
        }

        body = body.TrimStart('0');
        body = body.Length == 0 || body[0] == '.' ? "0" + body : body;
        return negative && body != "0" ? "-" + body : body;
    }

    public override string ToString() => Value;

    public bool Equals(MySqlDecimal other) => string.Equals(Value, other.Value, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is MySqlDecimal other && Equals(other);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value ?? string.Empty);

    public static bool operator ==(MySqlDecimal left, MySqlDecimal right) => left.Equals(right);

    public static bool operator !=(MySqlDecimal left, MySqlDecimal right) => !left.Equals(right);
}
