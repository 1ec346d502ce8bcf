namespace DbMigration.Providers;

/// <summary>For drivers that honour cancellation tokens themselves.</summary>
internal sealed class NoOpDisposable : IDisposable
{
    public static readonly NoOpDisposable Instance = new();

    public void Dispose()
    {
    }
}
