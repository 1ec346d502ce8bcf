namespace DbMigration.Tests.Fixtures;

/// <summary>Paths inside the repository, found from the test assembly's location.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string TestHostDll => PathOf("tests", "DbMigration.TestHost", "bin", Configuration, "net10.0", "DbMigration.TestHost.dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DbMigration.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (DbMigration.sln) above " + AppContext.BaseDirectory);
    }
}
