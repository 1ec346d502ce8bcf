using System.Management.Automation;
using System.Reflection;
using System.Text;
using System.Xml.Linq;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>
/// The help's syntax and each parameter's required, position, pipeline and alias facts, derived from the cmdlets'
/// declarations: Get-Help shows a MAML file's syntax as written, so hand-kept facts drift from the code. With
/// DBMIGRATION_WRITE_HELP=1 the test writes the derived facts into the file first (descriptions are left alone).
/// </summary>
public sealed partial class CmdletContractTests
{
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private const string AllSets = "__AllParameterSets";

    /// <summary>One [Parameter] attribute of a property: the set it belongs to and how it binds there.</summary>
    private sealed record ParameterUse(string Set, bool Mandatory, int? Position, bool ByValue, bool ByPropertyName);

    private sealed record DeclaredParameter(string Name, Type Type, IReadOnlyList<ParameterUse> Uses, IReadOnlyList<string> Aliases, IReadOnlyList<string> ValidValues, int Order);

    private static T Named<T>(CustomAttributeData attribute, string name, T fallback) =>
        attribute.NamedArguments.Where(n => n.MemberName == name).Select(n => (T)n.TypedValue.Value!).DefaultIfEmpty(fallback).First();

    private static IReadOnlyList<string> StringArguments(PropertyInfo property, Type attributeType) =>
        property.CustomAttributes.Where(a => a.AttributeType == attributeType)
            .SelectMany(a => a.ConstructorArguments)
            .SelectMany(a => a.Value is IEnumerable<CustomAttributeTypedArgument> values ? values.Select(v => (string)v.Value!) : [(string)a.Value!])
            .ToList();

    private static List<DeclaredParameter> DeclaredParameters(Type type) =>
        type.GetProperties().Where(IsParameter).Select((property, index) =>
        {
            var uses = property.CustomAttributes.Where(a => a.AttributeType == typeof(ParameterAttribute)).Select(a => new ParameterUse(
                Named(a, nameof(ParameterAttribute.ParameterSetName), AllSets),
                Named(a, nameof(ParameterAttribute.Mandatory), false),
                Named(a, nameof(ParameterAttribute.Position), int.MinValue) is var p && p >= 0 ? p : null,
                Named(a, nameof(ParameterAttribute.ValueFromPipeline), false),
                Named(a, nameof(ParameterAttribute.ValueFromPipelineByPropertyName), false))).ToList();
            var valueType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var valid = StringArguments(property, typeof(ValidateSetAttribute));
            if (valid.Count == 0 && valueType.IsEnum)
            {
                valid = Enum.GetNames(valueType);
            }

            return new DeclaredParameter(property.Name, valueType, uses, StringArguments(property, typeof(AliasAttribute)), valid, index);
        }).ToList();

    private static string TypeName(Type type) => type.IsArray ? TypeName(type.GetElementType()!) + "[]" : type.Name;

    private static string PipelineInput(bool byValue, bool byPropertyName) => (byValue, byPropertyName) switch
    {
        (true, true) => "true (ByValue, ByPropertyName)",
        (true, false) => "true (ByValue)",
        (false, true) => "true (ByPropertyName)",
        _ => "false",
    };

    private static string Lower(bool value) => value ? "true" : "false";

    private static XElement ParameterValue(DeclaredParameter parameter) =>
        new(Command + "parameterValue", new XAttribute("required", "true"), TypeName(parameter.Type));

    /// <summary>The parameter sets in the order Get-Help lists them: the default first.</summary>
    private static List<string> ParameterSets(Type type, List<DeclaredParameter> parameters)
    {
        var sets = parameters.SelectMany(p => p.Uses).Select(u => u.Set).Where(s => s != AllSets).Distinct().Order(StringComparer.Ordinal).ToList();
        var defaultSet = type.CustomAttributes.Single(a => a.AttributeType == typeof(CmdletAttribute)).NamedArguments
            .Where(n => n.MemberName == nameof(CmdletAttribute.DefaultParameterSetName)).Select(n => (string?)n.TypedValue.Value).FirstOrDefault();
        if (defaultSet is not null && sets.Remove(defaultSet))
        {
            sets.Insert(0, defaultSet);
        }

        return sets.Count == 0 ? [AllSets] : sets;
    }

