using System.Diagnostics;
using System.Globalization;
using DbMigration.MySql;

// Each workload prints one line: "<seconds> <rows>". The bench scripts run it beside the peer tool, in the same
// run and on the same data, and write the comparison to bench/results/.
//   mysql-read <connection string> <sql>
//   mysql-load <connection string> <table> <csv file> <comma-separated columns>
//   backup <target> <repository> <None|Fast|Small> [Auto|EngineTool|BuiltIn]   (prints seconds and the backup folder)
//   restore <target> <backup folder>                    (no safety backup; prints seconds and rows)
//   timezone <target> <zone> <batch size>               (Earlier/ShiftForward, no backup; prints seconds and rows)
//   timezone-session <hand target> <our target> <zone> <batch size> <runs> <fresh script> <hand sql>
//       Both sides in one already-running process, as a PowerShell session runs the cmdlet: one untimed warm-up
//       pair, then <runs> timed pairs taking turns to go first. Before each run, pooled connections are closed and
//       <fresh script> <hand|ours> makes a fresh copy, so each side pays for its own connection. Prints
//       "hand <seconds>" and "ours <seconds>" for each timed run.
//   restore-session <target> <backup folder> <runs> <settle script> <hand command> [<hand argument> ...]
//       Restore-MigrationBackup's service in one already-running process, beside <hand command> started as a
//       process from it, as a user runs pg_restore from the same PowerShell session: one untimed warm-up pair (its
//       restore verifies the backup in full, so the timed ones restore a verified backup), then <runs> timed pairs
//       taking turns to go first, each after pooled connections are closed and <settle script> has run. Prints
//       "hand <seconds>" and "ours <seconds>" for each timed run.
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: mysql-read <cs> <sql> | mysql-load <cs> <table> <csv> <columns> | backup <target> <repo> <compression> | restore <target> <backup> | timezone <target> <zone> <batch>");
    return 2;
}

if (args[0] == "timezone-session")
{
    return await TimezoneSessionAsync(args);
}

if (args[0] == "restore-session")
{
    return await RestoreSessionAsync(args);
}

var stopwatch = Stopwatch.StartNew();
long rows;
switch (args[0])
{
    case "mysql-read":
        rows = await ReadAllAsync(args[1], args[2]);
        break;
    case "mysql-load":
        rows = await LoadAsync(args[1], args[2], args[3], args[4]);
        break;
    case "backup":
        {
            var info = await new DbMigration.Backups.BackupService().CreateAsync(new DbMigration.Backups.BackupRequest
            {
                Source = DbMigration.Targets.DatabaseTarget.Parse(args[1]),
                Path = args[2],
                Compression = Enum.Parse<DbMigration.Backups.BackupCompression>(args[3]),
                DumpMethod = args.Length > 4 ? Enum.Parse<DbMigration.Backups.BackupDumpMethod>(args[4]) : DbMigration.Backups.BackupDumpMethod.Auto,
            }, null, CancellationToken.None);
            Console.Error.WriteLine(info.Path);
            rows = info.Tables.Sum(t => t.Rows);
            break;
        }

    case "timezone":
        rows = await ConvertTimezoneAsync(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
        break;

    case "restore":
        {
            var result = await new DbMigration.Backups.RestoreService().RestoreAsync(new DbMigration.Backups.RestoreRequest
            {
                Target = DbMigration.Targets.DatabaseTarget.Parse(args[1]),
                Backup = DbMigration.Backups.BackupManifest.Read(args[2]),
                SkipSafetyBackup = true,
            }, null, CancellationToken.None);
            rows = result.Tables.Sum(t => t.Rows);
            break;
        }
    default:
        Console.Error.WriteLine("unknown workload " + args[0]);
        return 2;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{stopwatch.Elapsed.TotalSeconds:0.000} {rows}"));
return 0;

// Invoke-TimezoneMigration's service with the bench's policy; a failed validation fails the workload.
static async Task<long> ConvertTimezoneAsync(string target, string zone, int batchSize)
{
    var result = await new DbMigration.Timezone.TimezoneMigrationService().RunAsync(new DbMigration.Timezone.TimezoneMigrationRequest
    {
        Target = DbMigration.Targets.DatabaseTarget.Parse(target),
        SourceTimeZone = zone,
        BatchSize = batchSize,
        Ambiguous = DbMigration.Timezone.AmbiguousTimePolicy.Earlier,
        Nonexistent = DbMigration.Timezone.NonexistentTimePolicy.ShiftForward,
        SkipBackup = true,
        ReportPath = Path.Combine(Path.GetTempPath(), "dbm-bench-tz-reports"),
    }, Trace(), CancellationToken.None);
    if (result.Validation?.Passed != true)
    {
        throw new InvalidOperationException("validation failed: " + string.Join("; ", result.Validation?.Checks ?? []));
    }

    return result.Columns.Max(c => c.RowsSeen);
}

static async Task<int> TimezoneSessionAsync(string[] args)
{
    if (args.Length != 8)
    {
        Console.Error.WriteLine("usage: timezone-session <hand target> <our target> <zone> <batch> <runs> <fresh script> <hand sql>");
        return 2;
    }

    var hand = DbMigration.Targets.DatabaseTarget.Parse(args[1]);
    var ours = DbMigration.Targets.DatabaseTarget.Parse(args[2]);
    var batchSize = int.Parse(args[4], CultureInfo.InvariantCulture);
    var runs = int.Parse(args[5], CultureInfo.InvariantCulture);
    var provider = DbMigration.Providers.DatabaseProviders.For(hand);

    async Task Fresh(string side)
    {
        // Idle pooled connections would keep the old copy from being dropped.
        provider.ReleasePooledConnections(hand);
        provider.ReleasePooledConnections(ours);
        using var process = Process.Start(new ProcessStartInfo(args[6], side) { RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("could not start " + args[6]);
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{args[6]} {side} exited with {process.ExitCode}");
        }
    }

    async Task<double> Hand()
    {
        await Fresh("hand");
        var clock = Stopwatch.StartNew();
        await using (var connection = await provider.OpenConnectionAsync(hand, TimeSpan.FromSeconds(30), CancellationToken.None))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = args[7];
            command.CommandTimeout = 0;
            await command.ExecuteNonQueryAsync();
        }

        return clock.Elapsed.TotalSeconds;
    }

    async Task<double> Ours()
    {
        await Fresh("ours");
        var clock = Stopwatch.StartNew();
        await ConvertTimezoneAsync(args[2], args[3], batchSize);
        return clock.Elapsed.TotalSeconds;
    }

    return await AlternatePairsAsync(runs, Hand, Ours);
}

static async Task<int> RestoreSessionAsync(string[] args)
{
    if (args.Length < 6)
    {
        Console.Error.WriteLine("usage: restore-session <target> <backup folder> <runs> <settle script> <hand command> [<hand argument> ...]");
        return 2;
    }

    var target = DbMigration.Targets.DatabaseTarget.Parse(args[1]);
    var runs = int.Parse(args[3], CultureInfo.InvariantCulture);
    var provider = DbMigration.Providers.DatabaseProviders.For(target);

    static async Task RunAsync(string file, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + file);
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} exited with {process.ExitCode}: {await errors}");
        }

        await output;
    }

    async Task Settle()
    {
        // Idle pooled connections would keep the database from being dropped.
        provider.ReleasePooledConnections(target);
        await RunAsync(args[4], []);
    }

    async Task<double> Hand()
    {
        await Settle();
        var clock = Stopwatch.StartNew();
        await RunAsync(args[5], args.Skip(6));
        return clock.Elapsed.TotalSeconds;
    }

    async Task<double> Ours()
    {
        await Settle();
        var clock = Stopwatch.StartNew();
        await new DbMigration.Backups.RestoreService().RestoreAsync(new DbMigration.Backups.RestoreRequest
        {
            Target = target,
            Backup = DbMigration.Backups.BackupManifest.Read(args[2]),
            SkipSafetyBackup = true,
        }, null, CancellationToken.None);
        return clock.Elapsed.TotalSeconds;
    }

    // The warm-up pair's restore goes first: it verifies the backup, so every timed restore is of a verified one.
    return await AlternatePairsAsync(runs, Hand, Ours);
}

