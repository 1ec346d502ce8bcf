using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DbMigration.Providers;

namespace DbMigration.Backups;

/// <summary>
/// Row counts and a SHA-256 over each table's rows in primary-key order (all columns when there is no key), with
/// every value written in a canonical, length-prefixed form. Equal hashes mean equal content.
/// </summary>
internal static class ContentHasher
{
    /// <summary>Opens the database and hashes every table (restored copies of server engines).</summary>
    public static async Task<IReadOnlyList<TableSnapshot>> HashDatabaseAsync(IDatabaseProvider provider, Targets.DatabaseTarget database, CancellationToken cancellationToken)
    {
        await using var connection = await provider.OpenConnectionAsync(database, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        return await SnapshotAsync(provider, connection, null, cancellationToken).ConfigureAwait(false);
    }

    public static async Task<IReadOnlyList<TableSnapshot>> SnapshotAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var result = new List<TableSnapshot>(tables.Count);
        foreach (var table in tables)
        {
            var order = table.PrimaryKey.Count > 0
                ? string.Join(", ", table.PrimaryKey.Select(provider.QuoteIdentifier))
                : string.Join(", ", Enumerable.Range(1, table.Columns.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)));
            var columns = string.Join(", ", table.Columns.Select(c => provider.QuoteIdentifier(c.Name)));
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandTimeout = 0;
            command.CommandText = $"SELECT {columns} FROM {provider.QuoteTable(table.Name)} ORDER BY {order}";
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long rows = 0;
            var buffer = new StringBuilder(256);
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    buffer.Clear();
                    for (var i = 0; i < reader.FieldCount; i++)
                    {
                        AppendCanonical(buffer, reader.IsDBNull(i) ? null : reader.GetValue(i));
                    }

                    hash.AppendData(Encoding.UTF8.GetBytes(buffer.Append('\n').ToString()));
                    rows++;
                }
            }

            result.Add(new TableSnapshot(table.Name.ToString(), rows, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant()));
        }

        return result;
    }

    private static void AppendCanonical(StringBuilder sb, object? value)
    {
        var text = value switch
        {
            null => null,
            byte[] bytes => "x" + Convert.ToHexString(bytes),
            DateTime dt => "d" + dt.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture),
            DateTimeOffset dto => "o" + dto.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture),
            double d => "f" + d.ToString("R", CultureInfo.InvariantCulture),
            float f => "f" + f.ToString("R", CultureInfo.InvariantCulture),
            IFormattable formattable => "v" + formattable.ToString(null, CultureInfo.InvariantCulture),
            _ => "v" + Convert.ToString(value, CultureInfo.InvariantCulture),
        };
        if (text is null)
        {
            sb.Append("-1:");
            return;
        }

        sb.Append(text.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(text);
    }
}
