using System.Diagnostics;
using System.Globalization;
using DbMigration.Bench.Data;

// dotnet run --project bench/DbMigration.DataGen -c Release -- --engine sqlite|postgres|mariadb|csv --target <path|connection string> --rows 1000000 [--seed 42] [--zone America/New_York]
var options = ParseArgs(args);
if (!options.TryGetValue("engine", out var engine) || !options.TryGetValue("target", out var target))
{
    Console.Error.WriteLine("usage: --engine sqlite|postgres|mariadb|csv --target <path|connection string> [--rows N] [--seed S] [--zone IANA]");
    Console.Error.WriteLine("  sqlite:   --target ./events.db");
    Console.Error.WriteLine("  postgres: --target 'Host=127.0.0.1;Port=5432;Database=bench;Username=postgres;Password=…'");
    Console.Error.WriteLine("  mariadb:  --target 'host=127.0.0.1;port=3306;database=bench;user=root' (password from MYSQL_PWD; uses the mariadb CLI)");
    Console.Error.WriteLine("  csv:      --target ./events.csv");
    return 2;
}

var rows = long.Parse(options.GetValueOrDefault("rows", "100000"), CultureInfo.InvariantCulture);
var seed = int.Parse(options.GetValueOrDefault("seed", "42"), CultureInfo.InvariantCulture);
var generator = new EventsDataGenerator(options.GetValueOrDefault("zone", EventsDataGenerator.DefaultTimeZone));
var data = generator.Generate(rows, seed);
var stopwatch = Stopwatch.StartNew();
switch (engine)
{
    case "sqlite":
        await EventsLoader.LoadSqliteAsync(target, data);
        break;
    case "postgres":
        await EventsLoader.LoadPostgreSqlAsync(target, data);
        break;
    case "csv":
        await EventsSchema.WriteCsvAsync(target, data);
        break;
    case "mariadb":
        await LoadMariaDbAsync(target, data);
        break;
    default:
        Console.Error.WriteLine($"unknown engine '{engine}'");
        return 2;
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rows} rows -> {engine} in {stopwatch.Elapsed.TotalSeconds:0.00} s"));
return 0;

static Task LoadMariaDbAsync(string connection, IEnumerable<EventRow> data)
{
    var parts = connection.Split(';', StringSplitOptions.RemoveEmptyEntries)
        .Select(p => p.Split('=', 2))
        .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p.Length > 1 ? p[1].Trim() : string.Empty);
    var server = new MariaDbConnectionInfo(
        parts.GetValueOrDefault("host", "127.0.0.1"),
        int.Parse(parts.GetValueOrDefault("port", "3306"), CultureInfo.InvariantCulture),
        parts.GetValueOrDefault("user", "root"),
        Environment.GetEnvironmentVariable("MYSQL_PWD"),
        parts.GetValueOrDefault("database", "bench"));
    return EventsLoader.LoadMariaDbWithCliAsync(server, data);
}

static Dictionary<string, string> ParseArgs(string[] args)
{
    var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
    for (var i = 0; i + 1 < args.Length; i += 2)
    {
        result[args[i].TrimStart('-')] = args[i + 1];
    }

    return result;
}
