using System.Data.Common;

namespace DbMigration.Providers.PostgreSql;

/// <summary>Tables of DbMigration's own (journal, run records) that another role created and this one may not write.</summary>
internal sealed record UnwritableTables(string Owner, string User, IReadOnlyList<string> Tables)
{
    /// <summary>The statement the owner runs to let the connecting role write to them.</summary>
    public string Grant => $"GRANT SELECT, INSERT, UPDATE, DELETE ON {string.Join(", ", Tables)} TO {User}";

    /// <summary>
    /// Which of <paramref name="tables"/> exist and lack SELECT, INSERT, UPDATE or DELETE for the connecting role;
    /// null when it may write to all that exist. A role other than the first to run gets none by default.
    /// </summary>
    public static async Task<UnwritableTables?> FindAsync(DbConnection connection, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        var missing = new List<string>();
        string? owner = null;
        foreach (var table in tables)
        {
            await using var command = connection.CreateCommand("SELECT pg_get_userbyid(c.relowner), has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE') FROM pg_class c WHERE c.oid = to_regclass(@t)").AddParameter("@t", table);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && !reader.GetBoolean(1))
            {
                owner = reader.GetString(0);
                missing.Add(table);
            }
        }

        return owner is null ? null : new UnwritableTables(owner, await connection.ScalarAsync<string>("SELECT current_user::text", cancellationToken).ConfigureAwait(false) ?? "?", missing);
    }
}
