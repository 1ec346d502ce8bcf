using System.Reflection;
using System.Text.RegularExpressions;
using DbMigration.Errors;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>README's table of error ids is the list scripts match on: it names every id the code has, and no other.</summary>
public sealed partial class ErrorIdDocumentationTests
{
    [Fact]
    public void The_README_table_lists_every_error_id_and_only_those()
    {
        var inCode = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToHashSet(StringComparer.Ordinal);
        var readme = File.ReadAllLines(Repo.PathOf("README.md"));
        var start = Array.IndexOf(readme, "### Error ids");
        Assert.True(start >= 0, "README.md has no '### Error ids' section");
        var inReadme = readme.Skip(start).TakeWhile(line => !line.StartsWith("## ", StringComparison.Ordinal))
            .Select(line => TableRow().Match(line))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .ToList();

        Assert.True(inCode.Count > 60, $"only {inCode.Count} ids were read from ErrorIds");
        Assert.Equal(inReadme.Count, inReadme.Distinct(StringComparer.Ordinal).Count());
        Assert.Empty(inCode.Except(inReadme, StringComparer.Ordinal));
        Assert.Empty(inReadme.Except(inCode, StringComparer.Ordinal));
    }

    [Fact]
    public void Every_id_has_the_documented_shape()
    {
        foreach (var field in typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
        {
            Assert.Matches(IdShape(), (string)field.GetRawConstantValue()!);
        }
    }

    [GeneratedRegex(@"^\| `(DbMigration\.[^`]+)` \|")]
    private static partial Regex TableRow();

    [GeneratedRegex(@"^DbMigration\.[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+$")]
    private static partial Regex IdShape();
}
