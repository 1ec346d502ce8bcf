using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace DbMigration.ModuleLoader;

/// <summary>
/// DbMigration's private load context over module/bin/Dependencies. Managed assemblies found there load here;
/// framework assemblies fall through to the default context. Native libraries (e_sqlite3) resolve from
/// runtimes/&lt;rid&gt;/native for the running OS and architecture.
/// </summary>
internal sealed class DependencyLoadContext(string directory) : AssemblyLoadContext("DbMigration", isCollectible: false)
{
    public string Directory { get; } = directory;

    public bool Contains(string simpleName) => File.Exists(Path.Combine(Directory, simpleName + ".dll"));

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var path = Path.Combine(Directory, assemblyName.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = FindNativeLibrary(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }

    /// <summary>The native library file for this platform, or null when the module does not ship one.</summary>
    public string? FindNativeLibrary(string name)
    {
        foreach (var rid in RuntimeIdentifiers())
        {
            foreach (var file in FileNames(name))
            {
                var candidate = Path.Combine(Directory, "runtimes", rid, "native", file);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static IEnumerable<string> FileNames(string name)
    {
        if (OperatingSystem.IsWindows())
        {
            yield return name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? name : name + ".dll";
        }
        else
        {
            var extension = OperatingSystem.IsMacOS() ? ".dylib" : ".so";
            yield return name.StartsWith("lib", StringComparison.Ordinal) ? name + extension : "lib" + name + extension;
            yield return name + extension;
        }
    }

    private static IEnumerable<string> RuntimeIdentifiers()
    {
        var arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };
        if (OperatingSystem.IsWindows())
        {
            yield return "win-" + arch;
        }
        else if (OperatingSystem.IsMacOS())
        {
            yield return "osx-" + arch;
        }
        else
        {
            if (IsMusl())
            {
                yield return "linux-musl-" + arch;
            }

            yield return "linux-" + arch;
        }
    }

    private static bool IsMusl() =>
        System.IO.Directory.Exists("/lib") && System.IO.Directory.EnumerateFiles("/lib", "ld-musl-*").Any();
}
