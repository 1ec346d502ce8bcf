using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>
/// The example runbooks, the Pester tests, the README and the help examples call real cmdlets with real parameters.
/// No PowerShell runs here, so a renamed cmdlet or parameter would otherwise go unnoticed until a user ran the script.
/// </summary>
public sealed partial class CmdletContractTests
{
    private static readonly string[] CommonParameters =
    [
        "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ProgressAction", "ErrorVariable",
        "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable", "WhatIf", "Confirm",
    ];

    /// <summary>A command name: Verb-Noun, not inside a path, a variable or a longer word.</summary>
    [GeneratedRegex(@"(?<![\w$.\\/-])([A-Z][a-z]+)-([A-Z][A-Za-z]+)(?![\w-])")]
    private static partial Regex CommandName();

    [GeneratedRegex(@"(?<=[\s(])-([A-Za-z][A-Za-z0-9]*)(?=[\s:)]|$)")]
    private static partial Regex ParameterToken();

    [GeneratedRegex(@"'[^']*'|""(?:`.|[^""`])*""")]
    private static partial Regex StringLiteral();

    [Fact]
    public void Scripts_and_docs_call_real_cmdlets_with_real_parameters()
    {
        var cmdlets = CmdletTypes().ToDictionary(CmdletName, ParameterNames, StringComparer.OrdinalIgnoreCase);
        var ourNouns = new Regex("Database|Migration|Backup|Timezone", RegexOptions.CultureInvariant);
        var core = typeof(DbMigration.Targets.DatabaseTarget).Assembly;
        var problems = new List<string>();
        var calls = 0;
        // Helpers a script defines for itself (function script:New-ServerDatabase) are not ours to check.
        var ownFunctions = ScriptLines()
            .SelectMany(l => Regex.Matches(l.Text, @"\bfunction\s+(?:script:|global:)?([A-Za-z]+-[A-Za-z]+)").Select(m => m.Groups[1].Value))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (source, line, text) in ScriptLines())
        {
            // Type literals such as [DbMigration.Backups.BackupInfo] in -BeOfType checks and casts.
            foreach (Match literal in Regex.Matches(text, @"\[(DbMigration\.[A-Za-z.]+)\]"))
            {
                if (core.GetType(literal.Groups[1].Value) is null && CmdletAssembly.GetType(literal.Groups[1].Value) is null)
                {
                    problems.Add($"{source}:{line}: no type {literal.Groups[1].Value}");
                }
            }

            foreach (Match match in CommandName().Matches(text))
            {
                var name = match.Value;
                if (!cmdlets.TryGetValue(name, out var parameters))
                {
                    if (ourNouns.IsMatch(match.Groups[2].Value) && !ownFunctions.Contains(name))
                    {
                        problems.Add($"{source}:{line}: {name} is not a DbMigration cmdlet");
                    }

                    continue;
                }

                calls++;
                foreach (var parameter in ArgumentsOf(text, match.Index + match.Length))
                {
                    if (!parameters.Contains(parameter) && !CommonParameters.Contains(parameter, StringComparer.OrdinalIgnoreCase))
                    {
                        problems.Add($"{source}:{line}: {name} has no parameter -{parameter}");
                    }
                }
            }
        }

        Assert.True(calls > 50, $"only {calls} cmdlet calls found: the scan is not reading the scripts");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [GeneratedRegex(@"^\s*\|\s*(Format-Table|Format-List|Select-Object|Where-Object|Sort-Object)\b((?:\s+[A-Za-z][A-Za-z0-9]*\s*,?)*)")]
    private static partial Regex PipedPropertyList();

    [GeneratedRegex(@"\$(?:script:|global:)?([A-Za-z][A-Za-z0-9]*)\s*=\s*(?:@\()?\s*([A-Z][a-z]+-[A-Z][A-Za-z]+)")]
    private static partial Regex Assignment();

    /// <summary>The cmdlet whose objects come out of a pipeline: the last of ours, if only filters follow it.</summary>
    private static string? LastProducer(string pipeline, IReadOnlyDictionary<string, List<Type>> outputs)
    {
        string? producer = null;
        foreach (Match command in CommandName().Matches(pipeline))
        {
            if (outputs.ContainsKey(command.Value))
            {
                producer = command.Value;
            }
            else if (command.Value is not ("Where-Object" or "Sort-Object"))
            {
                producer = null;
            }
        }

        return producer;
    }

