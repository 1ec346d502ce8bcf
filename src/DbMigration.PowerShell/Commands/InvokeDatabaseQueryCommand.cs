using System.Collections;
using System.Management.Automation;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Query;

namespace DbMigration.PowerShell.Commands;

/// <summary>
/// <para type="synopsis">Runs SQL against a database and returns one object per row.</para>
/// <para type="description">Statements of a script run in order on one connection. Rows become objects whose
/// properties are the columns; statements that return no rows report the rows they affected. Each statement
/// goes through ShouldProcess, so -WhatIf shows the SQL and runs nothing. Each statement commits on its own, as in
/// psql and the sqlite3 shell, unless -SingleTransaction runs the script as one transaction.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "DatabaseQuery", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType("DbMigration.QueryRow")]
[OutputType(typeof(QueryStatementResult))]
public sealed class InvokeDatabaseQueryCommand : DatabaseCmdlet
{
    private readonly QueryService _service = new();
    private IReadOnlyDictionary<string, object?> _parameters = new Dictionary<string, object?>();

    /// <summary>The SQL to run: one statement or a script of several.</summary>
    [Parameter(Mandatory = true, Position = 1, HelpMessage = "The SQL to run: one statement or a script of several.")]
    [Alias("Sql")]
    [ValidateNotNullOrEmpty]
    public string Query { get; set; } = string.Empty;

    /// <summary>Values for @name parameters in the SQL, as a hashtable.</summary>
    [Parameter(HelpMessage = "Values for @name parameters in the SQL, as a hashtable.")]
    public Hashtable? Parameters { get; set; }

    /// <summary>Seconds each statement may run; 0 waits forever.</summary>
    [Parameter(HelpMessage = "Seconds each statement may run (0 = no limit).")]
    [ValidateRange(0, 86400)]
    public int Timeout { get; set; } = 30;

    /// <summary>Runs the whole script in one transaction: all of it takes effect, or none.</summary>
    [Parameter(HelpMessage = "Run the whole script in one transaction: all of it takes effect, or none (psql's --single-transaction).")]
    public SwitchParameter SingleTransaction { get => new(SingleTransactionMode); set => SingleTransactionMode = value.IsPresent; }

    internal bool SingleTransactionMode { get; set; }

    internal override void PrepareOnPipelineThread()
    {
        base.PrepareOnPipelineThread();
        var parameters = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        if (Parameters is not null)
        {
            foreach (DictionaryEntry entry in Parameters)
            {
                var key = entry.Key is PSObject wrappedKey ? wrappedKey.BaseObject : entry.Key;
                parameters[Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty] =
                    entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value;
            }
        }

        _parameters = parameters;
    }

    internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
    {
        var target = ResolveTarget(host);
        var request = new QueryRequest(target, Query, _parameters, TimeSpan.FromSeconds(Timeout), TimeSpan.FromSeconds(ConnectTimeout)) { SingleTransaction = SingleTransactionMode };
        var plan = _service.Plan(request);
        // One transaction is confirmed as a whole: a part of it is not what the caller wrote.
        var confirmed = SingleTransactionMode
            ? (host.ShouldProcess(target.ToString(), $"Execute {plan.Count} statement(s) in one transaction:{Environment.NewLine}{string.Join(Environment.NewLine, plan.Select(s => s.Text))}") ? plan.ToList() : [])
            : plan.Where(s => host.ShouldProcess(target.ToString(), $"Execute statement {s.Index} of {plan.Count}:{Environment.NewLine}{s.Text}")).ToList();
        if (confirmed.Count == 0)
        {
            return;
        }

        await foreach (var output in _service.ExecuteAsync(request, confirmed, new HostProgress(host), cancellationToken).ConfigureAwait(false))
        {
            host.WriteObject(output);
        }
    }
}
