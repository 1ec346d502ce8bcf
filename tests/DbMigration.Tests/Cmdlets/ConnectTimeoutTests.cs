using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.Targets;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Cmdlets;

/// <summary>
/// -ConnectTimeout is on every cmdlet that opens a database, and every connection the call opens honours it: a
/// backup, a restore or a status check used to wait a fixed 30 s (15 s) whatever the caller asked.
/// </summary>
public sealed class ConnectTimeoutTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    // Accepts connections and never answers: the client waits for the server's greeting until it gives up.
    private readonly TcpListener _silent = new(IPAddress.Loopback, 0);

    public ConnectTimeoutTests() => _silent.Start(backlog: 16);

    public void Dispose()
    {
        _silent.Stop();
        _dir.Dispose();
    }

    private int SilentPort => ((IPEndPoint)_silent.LocalEndpoint).Port;

    public static TheoryData<string> Schemes => new() { "postgres", "mysql" };

    [Theory]
    [MemberData(nameof(Schemes))]
    public void Backup_Database_gives_up_on_a_server_that_does_not_answer_after_the_ConnectTimeout_asked(string scheme)
    {
        var target = DatabaseTarget.Parse($"{scheme}://app:pw@127.0.0.1:{SilentPort}/shop");
        var clock = Stopwatch.StartNew();

        var error = Assert.Throws<DbMigrationException>(() =>
            new BackupDatabaseCommand { Database = target, Path = _dir.File("backups"), ConnectTimeout = 1, DumpMethod = DbMigration.Backups.BackupDumpMethod.BuiltIn }
                .Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        clock.Stop();
        Assert.Equal(ErrorIds.ConnectionTimeout, error.ErrorId);
        Assert.Equal(ErrorKind.OperationTimeout, error.Kind);
        // The fixed wait was 30 s; one second asked must not become it.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"gave up after {clock.Elapsed.TotalSeconds:0.0} s with -ConnectTimeout 1");
        Assert.False(Directory.Exists(Path.Combine(_dir.File("backups"), "shop")), "a backup that never connected leaves nothing");
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void Get_MigrationStatus_honours_the_ConnectTimeout_asked(string scheme)
    {
        var target = DatabaseTarget.Parse($"{scheme}://app:pw@127.0.0.1:{SilentPort}/shop");
        var clock = Stopwatch.StartNew();

        var error = Assert.Throws<DbMigrationException>(() =>
            new GetMigrationStatusCommand { Database = target, Path = _dir.Path, ConnectTimeout = 1 }.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        clock.Stop();
        Assert.Equal(ErrorIds.ConnectionTimeout, error.ErrorId);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"gave up after {clock.Elapsed.TotalSeconds:0.0} s with -ConnectTimeout 1");
    }

    [Fact]
    public void The_timeout_follows_the_target_into_the_scratch_and_restore_databases_it_derives()
    {
        var target = DatabaseTarget.Parse("postgres://app:pw@db.example/shop").WithConnectTimeout(TimeSpan.FromSeconds(7));

        Assert.Equal(TimeSpan.FromSeconds(7), target.WithDatabase("shop_restore").ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), target.WithCredential("dba", "secret").ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), DatabaseTarget.FromFile("app.db").WithConnectTimeout(TimeSpan.FromSeconds(7)).ResolveFilePath(Path.GetFullPath).ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), DatabaseTarget.Parse("Host=db;Database=shop").WithConnectTimeout(TimeSpan.FromSeconds(7)).WithEngine(DatabaseEngine.PostgreSql).ConnectTimeout);
        Assert.Null(DatabaseTarget.Parse("postgres://app@db.example/shop").ConnectTimeout);
        Assert.Contains("Timeout=7", Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(target, TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
    }
}
