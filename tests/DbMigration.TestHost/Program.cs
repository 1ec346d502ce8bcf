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

Console.Error.WriteLine("usage: lock <target> <name> <holdMs> <timeoutMs>");
return 2;
