using DbMigration.PowerShell.Infrastructure;

namespace DbMigration.Tests.Cmdlets;

/// <summary>The completer's choice of ids; Pester checks what pwsh offers through TabExpansion2.</summary>
public sealed class TimeZoneCompleterTests
{
    private static List<string> Complete(string typed) => TimeZoneCompleter.Matches(typed).ToList();

    [Fact]
    public void Ids_that_start_with_the_text_come_first_then_a_part_then_anywhere()
    {
        Assert.Equal("America/New_York", Complete("America/New_Y").First());
        Assert.Contains("America/New_York", Complete("york"));
        var lord = Complete("lord");
        Assert.True(lord.IndexOf("Australia/Lord_Howe") < lord.IndexOf("Asia/Qyzylorda"), string.Join(", ", lord));
    }

    [Fact]
    public void Windows_ids_match_with_underscores_or_spaces_and_are_offered_quoted()
    {
        Assert.Equal("Eastern Standard Time", Complete("Eastern_Standard_T").First());
        Assert.Equal("Eastern Standard Time", Complete("'Eastern Standard T").First());
        Assert.Equal("'Eastern Standard Time'", TimeZoneCompleter.Quoted("Eastern Standard Time"));
        Assert.Equal("Europe/London", TimeZoneCompleter.Quoted("Europe/London"));
        Assert.Empty(Complete("Nowhere/At_All"));
    }
}
