using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using DbMigration.Timezone;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>
/// Tab completion for -SourceTimeZone: the embedded tzdb's IANA ids, then the Windows ids it maps. Ids that start
/// with the typed text come first, then ids with a part that does ("lord" finds Australia/Lord_Howe), then ids that
/// contain it.
/// </summary>
public sealed class TimeZoneCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Matches(wordToComplete).Select(id => new CompletionResult(Quoted(id), id, CompletionResultType.ParameterValue, id));

    /// <summary>The ids for the typed text, best first.</summary>
    internal static IEnumerable<string> Matches(string? wordToComplete)
    {
        // Windows ids hold spaces; typed text may use either a space or an underscore.
        static string Words(string id) => id.Replace(' ', '_');
        var typed = Words((wordToComplete ?? string.Empty).Trim('\'', '"'));
        return TimezoneResolver.KnownIds
            .Where(id => Words(id).Contains(typed, StringComparison.OrdinalIgnoreCase))
            .OrderBy(id => Words(id).StartsWith(typed, StringComparison.OrdinalIgnoreCase) ? 0
                : Words(id).Split('/').Any(part => part.StartsWith(typed, StringComparison.OrdinalIgnoreCase)) ? 1 : 2);
    }

    /// <summary>As it must be typed: a Windows id's spaces need quotes.</summary>
    internal static string Quoted(string id) => id.Contains(' ', StringComparison.Ordinal) ? $"'{id}'" : id;
}
