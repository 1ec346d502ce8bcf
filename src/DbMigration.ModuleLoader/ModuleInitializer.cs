using System.Management.Automation;
using System.Runtime.Loader;

namespace DbMigration.ModuleLoader;

/// <summary>
/// The manifest's nested module, imported before the cmdlet assembly: pwsh runs its initializer first, and reading
/// the cmdlet types already needs Core (enum parameters are fields whose types Core defines).
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly ModuleAssemblyResolver Resolver = new(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!);

    public void OnImport() => AssemblyLoadContext.Default.Resolving += Resolver.Resolve;

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= Resolver.Resolve;
}
