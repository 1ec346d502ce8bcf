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
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: mysql-read <cs> <sql> | mysql-load <cs> <table> <csv> <columns> | backup <target> <repo> <compression> | restore <target> <backup> | timezone <target> <zone> <batch>");
    return 2;
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
        {
            var result = await new DbMigration.Timezone.TimezoneMigrationService().RunAsync(new DbMigration.Timezone.TimezoneMigrationRequest
            {
                Target = DbMigration.Targets.DatabaseTarget.Parse(args[1]),
                SourceTimeZone = args[2],
                BatchSize = int.Parse(args[3], CultureInfo.InvariantCulture),
                Ambiguous = DbMigration.Timezone.AmbiguousTimePolicy.Earlier,
                Nonexistent = DbMigration.Timezone.NonexistentTimePolicy.ShiftForward,
                SkipBackup = true,
                ReportPath = Path.Combine(Path.GetTempPath(), "dbm-bench-tz-reports"),
            }, null, CancellationToken.None);
            if (result.Validation?.Passed != true)
            {
                Console.Error.WriteLine("validation failed: " + string.Join("; ", result.Validation?.Checks ?? []));
                return 1;
            }

            rows = result.Columns.Max(c => c.RowsSeen);
            break;
        }

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
