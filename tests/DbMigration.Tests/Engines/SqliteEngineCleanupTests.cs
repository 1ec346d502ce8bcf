using System.Reflection;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Engines;

/// <summary>
/// Every test class that builds its own SQLite engine removes the engine's temp folder when xUnit disposes it, so a
/// test run (or a CI machine's many) does not leave gigabytes of databases behind in the temp folder.
/// </summary>
public sealed class SqliteEngineCleanupTests
{
    public static TheoryData<string> ClassesWithOwnSqliteEngine()
    {
        var data = new TheoryData<string>();
        foreach (var type in EngineSuites())
        {
            data.Add(type.FullName!);
        }

        return data;
    }

    [Fact]
    public void The_engine_suites_are_found()
    {
        var found = EngineSuites().ToList();
        Assert.Contains(typeof(Migrations.SqliteMigrationEngineTests), found);
        Assert.Contains(typeof(Timezone.SqliteTimezoneEngineTests), found);
        Assert.Contains(typeof(Conformance.SqliteProviderConformanceTests), found);
    }

    /// <summary>Test classes built without a server fixture whose base takes an engine: each builds its own SQLite one.</summary>
    private static IEnumerable<Type> EngineSuites() =>
        typeof(SqliteEngineCleanupTests).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false, IsPublic: true } && t.GetConstructor(Type.EmptyTypes) is not null && EngineProperty(t) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(ClassesWithOwnSqliteEngine))]
    public async Task Disposing_the_test_class_removes_its_databases(string typeName)
    {
        var type = typeof(SqliteEngineCleanupTests).Assembly.GetType(typeName, throwOnError: true)!;
        var instance = Activator.CreateInstance(type)!;
        var engine = Assert.IsType<SqliteEngine>(EngineProperty(type)!.GetValue(instance));
        var target = await engine.CreateDatabaseAsync();
        Assert.True(File.Exists(target.FilePath));

        var disposable = Assert.IsAssignableFrom<IDisposable>(instance);
        disposable.Dispose();

        Assert.False(Directory.Exists(engine.Directory), $"{type.Name} left {engine.Directory} behind.");
    }

    private static PropertyInfo? EngineProperty(Type type)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            var property = current.GetProperty("Engine", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly);
            if (property is not null && property.PropertyType == typeof(IEngineUnderTest))
            {
                return property;
            }
        }

        return null;
    }
}
