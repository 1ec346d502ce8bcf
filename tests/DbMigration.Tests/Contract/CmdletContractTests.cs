using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using DbMigration.Errors;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>Rules every cmdlet and the module manifest obey, checked over the built assembly.</summary>
public sealed partial class CmdletContractTests
{
    private static readonly Assembly CmdletAssembly = typeof(DbMigrationCmdlet).Assembly;

    /// <summary>Verbs that only read; every other verb changes something and needs ShouldProcess.</summary>
    private static readonly HashSet<string> ReadOnlyVerbs = new(StringComparer.OrdinalIgnoreCase)
    {
        "Get", "Test", "Find", "Measure", "Show", "Compare", "Read", "Search", "Resolve", "Select", "Watch", "Trace", "Wait", "Ping",
    };

    public static TheoryData<Type> Cmdlets()
    {
        var data = new TheoryData<Type>();
        foreach (var type in CmdletTypes())
        {
            data.Add(type);
        }

        return data;
    }

    private static IEnumerable<Type> CmdletTypes() =>
        CmdletAssembly.GetTypes().Where(t => t.GetCustomAttribute<CmdletAttribute>() is not null).OrderBy(t => t.Name);

    /// <summary>
    /// Attribute values read from metadata: the reference System.Management.Automation is a stub whose attribute
    /// properties return null, so instantiating the attributes would prove nothing.
    /// </summary>
    private sealed record CmdletDeclaration(string Verb, string Noun, bool SupportsShouldProcess, IReadOnlyList<object> OutputTypes);

