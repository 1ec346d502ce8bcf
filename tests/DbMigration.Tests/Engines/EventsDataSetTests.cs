using System.Text;
using DbMigration.Bench.Data;
using DbMigration.Providers;
using DbMigration.Tests.Fixtures;
using NodaTime;
using NodaTime.Text;

namespace DbMigration.Tests.Engines;

/// <summary>The benchmark data set: shape, size per row, and deliberate DST edge rows.</summary>
public sealed class EventsDataSetTests
{
    private static readonly LocalDateTimePattern Pattern = LocalDateTimePattern.CreateWithInvariantCulture("uuuu-MM-dd HH:mm:ss");

    [Fact]
    public void Rows_average_about_190_bytes()
    {
        var sb = new StringBuilder();
        foreach (var row in new EventsDataGenerator().Generate(20_000))
        {
            EventsSchema.AppendCsv(sb, row);
        }

        var average = sb.Length / 20_000.0;
        Assert.InRange(average, 175, 205);
    }

    [Theory]
    [InlineData("America/New_York")]
    [InlineData("Europe/London")]
    [InlineData("Australia/Lord_Howe")]
    public void One_row_in_a_thousand_sits_in_a_DST_gap_or_overlap_and_no_other_does(string zoneId)
    {
        var generator = new EventsDataGenerator(zoneId);
        var rows = generator.Generate(50_000).ToList();
        var edges = rows.Where(r => r.Edge != DstEdge.None).ToList();

        Assert.Equal(50, edges.Count);
        Assert.Contains(edges, r => r.Edge == DstEdge.Gap);
        Assert.Contains(edges, r => r.Edge == DstEdge.Overlap);
        foreach (var row in rows)
        {
            var mappings = generator.Zone.MapLocal(Pattern.Parse(row.CreatedAt).Value).Count;
            Assert.Equal(row.Edge switch { DstEdge.Gap => 0, DstEdge.Overlap => 2, _ => 1 }, mappings);
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_rows()
    {
        Assert.Equal(new EventsDataGenerator().Generate(100, 7), new EventsDataGenerator().Generate(100, 7));
        Assert.NotEqual(new EventsDataGenerator().Generate(100, 7), new EventsDataGenerator().Generate(100, 8));
    }

    [Fact]
    public async Task Loads_into_sqlite_with_its_secondary_index()
    {
        using var engine = new SqliteEngine();
        var target = await engine.CreateDatabaseAsync();
        await EventsLoader.LoadSqliteAsync(target.FilePath!, new EventsDataGenerator().Generate(2_000));

        await AssertLoadedAsync(target, 2_000);
    }

    /// <summary>Checks through the provider (introspection and counts) that the events table and its index exist.</summary>
    internal static async Task AssertLoadedAsync(DbMigration.Targets.DatabaseTarget target, long rows)
    {
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, TimeSpan.FromSeconds(10), CancellationToken.None);
        var events = Assert.Single(await provider.GetTablesAsync(connection, CancellationToken.None), t => t.Name.Name == "events");
        Assert.Equal(EventsSchema.Columns, events.Columns.Select(c => c.Name));
        Assert.Contains(events.Indexes, i => i.Name == EventsSchema.IndexName);
        Assert.Equal(rows, await provider.CountRowsAsync(connection, events.Name, CancellationToken.None));
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlEventsDataSetTests(PostgresServer server)
{
    [Fact]
    public async Task Loads_into_postgresql_with_its_secondary_index()
    {
        var target = await server.CreateDatabaseAsync();
        var connectionString = DbMigration.Providers.PostgreSql.PostgreSqlProvider.BuildConnectionString(target, TimeSpan.FromSeconds(10));
        await EventsLoader.LoadPostgreSqlAsync(connectionString, new EventsDataGenerator().Generate(2_000));

        await EventsDataSetTests.AssertLoadedAsync(target, 2_000);
    }
}

[Collection(MariaDbCollection.Name)]
public sealed class MariaDbEventsDataSetTests(MariaDbServer server)
{
    [Fact]
    public async Task Loads_into_mariadb_with_its_secondary_index()
    {
        var target = await server.CreateDatabaseAsync();
        var database = target.Database!;
        var client = ProcessRunner.FindBinary("mariadb", "DBMIGRATION_MARIADB_BINDIR");
        await EventsLoader.LoadMariaDbWithCliAsync(new MariaDbConnectionInfo("127.0.0.1", server.Port, "dbm", server.Password, database, client), new EventsDataGenerator().Generate(2_000));

        var counts = await server.RunSqlAsync($"SELECT COUNT(*), SUM(created_at LIKE '____-__-__ __:__:__') FROM `{database}`.events");
        Assert.Equal("2000\t2000", counts.Trim());
        await EventsDataSetTests.AssertLoadedAsync(target, 2_000);
    }
}
