using System.Data.Common;
using System.Globalization;

namespace DbMigration.Providers;

/// <summary>Small ADO.NET helpers shared by providers.</summary>
internal static class ProviderHelpers
{
    public static DbCommand CreateCommand(this DbConnection connection, string sql, DbTransaction? transaction = null, int? timeoutSeconds = null)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        if (timeoutSeconds is not null)
        {
            command.CommandTimeout = timeoutSeconds.Value;
        }

        return command;
    }

    public static DbCommand AddParameter(this DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
        return command;
    }

    public static async Task<T?> ScalarAsync<T>(this DbConnection connection, string sql, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        await using var command = connection.CreateCommand(sql, transaction);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), CultureInfo.InvariantCulture);
    }

    public static async Task ExecuteAsync(this DbConnection connection, string sql, CancellationToken cancellationToken, DbTransaction? transaction = null)
    {
        await using var command = connection.CreateCommand(sql, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every row of a small catalog query, DBNull read as null.</summary>
    public static async Task<List<object?[]>> ReadRowsAsync(this DbConnection connection, string sql, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand(sql, transaction, timeoutSeconds: 0);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<object?[]>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    /// <summary>Parses the leading "major.minor[.patch]" of a version string.</summary>
    public static Version ParseVersion(string text)
    {
        var digits = new string(text.TakeWhile(c => char.IsAsciiDigit(c) || c == '.').ToArray()).Trim('.');
        var parts = digits.Split('.', StringSplitOptions.RemoveEmptyEntries).Take(3).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
        while (parts.Count < 2)
        {
            parts.Add(0);
        }

        return parts.Count == 2 ? new Version(parts[0], parts[1]) : new Version(parts[0], parts[1], parts[2]);
    }

    /// <summary>A short random suffix for probe objects, so concurrent checks never collide.</summary>
    public static string RandomSuffix() => Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();

    /// <summary>Rows of (kind, name, table, definition), as each provider's catalog query returns them.</summary>
    public static async Task<IReadOnlyList<ObjectDefinition>> ReadDefinitionsAsync(this DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        var definitions = new List<ObjectDefinition>();
        await using var command = connection.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var kind = reader.GetString(0) switch
            {
                "view" => DefinitionKind.View,
                "trigger" => DefinitionKind.Trigger,
                _ => DefinitionKind.Routine,
            };
            definitions.Add(new ObjectDefinition(kind, reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? string.Empty : reader.GetString(3)));
        }

        return definitions;
    }
}
