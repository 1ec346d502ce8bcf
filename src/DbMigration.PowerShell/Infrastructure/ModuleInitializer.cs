using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>
/// Loads DbMigration.Core and its third-party dependencies (Npgsql, Dapper, SQLite) into a private
/// AssemblyLoadContext, so another module's copy of the same library can neither break ours nor be broken by it.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly Lazy<DependencyLoadContext> Context = new(() =>
        new DependencyLoadContext(Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "Dependencies")));

    public void OnImport() => AssemblyLoadContext.Default.Resolving += ResolveCore;

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= ResolveCore;

    // Only our own engine assembly is redirected; everything it references then resolves inside the context.
    private static Assembly? ResolveCore(AssemblyLoadContext defaultContext, AssemblyName name) =>
        name.Name is { } simple && simple.StartsWith("DbMigration.", StringComparison.Ordinal) && Context.Value.Contains(simple)
            ? Context.Value.LoadFromAssemblyName(name)
            : null;
}
