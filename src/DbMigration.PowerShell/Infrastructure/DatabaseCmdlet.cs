using System.Management.Automation;
using DbMigration.Targets;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>Base of cmdlets that work on one database: -Database, -Engine, -Credential, -ConnectTimeout.</summary>
public abstract class DatabaseCmdlet : DbMigrationCmdlet
{
    /// <summary>A SQLite file path, a sqlite:, postgres://, postgresql://, mysql:// or mariadb:// URI, or a raw connection string with -Engine.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, HelpMessage = "A SQLite file path, a sqlite:, postgres://, mysql:// or mariadb:// URI, or a connection string with -Engine.")]
    [ValidateNotNull]
    [Alias("FullName")] // Get-ChildItem *.db | Test-MigrationPreflight; strings bind by value: Get-Content fleet.txt | …
    public DatabaseTarget Database { get; set; } = null!;

    /// <summary>The engine, required when -Database is a raw connection string.</summary>
    [Parameter(HelpMessage = "The engine of a raw connection string: Sqlite, PostgreSql or MySql.")]
    public DatabaseEngine Engine { get; set; }

    /// <summary>User name and password for server databases. Overrides a password in the URI.</summary>
    [Parameter(HelpMessage = "User name and password for server databases.")]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>Seconds every connection waits to open; for SQLite, also how long to wait for another connection's write lock.</summary>
    [Parameter(HelpMessage = "Seconds to wait for a connection, and for SQLite for another connection's write lock (1-600).")]
    [ValidateRange(1, 600)]
    public int ConnectTimeout { get; set; } = 15;

    /// <summary>The credential read on the pipeline thread (user name, password).</summary>
    internal (string? UserName, string? Password)? ResolvedCredential { get; set; }

    internal override void PrepareOnPipelineThread()
    {
        if (Credential is not null && Credential != PSCredential.Empty)
        {
            ResolvedCredential = (Credential.UserName, Credential.GetNetworkCredential().Password);
        }
    }

    internal override Errors.DbMigrationException? TranslateDriverError(System.Data.Common.DbException exception)
    {
        var target = Database?.WithEngine(Engine);
        return target is null || target.Engine == DatabaseEngine.Unknown ? null : Providers.DatabaseProviders.For(target).TranslateException(exception, target, null);
    }

    // Only this engine's pools: a cmdlet in a parallel runspace working on another engine keeps its own.
    internal override void ReleaseIdleConnections()
    {
        if (Database?.WithEngine(Engine) is { Engine: not DatabaseEngine.Unknown } target)
        {
            Providers.DatabaseProviders.For(target).ReleasePooledConnections(target);
        }
    }

    /// <summary>The target with -Engine and -Credential applied and a relative SQLite path resolved.</summary>
    internal DatabaseTarget ResolveTarget(ICmdletHost host)
    {
        var target = Database.WithEngine(Engine);
        if (target.Engine == DatabaseEngine.Unknown)
        {
            throw new Errors.DbMigrationException(Errors.ErrorIds.TargetEngineRequired, Errors.ErrorKind.InvalidArgument,
                "-Database looks like a raw connection string; say which engine it is with -Engine Sqlite, PostgreSql or MySql.")
            { Target = target.ToString() };
        }

        if (ResolvedCredential is { } credential)
        {
            target = target.WithCredential(credential.UserName, credential.Password);
        }

        // Every connection the call opens waits as asked, scratch and restore databases included.
        return target.ResolveFilePath(host.ResolvePath).WithConnectTimeout(TimeSpan.FromSeconds(ConnectTimeout));
    }
}
