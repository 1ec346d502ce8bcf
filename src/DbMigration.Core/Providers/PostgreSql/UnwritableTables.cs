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
        string? owner = null, user = null;
        await using (var command = connection.CreateCommand("""
            SELECT t.name, pg_get_userbyid(c.relowner), current_user::text
            FROM unnest(@tables) WITH ORDINALITY AS t(name, n) JOIN pg_class c ON c.oid = to_regclass(t.name)
            WHERE NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))
            ORDER BY t.n
            """).AddParameter("@tables", tables.ToArray()))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                missing.Add(reader.GetString(0));
                owner = reader.GetString(1);
                user = reader.GetString(2);
            }
        }

        return owner is null || user is null ? null : new UnwritableTables(owner, user, missing);
    }
}