    [Fact]
    public void Scripts_and_docs_read_properties_the_output_types_have()
    {
        // Rows named by a type name (Invoke-DatabaseQuery's result rows) carry the query's columns: not checkable.
        var outputs = CmdletTypes()
            .Where(t => Declaration(t).OutputTypes.All(o => o is Type))
            .ToDictionary(CmdletName, t => Declaration(t).OutputTypes.OfType<Type>().ToList(), StringComparer.OrdinalIgnoreCase);
        var problems = new List<string>();
        var checkedNames = 0;
        void Check(string source, int line, string cmdlet, IEnumerable<string> names)
        {
            // PowerShell gives every object and array Count and Length.
            foreach (var name in names.Where(n => n is not ("Count" or "Length")))
            {
                checkedNames++;
                if (!outputs[cmdlet].Any(t => t.GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is not null))
                {
                    problems.Add($"{source}:{line}: the output of {cmdlet} ({string.Join(", ", outputs[cmdlet].Select(t => t.Name))}) has no property {name}");
                }
            }
        }

        var assigned = new Dictionary<(string Source, string Variable), string>();
        foreach (var (source, line, text) in ScriptLines())
        {
            foreach (Match assignment in Assignment().Matches(text))
            {
                if (outputs.ContainsKey(assignment.Groups[2].Value))
                {
                    assigned[(source, assignment.Groups[1].Value.ToLowerInvariant())] = assignment.Groups[2].Value;
                }
            }

            foreach (Match match in CommandName().Matches(text))
            {
                if (!outputs.ContainsKey(match.Value) || outputs[match.Value].Count == 0)
                {
                    continue;
                }

                // OurCmdlet … | Where-Object Name … | Format-Table A, B: property lists of commands that keep the objects.
                var rest = text[(match.Index + match.Length)..];
                var pipe = PipeAfter(rest);
                while (pipe >= 0)
                {
                    var piped = PipedPropertyList().Match(rest[pipe..]);
                    if (!piped.Success)
                    {
                        break;
                    }

                    var names = piped.Groups[2].Value.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
                    Check(source, line, match.Value, piped.Groups[1].Value == "Where-Object" ? names.Take(1) : names);
                    if (piped.Groups[1].Value is "Format-Table" or "Format-List" or "Select-Object")
                    {
                        break;
                    }

                    rest = rest[(pipe + piped.Length)..];
                    pipe = PipeAfter(rest);
                }

                // (OurCmdlet … | Filter …).Name
                if (match.Index > 0 && text[match.Index - 1] == '(')
                {
                    var close = EndOf(text, match.Index, command: false);
                    var closed = close < text.Length && text[close] == ')';
                    var member = closed ? Regex.Match(text[(close + 1)..], "^\\.([A-Za-z][A-Za-z0-9]*)") : null;
                    var producer = closed ? LastProducer(text[match.Index..close], outputs) : null;
                    if (member is { Success: true } && producer is not null)
                    {
                        Check(source, line, producer, [member.Groups[1].Value]);
                    }
                }
            }

            // $result.Name, where $result = OurCmdlet … earlier in the same source.
            foreach (Match use in Regex.Matches(text, "\\$(?:script:|global:)?([A-Za-z][A-Za-z0-9]*)\\.([A-Za-z][A-Za-z0-9]*)"))
            {
                if (assigned.TryGetValue((source, use.Groups[1].Value.ToLowerInvariant()), out var from))
                {
                    Check(source, line, from, [use.Groups[2].Value]);
                }
            }
        }

        Assert.True(checkedNames > 20, $"only {checkedNames} property reads found: the scan is not reading the scripts");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    /// <summary>
    /// Where what starts at <paramref name="start"/> ends: at the bracket that closes around it or the end of the
    /// text, and, for one command (<paramref name="command"/>), at its top-level pipe or semicolon.
    /// </summary>
    private static int EndOf(string text, int start, bool command)
    {
        var depth = 0;
        for (var i = start; i < text.Length; i++)
        {
            depth += text[i] is '(' or '{' or '[' ? 1 : text[i] is ')' or '}' or ']' ? -1 : 0;
            if (depth < 0 || (command && depth == 0 && text[i] is '|' or ';'))
            {
                return i;
            }
        }

        return text.Length;
    }

    /// <summary>The index of the first top-level pipe after a command, or -1 where the pipeline ends first.</summary>
    private static int PipeAfter(string text)
    {
        var end = EndOf(text, 0, command: true);
        return end < text.Length && text[end] == '|' ? end : -1;
    }

    /// <summary>The parameter names (and aliases) a cmdlet declares.</summary>
    private static HashSet<string> ParameterNames(Type type)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties().Where(IsParameter))
        {
            names.Add(property.Name);
            foreach (var alias in property.CustomAttributes.Where(a => a.AttributeType == typeof(AliasAttribute)))
            {
                foreach (var value in (IEnumerable<CustomAttributeTypedArgument>)alias.ConstructorArguments[0].Value!)
                {
                    names.Add((string)value.Value!);
                }
            }
        }

