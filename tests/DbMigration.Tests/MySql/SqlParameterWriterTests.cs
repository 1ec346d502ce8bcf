using DbMigration.MySql;
using DbMigration.MySql.Protocol;

namespace DbMigration.Tests.MySql;

public sealed class SqlParameterWriterTests
{
    private static string Substitute(string sql, bool noBackslashEscapes, params (string Name, object? Value)[] values)
    {
        var parameters = new MySqlParameterCollection();
        foreach (var (name, value) in values)
        {
            parameters.Add(name, value);
        }

        return SqlParameterWriter.Substitute(sql, parameters, noBackslashEscapes);
    }

    [Fact]
    public void Only_known_parameters_outside_quotes_and_comments_are_replaced()
    {
        var sql = "SELECT @id, '@id', \"@id\", `@id`, @@version, @other /* @id */ -- @id\n# @id\n, @ID";
        var result = Substitute(sql, false, ("@id", 7));

        Assert.Equal("SELECT 7, '@id', \"@id\", `@id`, @@version, @other /* @id */ -- @id\n# @id\n, 7", result);
    }

    [Fact]
    public void A_multi_row_batch_binds_every_name_exactly_as_a_few_parameters_do()
    {
        // Thousands of names sharing prefixes (@k1, @k10, @k100), in any case, with a repeated name: the first wins.
        var values = Enumerable.Range(0, 3000).Select(i => ("@k" + i, (object?)(i * 7))).Append(("@K1", 99)).ToArray();
        var sql = string.Join(", ", Enumerable.Range(0, 3000).Select(i => (i % 2 == 0 ? "@k" : "@K") + i)) + ", @k3000, '@k5'";

        var result = Substitute(sql, false, values);

        var expected = string.Join(", ", Enumerable.Range(0, 3000).Select(i => (i * 7).ToString(System.Globalization.CultureInfo.InvariantCulture))) + ", @k3000, '@k5'";
        Assert.Equal(expected, result);
    }

    [Theory]
    [InlineData(false, "'it\\'s \\\\ \\\"q\\\" \\n \\0 \\Z'")]
    [InlineData(true, "'it''s \\ \"q\" \n \0 \x1a'")]
    public void Strings_are_escaped_for_the_session_mode(bool noBackslashEscapes, string expected)
    {
        Assert.Equal("SELECT " + expected, Substitute("SELECT @s", noBackslashEscapes, ("s", "it's \\ \"q\" \n \0 \x1a")));
    }

    [Fact]
    public void Binary_values_are_hex_literals_and_other_types_are_formatted_invariantly()
    {
        var result = Substitute("VALUES (@b, @g, @d, @t, @m, @n, @e, @f)", false,
            ("b", new byte[] { 0, 0xFF, 0x27 }),
            ("g", Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e")),
            ("d", new DateTime(2024, 3, 10, 2, 30, 0, 123, DateTimeKind.Unspecified)),
            ("t", TimeSpan.FromHours(-30.5)),
            ("m", 12.5m),
            ("n", null),
            ("e", DayOfWeek.Friday),
            ("f", 0.1));

        Assert.Equal("VALUES (X'00FF27', '0f8fad5b-d9cb-469f-a165-70867728950e', '2024-03-10 02:30:00.123000', '-30:30:00.000000', 12.5, NULL, 5, 0.1)", result);
    }

    [Fact]
    public void Unsupported_values_are_refused_with_the_parameter_named()
    {
        var ex = Assert.Throws<NotSupportedException>(() => Substitute("SELECT @x", false, ("x", new object())));
        Assert.Contains("x", ex.Message, StringComparison.Ordinal);
        Assert.Throws<NotSupportedException>(() => Substitute("SELECT @x", false, ("x", double.NaN)));
    }
}