    /// <summary>The command:syntax element, one syntax item per parameter set, as Get-Help renders it.</summary>
    private static XElement Syntax(Type type)
    {
        var parameters = DeclaredParameters(type);
        var items = ParameterSets(type, parameters).Select(set =>
        {
            var inSet = parameters.Select(p => (Parameter: p, Use: p.Uses.FirstOrDefault(u => u.Set == set) ?? p.Uses.FirstOrDefault(u => u.Set == AllSets)))
                .Where(x => x.Use is not null)
                .OrderBy(x => x.Use!.Position ?? int.MaxValue).ThenBy(x => x.Use!.Mandatory ? 0 : 1).ThenBy(x => x.Parameter.Order)
                .Select(x => new XElement(Command + "parameter",
                    new XAttribute("required", Lower(x.Use!.Mandatory)),
                    new XAttribute("position", x.Use.Position?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "named"),
                    new XElement(Maml + "name", x.Parameter.Name),
                    x.Parameter.Type == typeof(SwitchParameter) ? null
                    : x.Parameter.ValidValues.Count == 0 ? ParameterValue(x.Parameter)
                    : new XElement(Command + "parameterValueGroup", x.Parameter.ValidValues.Select(v => new XElement(Command + "parameterValue", new XAttribute("required", "false"), v)))))
                .ToList();
            if (Declaration(type).SupportsShouldProcess)
            {
                AddSwitch(inSet, "WhatIf");
                AddSwitch(inSet, "Confirm");
            }

            return new XElement(Command + "syntaxItem", new XElement(Maml + "name", CmdletName(type)), inSet);
        });
        return new XElement(Command + "syntax", items);

        static void AddSwitch(List<XElement> list, string name) =>
            list.Add(new XElement(Command + "parameter", new XAttribute("required", "false"), new XAttribute("position", "named"),
                new XElement(Maml + "name", name)));
    }

    /// <summary>
    /// The attributes Get-Help -Parameter shows for a parameter: required where every set it is in requires it, a
    /// position where every set gives the same one, pipeline input where any set takes it.
    /// </summary>
    private static Dictionary<string, (string Required, string Position, string PipelineInput, string Aliases)> ParameterFacts(Type type) =>
        DeclaredParameters(type).ToDictionary(p => p.Name, p =>
        {
            var positions = p.Uses.Select(u => u.Position).Distinct().ToList();
            return (Lower(p.Uses.All(u => u.Mandatory)),
                positions is [int position] ? position.ToString(System.Globalization.CultureInfo.InvariantCulture) : "named",
                PipelineInput(p.Uses.Any(u => u.ByValue), p.Uses.Any(u => u.ByPropertyName)),
                p.Aliases.Count == 0 ? "none" : string.Join(", ", p.Aliases));
        }, StringComparer.OrdinalIgnoreCase);

    private static string HelpPath => Repo.PathOf("en-US", "DbMigration.PowerShell.dll-Help.xml");

    private static XElement HelpEntry(XDocument help, Type type) =>
        help.Descendants(Command + "command").Single(c => c.Element(Command + "details")?.Element(Command + "name")?.Value == CmdletName(type));