        return names;
    }

    /// <summary>The -Name tokens of one call: up to its pipe, semicolon, or the bracket that closes around it.</summary>
    private static IEnumerable<string> ArgumentsOf(string text, int start)
    {
        var end = EndOf(text, start, command: true);

        // Only the call's own level: a nested (Get-Thing -Name x) is a call of its own.
        var own = new System.Text.StringBuilder();
        var depth = 0;
        foreach (var c in text[start..end])
        {
            if (c is '(' or '{' or '[')
            {
                depth++;
                own.Append(' ');
            }
            else if (c is ')' or '}' or ']')
            {
                depth--;
                own.Append(' ');
            }
            else
            {
                own.Append(depth == 0 ? c : ' ');
            }
        }

        return ParameterToken().Matches(own.ToString()).Select(m => m.Groups[1].Value);
    }

    /// <summary>Every line a user would run: the example scripts, the Pester tests, README code and the help examples.</summary>
    private static IEnumerable<(string Source, int Line, string Text)> ScriptLines()
    {
        var scripts = Directory.GetFiles(Repo.PathOf("examples"), "*.ps1")
            .Concat(Directory.GetFiles(Repo.PathOf("tests", "pester"), "*.ps1"))
            .Concat([Repo.PathOf("build.ps1")]);
        foreach (var path in scripts)
        {
            foreach (var entry in Logical(File.ReadAllLines(path), Path.GetFileName(path)))
            {
                yield return entry;
            }
        }

        // README: fenced PowerShell blocks as scripts, and inline `code` spans in the prose.
        var readme = File.ReadAllLines(Repo.PathOf("README.md"));
        var fence = new List<string>();
        var fenceStart = 0;
        var inFence = false;
        for (var i = 0; i < readme.Length; i++)
        {
            if (readme[i].TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                if (inFence)
                {
                    foreach (var entry in Logical([.. fence], "README.md", fenceStart))
                    {
                        yield return entry;
                    }

                    fence.Clear();
                }

                inFence = !inFence;
                fenceStart = i + 1;
                continue;
            }

            if (inFence)
            {
                fence.Add(readme[i]);
                continue;
            }

            foreach (Match span in Regex.Matches(readme[i], "`([^`]+)`"))
            {
                yield return ("README.md", i + 1, StringLiteral().Replace(span.Groups[1].Value, "''"));
            }
        }

        XNamespace dev = "http://schemas.microsoft.com/maml/dev/2004/10";
        var help = XDocument.Load(Repo.PathOf("en-US", "DbMigration.PowerShell.dll-Help.xml"), LoadOptions.SetLineInfo);
        foreach (var code in help.Descendants(dev + "code"))
        {
            var line = ((System.Xml.IXmlLineInfo)code).LineNumber;
            foreach (var entry in Logical(code.Value.Split('\n'), "DbMigration.PowerShell.dll-Help.xml", line - 1))
            {
                yield return entry;
            }
        }
    }

    /// <summary>Script lines joined where a backtick continues them, comments and string contents removed.</summary>
    private static IEnumerable<(string Source, int Line, string Text)> Logical(string[] lines, string source, int offset = 0)
    {
        var inBlockComment = false;
        var pending = string.Empty;
        var pendingLine = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var text = lines[i];
            if (inBlockComment || text.TrimStart().StartsWith("<#", StringComparison.Ordinal))
            {
                inBlockComment = !text.Contains("#>", StringComparison.Ordinal);
                continue;
            }

            text = StringLiteral().Replace(text, "''");
            var hash = text.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
            {
                text = text[..hash];
            }

            if (pending.Length == 0)
            {
                pendingLine = offset + i + 1;
            }

            if (text.TrimEnd().EndsWith('`') || text.TrimEnd().EndsWith('|'))
            {
                pending += text.TrimEnd().TrimEnd('`') + " ";
                continue;
            }

            yield return (source, pendingLine, pending + text);
            pending = string.Empty;
        }
    }
}
