using System.Globalization;
using DbMigration.Errors;
using DbMigration.Providers;
using DbMigration.Targets;

// Usage: lock <target> <name> <holdMilliseconds> <timeoutMilliseconds>
// Prints ACQUIRED when the lock is held and RELEASED after; TIMEOUT (exit 3) when it cannot be taken.
// Passwords come from DBMIGRATION_PASSWORD, never from the command line.
if (args.Length == 5 && args[0] == "lock")
{
    var target = DatabaseTarget.Parse(args[1]);
    var hold = TimeSpan.FromMilliseconds(int.Parse(args[3], CultureInfo.InvariantCulture));
    var timeout = TimeSpan.FromMilliseconds(int.Parse(args[4], CultureInfo.InvariantCulture));
    try
    {
        await using (await DatabaseProviders.For(target).AcquireLockAsync(target, args[2], timeout, CancellationToken.None))
        {
            Console.WriteLine("ACQUIRED");
            await Task.Delay(hold);
        }

        Console.WriteLine("RELEASED");
        return 0;
    }
    catch (DbMigrationException ex) when (ex.ErrorId == ErrorIds.LockTimeout)
    {
        Console.WriteLine("TIMEOUT");
        return 3;
    }
}

// Usage: backup <target> <repository>   and   restore <target> <backup folder>
// Print STARTED, then DONE when finished; tests kill the process in between.
if (args.Length == 3 && args[0] == "backup")
{
    Console.WriteLine("STARTED");
    await new DbMigration.Backups.BackupService().CreateAsync(
        new DbMigration.Backups.BackupRequest { Source = DatabaseTarget.Parse(args[1]), Path = args[2], Compression = DbMigration.Backups.BackupCompression.Small },
        null, CancellationToken.None);
    Console.WriteLine("DONE");
    return 0;
}

if (args.Length == 3 && args[0] == "restore")
{
    Console.WriteLine("STARTED");
    await new DbMigration.Backups.RestoreService().RestoreAsync(
        new DbMigration.Backups.RestoreRequest { Target = DatabaseTarget.Parse(args[1]), Backup = DbMigration.Backups.BackupManifest.Read(args[2]), SkipSafetyBackup = true },
        null, CancellationToken.None);
    Console.WriteLine("DONE");
    return 0;
}

// Usage: verify <backup folder>: Test-DatabaseBackup's verification, printing the verdict (Passed, Failed) at the end.
if (args.Length == 2 && args[0] == "verify")
{
    Console.WriteLine("STARTED");
    var verdict = await new DbMigration.Backups.BackupVerifier().VerifyAsync(DbMigration.Backups.BackupManifest.Read(args[1]), null, null, null, CancellationToken.None);
    Console.WriteLine(verdict.Status);
    return 0;
}

// Usage: migrate <target> <folder> [lockTimeoutSeconds]: applies pending migrations (no backup, no pre-flight),
// printing LOCKED once the run holds the lock, APPLIED <version> per migration, then DONE.
if (args.Length >= 3 && args[0] == "migrate")
{
    var target = DatabaseTarget.Parse(args[1]);
    var request = new DbMigration.Migrations.MigrationRequest
    {
        Target = target,
        Path = args[2],
        SkipBackup = true,
        Force = true,
        LockTimeout = TimeSpan.FromSeconds(args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 60),
    };
    var service = new DbMigration.Migrations.MigrationService();
    var plan = await service.PlanAsync(request, CancellationToken.None);
    Console.WriteLine("PLANNED " + plan.Steps.Count);
    var progress = new LineProgress();
    await service.ExecuteAsync(request, plan.Steps.Select(s => s.Version).ToHashSet(), run => Console.WriteLine("APPLIED " + run.Version), progress, CancellationToken.None);
    Console.WriteLine("DONE");
    return 0;
}

// Usage: tz <target> <zone> <batchSize>: converts with Earlier/ShiftForward and no backup; prints STARTED, then DONE.
if (args.Length is 4 or 5 or 6 && args[0] == "tz")
{
    Console.WriteLine("STARTED");
    // "pause-mid": stop inside the first table's conversion, so a test kills the run there and not by luck.
    var pause = args.Length == 6 && args[5] == "pause-mid" ? new PauseMidConversion() : null;
    var result = await new DbMigration.Timezone.TimezoneMigrationService().RunAsync(new DbMigration.Timezone.TimezoneMigrationRequest
    {
        Target = DatabaseTarget.Parse(args[1]),
        SourceTimeZone = args[2],
        BatchSize = int.Parse(args[3], CultureInfo.InvariantCulture),
        CommitInterval = args.Length == 5 ? TimeSpan.FromSeconds(double.Parse(args[4], CultureInfo.InvariantCulture)) : TimeSpan.FromSeconds(60),
        Ambiguous = DbMigration.Timezone.AmbiguousTimePolicy.Earlier,
        Nonexistent = DbMigration.Timezone.NonexistentTimePolicy.ShiftForward,
        SkipBackup = true,
        ReportPath = Path.Combine(Path.GetTempPath(), "dbm-tz-reports"),
    }, pause, CancellationToken.None);
    Console.WriteLine("DONE " + result.RunId);
    return 0;
}

Console.Error.WriteLine("usage: lock <target> <name> <holdMs> <timeoutMs> | backup <target> <repository> | restore <target> <backup folder>");
return 2;

/// <summary>
/// Prints MID and waits at the first progress report from inside a table's conversion (SQLite reports it from
/// the statement that fills the new table, inside the run's transaction), for the test to kill the process there.
/// </summary>
internal sealed class PauseMidConversion : IProgress<DbMigration.Operations.OperationUpdate>
{
    public void Report(DbMigration.Operations.OperationUpdate value)
    {
        if (value is DbMigration.Operations.ProgressUpdate { Activity: "Invoke-TimezoneMigration", PercentComplete: > 0 and < 100 })
        {
            Console.WriteLine("MID");
            Thread.Sleep(TimeSpan.FromMinutes(2));
        }
    }
}

/// <summary>Prints LOCKED when the migration starts its first migration (the lock is held by then).</summary>
internal sealed class LineProgress : IProgress<DbMigration.Operations.OperationUpdate>
{
    private bool _printed;

    public void Report(DbMigration.Operations.OperationUpdate value)
    {
        if (!_printed && value is DbMigration.Operations.ProgressUpdate { Activity: "Invoke-DatabaseMigration" })
        {
            _printed = true;
            Console.WriteLine("LOCKED");
        }
    }
}