    private static CmdletDeclaration Declaration(Type type)
    {
        var cmdlet = type.CustomAttributes.Single(a => a.AttributeType == typeof(CmdletAttribute));
        var supports = cmdlet.NamedArguments.Where(n => n.MemberName == nameof(CmdletAttribute.SupportsShouldProcess)).Select(n => (bool)n.TypedValue.Value!).FirstOrDefault();
        var outputs = type.CustomAttributes.Where(a => a.AttributeType == typeof(OutputTypeAttribute))
            .SelectMany(a => (IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!)
            .Select(v => v.Value!)
            .ToList();
        return new CmdletDeclaration((string)cmdlet.ConstructorArguments[0].Value!, (string)cmdlet.ConstructorArguments[1].Value!, supports, outputs);
    }

    private static string? HelpMessage(PropertyInfo property) =>
        property.CustomAttributes.Where(a => a.AttributeType == typeof(ParameterAttribute))
            .SelectMany(a => a.NamedArguments)
            .Where(n => n.MemberName == nameof(ParameterAttribute.HelpMessage))
            .Select(n => (string?)n.TypedValue.Value)
            .FirstOrDefault();

    private static bool IsParameter(PropertyInfo property) => property.CustomAttributes.Any(a => a.AttributeType == typeof(ParameterAttribute));

    private static string CmdletName(Type type)
    {
        var declaration = Declaration(type);
        return declaration.Verb + "-" + declaration.Noun;
    }

    private static HashSet<string> ApprovedVerbs() =>
        typeof(VerbsCommon).Assembly.GetTypes()
            .Where(t => t.Namespace == "System.Management.Automation" && t.Name.StartsWith("Verbs", StringComparison.Ordinal))
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static))
            .Where(f => f.IsLiteral)
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    [Fact]
    public void The_assembly_has_cmdlets_and_the_approved_verb_list_is_readable()
    {
        Assert.NotEmpty(CmdletTypes());
        Assert.Contains("Invoke", ApprovedVerbs());
        Assert.True(ApprovedVerbs().Count > 90);
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Each_cmdlet_is_sealed_uses_an_approved_verb_and_lives_in_its_own_file(Type type)
    {
        var declaration = Declaration(type);
        Assert.True(type.IsSealed, $"{type.Name} must be sealed");
        Assert.Contains(declaration.Verb, ApprovedVerbs());
        Assert.True(typeof(DbMigrationCmdlet).IsAssignableFrom(type), $"{type.Name} must derive from DbMigrationCmdlet");
        Assert.Equal(declaration.Verb + declaration.Noun + "Command", type.Name);
        Assert.True(File.Exists(Repo.PathOf("src", "DbMigration.PowerShell", "Commands", type.Name + ".cs")), $"{type.Name}.cs is missing under Commands/");
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Each_cmdlet_declares_typed_output_and_writers_support_ShouldProcess(Type type)
    {
        var declaration = Declaration(type);
        Assert.NotEmpty(declaration.OutputTypes);
        if (!ReadOnlyVerbs.Contains(declaration.Verb))
        {
            Assert.True(declaration.SupportsShouldProcess, $"{CmdletName(type)} changes things and must support -WhatIf/-Confirm");
        }
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Each_parameter_has_a_help_message(Type type)
    {
        var parameters = type.GetProperties().Where(IsParameter).ToList();
        Assert.NotEmpty(parameters);
        foreach (var property in parameters)
        {
            Assert.False(string.IsNullOrWhiteSpace(HelpMessage(property)), $"{CmdletName(type)} -{property.Name} has no HelpMessage");
        }
    }

    [Fact]
    public void The_manifest_exports_exactly_the_cmdlets_in_the_assembly()
    {
        var manifest = File.ReadAllText(Repo.PathOf("DbMigration.psd1"));
        var block = CmdletsToExportBlock().Match(manifest);
        Assert.True(block.Success, "CmdletsToExport not found in DbMigration.psd1");
        var exported = QuotedString().Matches(block.Groups[1].Value).Select(m => m.Groups[1].Value).Order().ToList();

        Assert.Equal(CmdletTypes().Select(CmdletName).Order().ToList(), exported);
    }

    [Fact]
    public void The_manifest_version_equals_the_build_version()
    {
        var manifest = File.ReadAllText(Repo.PathOf("DbMigration.psd1"));
        var moduleVersion = ManifestValue(manifest, "ModuleVersion");
        var props = XDocument.Load(Repo.PathOf("Directory.Build.props"));
        var buildVersion = props.Descendants("Version").Single().Value;

        Assert.Equal(buildVersion, moduleVersion);
        Assert.Equal(new Version(buildVersion), new Version(CmdletAssembly.GetName().Version!.ToString(3)));
    }

    [Fact]
    public void Every_file_the_manifest_names_exists_after_build()
    {
        var manifest = File.ReadAllText(Repo.PathOf("DbMigration.psd1"));
        var files = new List<string> { ManifestValue(manifest, "RootModule") };
        foreach (var key in new[] { "FormatsToProcess", "TypesToProcess", "NestedModules", "RequiredAssemblies" })
        {
            var list = Regex.Match(manifest, key + @"\s*=\s*@\(([^)]*)\)");
            if (list.Success)
            {
                files.AddRange(QuotedString().Matches(list.Groups[1].Value).Select(m => m.Groups[1].Value));
            }
        }

        Assert.All(files, f => Assert.True(File.Exists(Repo.PathOf(f.Split('/', '\\'))), $"{f} named in DbMigration.psd1 does not exist"));
        // pwsh reads a binary module's help from <module base>/<culture>, and the module base is the manifest's folder.
        Assert.True(File.Exists(Repo.PathOf("en-US", "DbMigration.PowerShell.dll-Help.xml")), "help is not beside DbMigration.psd1");
        Assert.True(File.Exists(Repo.PathOf("module", "bin", "DbMigration.Core.dll")), "Core sits beside the cmdlets");
        Assert.True(File.Exists(Repo.PathOf("module", "bin", "Dependencies", "Npgsql.dll")), "drivers sit in Dependencies");
        Assert.False(File.Exists(Repo.PathOf("module", "bin", "Dependencies", "System.Management.Automation.dll")), "the reference SMA must not ship");
    }

    [Theory]
    [InlineData("linux-x64", "libe_sqlite3.so")]
    [InlineData("win-x64", "e_sqlite3.dll")]
    [InlineData("osx-x64", "libe_sqlite3.dylib")]
    [InlineData("osx-arm64", "libe_sqlite3.dylib")]
    public void The_native_sqlite_library_ships_for_each_platform(string rid, string file)
    {
        Assert.True(File.Exists(Repo.PathOf("module", "bin", "Dependencies", "runtimes", rid, "native", file)), $"{rid}/{file} missing");
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Each_cmdlet_has_help_with_a_description_examples_and_every_parameter(Type type)
    {
        XNamespace command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
        XNamespace maml = "http://schemas.microsoft.com/maml/2004/10";
        XNamespace dev = "http://schemas.microsoft.com/maml/dev/2004/10";
        var help = XDocument.Load(Repo.PathOf("en-US", "DbMigration.PowerShell.dll-Help.xml"));
        var entry = help.Descendants(command + "command").SingleOrDefault(c => c.Element(command + "details")?.Element(command + "name")?.Value == CmdletName(type));
        Assert.True(entry is not null, $"no help for {CmdletName(type)}");

        Assert.False(string.IsNullOrWhiteSpace(entry!.Element(command + "details")!.Element(maml + "description")?.Value), "no synopsis");
        Assert.False(string.IsNullOrWhiteSpace(entry.Element(maml + "description")?.Value), "no description");
        var examples = entry.Descendants(command + "example").ToList();
        Assert.NotEmpty(examples);
        Assert.All(examples, e => Assert.Contains(CmdletName(type), e.Element(dev + "code")!.Value, StringComparison.Ordinal));

        var documented = entry.Element(command + "parameters")!.Elements(command + "parameter")
            .ToDictionary(p => p.Element(maml + "name")!.Value, p => p.Element(maml + "description")?.Value ?? string.Empty, StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties().Where(IsParameter))
        {
            Assert.True(documented.TryGetValue(property.Name, out var text) && text.Trim().Length > 20, $"{CmdletName(type)} -{property.Name} is not documented in the help");
        }
    }

    [Fact]
    public void Every_error_kind_maps_to_a_PowerShell_error_category()
    {
        var categories = Enum.GetNames<ErrorCategory>().ToHashSet();
        Assert.All(Enum.GetNames<ErrorKind>(), name => Assert.Contains(name, categories));
    }

    [Fact]
    public void Error_ids_are_stable_shaped_and_unique()
    {
        var ids = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToList();
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.Matches("^DbMigration\\.[A-Z][A-Za-z]+\\.[A-Z][A-Za-z]+$", id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void The_core_assembly_does_not_reference_PowerShell()
    {
        var references = typeof(DbMigration.Targets.DatabaseTarget).Assembly.GetReferencedAssemblies().Select(a => a.Name);
        Assert.DoesNotContain("System.Management.Automation", references);
    }

    [Fact]
    public void Format_views_name_real_result_types()
    {
        var format = XDocument.Load(Repo.PathOf("module", "DbMigration.Format.ps1xml"));
        var typeNames = format.Descendants("TypeName").Select(t => t.Value).ToList();
        Assert.NotEmpty(typeNames);
        var core = typeof(DbMigration.Targets.DatabaseTarget).Assembly;
        Assert.All(typeNames, name => Assert.NotNull(core.GetType(name)));
    }

    [Fact]
    public void Output_types_are_named_classes_not_object_or_string()
    {
        foreach (var type in CmdletTypes())
        {
            foreach (var output in Declaration(type).OutputTypes)
            {
                var name = output is Type t ? t.FullName : (string)output;
                Assert.NotEqual(typeof(object).FullName, name);
                Assert.NotEqual(typeof(string).FullName, name);
                Assert.NotEqual(typeof(PSObject).FullName, name);
                var ours = output is Type type2 ? type2.IsPrimitive || type2.Namespace!.StartsWith("DbMigration", StringComparison.Ordinal) : name!.StartsWith("DbMigration.", StringComparison.Ordinal);
                Assert.True(ours, $"{CmdletName(type)} declares output {name}: use a DbMigration result class");
            }
        }
    }

    private static string ManifestValue(string manifest, string key)
    {
        var match = Regex.Match(manifest, key + @"\s*=\s*'([^']*)'");
        Assert.True(match.Success, key + " not found in DbMigration.psd1");
        return match.Groups[1].Value;
    }

    [GeneratedRegex(@"CmdletsToExport\s*=\s*@\(([^)]*)\)", RegexOptions.Singleline)]
    private static partial Regex CmdletsToExportBlock();

    [GeneratedRegex("'([^']*)'")]
    private static partial Regex QuotedString();
}
