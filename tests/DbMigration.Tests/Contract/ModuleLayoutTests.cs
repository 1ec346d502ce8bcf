using System.Reflection;
using DbMigration.ModuleLoader;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>
/// The module's layout: our own assemblies in module/bin for pwsh's default context, the third-party ones and the
/// native SQLite library in module/bin/Dependencies for the private context.
/// </summary>
public sealed class ModuleLayoutTests
{
    private static readonly string ModuleBin = Repo.PathOf("module", "bin");
    private static readonly string Dependencies = Repo.PathOf("module", "bin", "Dependencies");

    [Fact]
    public void The_native_sqlite_library_resolves_for_this_platform()
    {
        var context = new DependencyLoadContext(Dependencies);
        var path = context.FindNativeLibrary("e_sqlite3");

        Assert.NotNull(path);
        Assert.True(File.Exists(path));
        Assert.StartsWith(Dependencies, path, StringComparison.Ordinal);
    }

    [Fact]
    public void The_drivers_load_into_the_private_context_and_open_sqlite()
    {
        var context = new DependencyLoadContext(Dependencies);

        var sqlite = context.LoadFromAssemblyName(new AssemblyName("Microsoft.Data.Sqlite"));
        Assert.Same(context, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(sqlite));
        context.LoadFromAssemblyName(new AssemblyName("SQLitePCLRaw.batteries_v2")).GetType("SQLitePCL.Batteries_V2")!.GetMethod("Init")!.Invoke(null, null);

        using var connection = (System.Data.Common.DbConnection)Activator.CreateInstance(sqlite.GetType("Microsoft.Data.Sqlite.SqliteConnection")!, "Data Source=:memory:")!;
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sqlite_version()";
        Assert.StartsWith("3.", (string)command.ExecuteScalar()!, StringComparison.Ordinal);
    }

    [Fact]
    public void The_resolver_loads_our_assemblies_beside_the_cmdlets_and_the_drivers_privately()
    {
        var resolver = new ModuleAssemblyResolver(ModuleBin);
        // A stand-in for pwsh's default context: this test process has its own Core loaded already.
        var standIn = new System.Runtime.Loader.AssemblyLoadContext("default stand-in", isCollectible: true);
        try
        {
            var core = resolver.Resolve(standIn, new AssemblyName("DbMigration.Core"));
            Assert.NotNull(core);
            Assert.Same(standIn, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(core));
            Assert.Equal(Path.Combine(ModuleBin, "DbMigration.Core.dll"), core.Location);

            var npgsql = resolver.Resolve(standIn, new AssemblyName("Npgsql"));
            Assert.NotNull(npgsql);
            Assert.Same(resolver.Dependencies, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(npgsql));

            Assert.Null(resolver.Resolve(standIn, new AssemblyName("Some.Other.Module")));
        }
        finally
        {
            standIn.Unload();
        }
    }

    [Fact]
    public void Every_assembly_our_own_reference_ships_in_the_module_or_comes_from_the_runtime()
    {
        var context = new DependencyLoadContext(Dependencies);
        var runtime = System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory();
        var checkedNames = new List<string>();
        foreach (var name in new[] { "DbMigration.PowerShell", "DbMigration.Core", "DbMigration.MySql" })
        {
            Assert.False(File.Exists(Path.Combine(Dependencies, name + ".dll")), $"{name} must not also sit in Dependencies");
            foreach (var reference in ReferencesOf(Path.Combine(ModuleBin, name + ".dll")))
            {
                checkedNames.Add(reference.Name!);
                if (reference.Name is "System.Management.Automation")
                {
                    continue; // pwsh's own
                }

                if (reference.Name!.StartsWith("DbMigration.", StringComparison.Ordinal))
                {
                    Assert.True(File.Exists(Path.Combine(ModuleBin, reference.Name + ".dll")), $"{name} needs {reference.Name} in module/bin");
                    continue;
                }

                var loaded = context.LoadFromAssemblyName(reference);
                var shipped = loaded.Location.StartsWith(Dependencies, StringComparison.Ordinal);
                Assert.True(shipped || loaded.Location.StartsWith(runtime, StringComparison.Ordinal), $"{reference.Name} loaded from {loaded.Location}");
            }
        }

        // The compression library behind -Compress Fast must be one of them.
        Assert.Contains("ZstdSharp", checkedNames);
    }

    private static List<AssemblyName> ReferencesOf(string path)
    {
        using var stream = File.OpenRead(path);
        using var pe = new System.Reflection.PortableExecutable.PEReader(stream);
        var metadata = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(pe);
        return metadata.AssemblyReferences.Select(handle => metadata.GetAssemblyReference(handle).GetAssemblyName()).ToList();
    }

    [Fact]
    public void Framework_assemblies_fall_through_to_the_shared_runtime()
    {
        var context = new DependencyLoadContext(Dependencies);
        var runtime = context.LoadFromAssemblyName(new AssemblyName("System.Runtime"));
        Assert.NotSame(context, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(runtime));
    }
}