    /// <summary>Writes every cmdlet's derived syntax and parameter facts into the help, keeping its layout.</summary>
    private static void WriteHelpFacts()
    {
        var help = XDocument.Load(HelpPath, LoadOptions.PreserveWhitespace);
        foreach (var type in CmdletTypes())
        {
            var entry = HelpEntry(help, type);
            if (entry.Element(Command + "syntax") is { } old)
            {
                // With the line break and indent before it, so rewriting is idempotent.
                (old.PreviousNode as XText)?.Remove();
                old.Remove();
            }
            var description = entry.Element(Maml + "description")!;
            var indent = ((description.PreviousNode as XText)?.Value ?? "\n    ").TrimStart('\r', '\n');
            description.AddAfterSelf(new XText("\n" + indent), Indented(Syntax(type), indent));
            var facts = ParameterFacts(type);
            foreach (var parameter in entry.Element(Command + "parameters")!.Elements(Command + "parameter"))
            {
                var (required, position, pipelineInput, aliases) = facts[parameter.Element(Maml + "name")!.Value];
                parameter.SetAttributeValue("required", required);
                parameter.SetAttributeValue("position", position);
                parameter.SetAttributeValue("pipelineInput", pipelineInput);
                parameter.SetAttributeValue("aliases", aliases);
                parameter.SetAttributeValue("globbing", "false");
            }
        }

        var settings = new System.Xml.XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = false };
        using var writer = System.Xml.XmlWriter.Create(HelpPath, settings);
        help.Save(writer);
    }

    /// <summary>A new element laid out like the hand-written ones: one child per line, leaves on one line.</summary>
    private static XElement Indented(XElement element, string indent)
    {
        if (!element.HasElements)
        {
            return element;
        }

        var copy = new XElement(element.Name, element.Attributes());
        foreach (var child in element.Elements())
        {
            copy.Add(new XText("\n" + indent + "  "), Indented(child, indent + "  "));
        }

        copy.Add(new XText("\n" + indent));
        return copy;
    }

    private static string Canonical(XElement element) =>
        new XElement(element.Name, element.Attributes(), element.Elements().Select(e => XElement.Parse(Canonical(e))), element.HasElements ? null : element.Value).ToString(SaveOptions.DisableFormatting);

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Each_cmdlets_help_shows_the_syntax_and_parameter_facts_its_declaration_gives(Type type)
    {
        _ = HelpWritten.Value;

        var entry = HelpEntry(XDocument.Load(HelpPath), type);
        var syntax = entry.Element(Command + "syntax");
        const string fix = "; DBMIGRATION_WRITE_HELP=1 dotnet test tests/DbMigration.Tests --filter Each_cmdlets_help_shows rewrites these facts from the code";
        Assert.True(syntax is not null, $"{CmdletName(type)} has no syntax in its help{fix}");
        Assert.True(Canonical(Syntax(type)) == Canonical(syntax!), $"{CmdletName(type)}'s help syntax differs from its declaration{fix}");
        foreach (var (name, (required, position, pipelineInput, aliases)) in ParameterFacts(type))
        {
            var documented = entry.Element(Command + "parameters")!.Elements(Command + "parameter").Single(p => string.Equals(p.Element(Maml + "name")!.Value, name, StringComparison.OrdinalIgnoreCase));
            Assert.True((string?)documented.Attribute("required") == required, $"{CmdletName(type)} -{name}: help says required={(string?)documented.Attribute("required")}, the code {required}{fix}");
            Assert.True((string?)documented.Attribute("position") == position, $"{CmdletName(type)} -{name}: help says position={(string?)documented.Attribute("position")}, the code {position}{fix}");
            Assert.True((string?)documented.Attribute("pipelineInput") == pipelineInput, $"{CmdletName(type)} -{name}: help says pipelineInput={(string?)documented.Attribute("pipelineInput")}, the code {pipelineInput}{fix}");
            Assert.True((string?)documented.Attribute("aliases") == aliases, $"{CmdletName(type)} -{name}: help says aliases={(string?)documented.Attribute("aliases")}, the code {aliases}{fix}");
            Assert.True((string?)documented.Attribute("globbing") == "false", $"{CmdletName(type)} -{name}: no parameter takes wildcards{fix}");
        }
    }

    private static readonly Lazy<bool> HelpWritten = new(() =>
    {
        if (Environment.GetEnvironmentVariable("DBMIGRATION_WRITE_HELP") == "1")
        {
            WriteHelpFacts();
        }

        return true;
    });
}
