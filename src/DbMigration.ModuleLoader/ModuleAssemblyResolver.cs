using System.Reflection;
using System.Runtime.Loader;

namespace DbMigration.ModuleLoader;

/// <summary>
/// Answers the default context's misses for the module. DbMigration's own assemblies in module/bin load into the
/// default context beside the cmdlets, because pwsh resolves type literals such as [DbMigration.Backups.BackupInfo]
/// only there. The third-party ones in module/bin/Dependencies (Npgsql, Dapper, NodaTime, SQLite, zstd) load into a
/// private context, so another module's copy of the same library can neither break ours nor be broken by it.
/// </summary>
internal sealed class ModuleAssemblyResolver(string moduleBin)
{
    private readonly Lazy<DependencyLoadContext> _context = new(() => new DependencyLoadContext(Path.Combine(moduleBin, "Dependencies")));

    public DependencyLoadContext Dependencies => _context.Value;

    public Assembly? Resolve(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        if (name.Name is not { } simple)
        {
            return null;
        }

        var own = Path.Combine(moduleBin, simple + ".dll");
        if (simple.StartsWith("DbMigration.", StringComparison.Ordinal) && File.Exists(own))
        {
            return defaultContext.LoadFromAssemblyPath(own);
        }

        return _context.Value.Contains(simple) ? _context.Value.LoadFromAssemblyName(name) : null;
    }
}