// One untimed warm-up pair (ours first), then <runs> timed pairs taking turns to go first; prints each pair's times.
static async Task<int> AlternatePairsAsync(int runs, Func<Task<double>> hand, Func<Task<double>> ours)
{
    for (var run = 0; run <= runs; run++)
    {
        var handFirst = run % 2 == 1;
        var first = handFirst ? await hand() : await ours();
        var second = handFirst ? await ours() : await hand();
        var (handSeconds, ourSeconds) = handFirst ? (first, second) : (second, first);
        var prefix = run == 0 ? "warm-up " : string.Empty;
        var writer = run == 0 ? Console.Error : Console.Out;
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{prefix}hand {handSeconds:0.000}"));
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{prefix}ours {ourSeconds:0.000}"));
    }

    return 0;
}

// Materialises every value of every row, as the CLI formats every value.
static async Task<long> ReadAllAsync(string connectionString, string sql)
{
    await using var connection = new MySqlConnection(connectionString);
    await connection.OpenAsync();
    await using var command = new MySqlCommand(sql, connection) { CommandTimeout = 0 };
    await using var reader = await command.ExecuteReaderAsync();
    long rows = 0;
    var width = reader.FieldCount;
    while (await reader.ReadAsync())
    {
        for (var i = 0; i < width; i++)
        {
            _ = reader.GetValue(i);
        }

        rows++;
    }

    return rows;
}

static async Task<long> LoadAsync(string connectionString, string table, string csv, string columns)
{
    await using var connection = new MySqlConnection(connectionString);
    await connection.OpenAsync();
    await using var file = new FileStream(csv, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
    var loader = new MySqlBulkLoader(connection) { TableName = table, FieldTerminator = "," };
    foreach (var column in columns.Split(','))
    {
        loader.Columns.Add(column);
    }

    return await loader.LoadAsync(file);
}

// BENCH_TRACE=1: every message and progress step on stderr with the time since start, to see where a run's time goes.
static IProgress<DbMigration.Operations.OperationUpdate>? Trace()
{
    if (Environment.GetEnvironmentVariable("BENCH_TRACE") != "1")
    {
        return null;
    }

    var clock = Stopwatch.StartNew();
    return new SyncProgress(update => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds,8:0.000} {update}")));
}

sealed class SyncProgress(Action<DbMigration.Operations.OperationUpdate> report) : IProgress<DbMigration.Operations.OperationUpdate>
{
    public void Report(DbMigration.Operations.OperationUpdate value) => report(value);
}
