using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace DbMigration.Bench.Data;

/// <summary>Loads the events table into SQLite and PostgreSQL the fastest plain way each engine offers.</summary>
public static class EventsLoader
{
    /// <summary>Creates (or replaces) the events table in a SQLite file, creating the file if needed.</summary>
    public static async Task LoadSqliteAsync(string path, IEnumerable<EventRow> rows, CancellationToken cancellationToken = default)
    {
        SQLitePCL.Batteries_V2.Init();
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, "PRAGMA synchronous = OFF; DROP TABLE IF EXISTS events;" + EventsSchema.Sqlite, cancellationToken).ConfigureAwait(false);
        await using (var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO events VALUES ($id, $device, $type, $location, $created, $updated, $amount, $uuid, $note)";
            var parameters = new[] { "$id", "$device", "$type", "$location", "$created", "$updated", "$amount", "$uuid", "$note" }
                .Select(name => insert.Parameters.Add(name, SqliteType.Text)).ToArray();
            parameters[0].SqliteType = SqliteType.Integer;
            parameters[1].SqliteType = SqliteType.Integer;
            parameters[6].SqliteType = SqliteType.Real;
            insert.Prepare();
            foreach (var row in rows)
            {
                parameters[0].Value = row.Id;
                parameters[1].Value = row.DeviceId;
                parameters[2].Value = row.EventType;
                parameters[3].Value = row.Location;
                parameters[4].Value = row.CreatedAt;
                parameters[5].Value = row.UpdatedAt;
                parameters[6].Value = row.Amount;
                parameters[7].Value = row.EventUuid;
                parameters[8].Value = row.Note;
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, EventsSchema.CreateIndex + "PRAGMA synchronous = FULL;", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates (or replaces) the events table in a PostgreSQL database with binary COPY.</summary>
    public static async Task LoadPostgreSqlAsync(string connectionString, IEnumerable<EventRow> rows, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var create = new NpgsqlCommand("DROP TABLE IF EXISTS events;" + EventsSchema.PostgreSql, connection))
        {
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var importer = await connection.BeginBinaryImportAsync(
            "COPY events (id, device_id, event_type, location, created_at, updated_at, amount, event_uuid, note) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false))
        {
            foreach (var row in rows)
            {
                await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Id, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.DeviceId, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.EventType, NpgsqlDbType.Varchar, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Location, NpgsqlDbType.Varchar, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.CreatedAt, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.UpdatedAt, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Amount, NpgsqlDbType.Numeric, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.EventUuid, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Note, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
            }

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var index = new NpgsqlCommand(EventsSchema.CreateIndex + "ANALYZE events;", connection);
        await index.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates (or replaces) the events table in a MariaDB database through the mariadb CLI's LOAD DATA LOCAL
    /// INFILE. The password travels in MYSQL_PWD, never on the command line.
    /// </summary>
    public static async Task LoadMariaDbWithCliAsync(MariaDbConnectionInfo server, IEnumerable<EventRow> rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        var csv = Path.Combine(Path.GetTempPath(), "dbm-events-" + Guid.NewGuid().ToString("N") + ".csv");
        try
        {
            await EventsSchema.WriteCsvAsync(csv, rows, cancellationToken).ConfigureAwait(false);
            var sql = "DROP TABLE IF EXISTS events;" + EventsSchema.MariaDb +
                $"LOAD DATA LOCAL INFILE '{csv}' INTO TABLE events FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' ({string.Join(',', EventsSchema.Columns)});" +
                EventsSchema.CreateIndex;
            var info = new System.Diagnostics.ProcessStartInfo(server.Client) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "--no-defaults", "--local-infile=1", "-h", server.Host, "-P", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-u", server.User, server.Database, "-e", sql })
            {
                info.ArgumentList.Add(arg);
            }

            if (server.Password is not null)
            {
                info.Environment["MYSQL_PWD"] = server.Password;
            }

            using var process = System.Diagnostics.Process.Start(info) ?? throw new InvalidOperationException("Could not start " + server.Client);
            var error = await process.StandardError.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{server.Client} exited {process.ExitCode}: {error}");
            }
        }
        finally
        {
            File.Delete(csv);
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Where the MariaDB loader connects, and which CLI it runs.</summary>
public sealed record MariaDbConnectionInfo(string Host, int Port, string User, string? Password, string Database, string Client = "mariadb");
