using System.Reflection;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Contract;

/// <summary>The module's private load context loads our dependencies and the native SQLite library from module/bin.</summary>
public sealed class ModuleLayoutTests
{
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
    public void Core_and_its_drivers_load_into_the_private_context_and_open_sqlite()
    {
        var context = new DependencyLoadContext(Dependencies);
        var core = context.LoadFromAssemblyName(new AssemblyName("DbMigration.Core"));
        Assert.Same(context, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(core));
        Assert.NotSame(typeof(DbMigration.Targets.DatabaseTarget).Assembly, core);

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
    public void Every_assembly_core_references_ships_in_the_module_or_comes_from_the_runtime()
    {
        var context = new DependencyLoadContext(Dependencies);
        var runtime = System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory();
        var checkedNames = new List<string>();
        foreach (var name in new[] { "DbMigration.Core", "DbMigration.MySql" })
        {
            var assembly = context.LoadFromAssemblyName(new AssemblyName(name));
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                var loaded = context.LoadFromAssemblyName(reference);
                var shipped = loaded.Location.StartsWith(Dependencies, StringComparison.Ordinal);
                Assert.True(shipped || loaded.Location.StartsWith(runtime, StringComparison.Ordinal), $"{reference.Name} loaded from {loaded.Location}");
                checkedNames.Add(reference.Name!);
            }
        }

        // The compression library behind -Compress Fast must be one of them.
        Assert.Contains("ZstdSharp", checkedNames);
    }

    [Fact]
    public void Framework_assemblies_fall_through_to_the_shared_runtime()
    {
        var context = new DependencyLoadContext(Dependencies);
        var runtime = context.LoadFromAssemblyName(new AssemblyName("System.Runtime"));
        Assert.NotSame(context, System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(runtime));
    }
}
