using System.Management.Automation;
using DbMigration.Errors;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>
/// Base of every DbMigration cmdlet. It runs the cmdlet's async logic through <see cref="PipelineDispatcher"/>,
/// cancels it on Ctrl+C (StopProcessing), and turns <see cref="DbMigrationException"/> into an ErrorRecord with a
/// stable ErrorId: terminating, except for one failed item of piped input. Any other exception becomes
/// DbMigration.Internal.Unexpected.
/// </summary>
public abstract class DbMigrationCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>The cmdlet's logic. It talks to PowerShell only through <paramref name="host"/>.</summary>
    internal abstract Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken);

    /// <summary>Reads PowerShell-only values (credentials, wrapped objects) on the pipeline thread before the logic runs.</summary>
    internal virtual void PrepareOnPipelineThread()
    {
    }

    /// <summary>Runs the logic against any host; xUnit calls this with a recording host.</summary>
    internal void Invoke(ICmdletHost host, CancellationToken cancellationToken)
    {
        PrepareOnPipelineThread();
        try
        {
            PipelineDispatcher.Run(host, ExecuteAsync, cancellationToken);
        }
        catch (System.Data.Common.DbException ex) when (TranslateDriverError(ex) is { } translated)
        {
            // A driver exception the core let through still leaves with a stable id and the engine's explanation.
            throw translated;
        }
        catch (AggregateException ex) when (ex.Flatten().InnerExceptions is [DbMigrationException or OperationCanceledException])
        {
            // One failure wrapped by a task: it is the error, with its own id.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.Flatten().InnerExceptions[0]).Throw();
        }
        catch (Exception ex) when (ex is not (DbMigrationException or OperationCanceledException or RuntimeException))
        {
            // Anything else the core did not anticipate still leaves with a stable id scripts can match on, and the
            // original exception inside it.
            throw Unexpected(ex);
        }
        finally
        {
            ReleaseIdleConnections();
        }
    }

    /// <summary>Closes the idle pooled connections the call leaves behind, so no session outlives the cmdlet.</summary>
    internal virtual void ReleaseIdleConnections()
    {
    }

    private static DbMigrationException Unexpected(Exception exception)
    {
        var kind = exception switch
        {
            UnauthorizedAccessException => ErrorKind.PermissionDenied,
            IOException => ErrorKind.ResourceUnavailable,
            TimeoutException => ErrorKind.OperationTimeout,
            NotSupportedException => ErrorKind.NotImplemented,
            _ => ErrorKind.NotSpecified,
        };
        return new DbMigrationException(ErrorIds.InternalUnexpected, kind,
            $"{exception.Message} ({exception.GetType().FullName}; DbMigration did not expect this error: please report it with the output of Get-Error.)", exception);
    }

    /// <summary>A driver exception as a DbMigration error, or null when the cmdlet has no database to ask.</summary>
    internal virtual DbMigrationException? TranslateDriverError(System.Data.Common.DbException exception) => null;

    protected override void ProcessRecord()
    {
        try
        {
            Invoke(new PowerShellCmdletHost(this), _stopping.Token);
        }
        catch (DbMigrationException ex) when (MyInvocation.ExpectingInput && ex.Kind != ErrorKind.InvalidArgument)
        {
            // One piped item failed (a missing database among many, a locked one): report it and go on with the
            // next, as PowerShell's own cmdlets do; -ErrorAction Stop still stops. Bad parameters stop the call.
            WriteError(ErrorRecords.From(ex));
        }
        catch (DbMigrationException ex)
        {
            ThrowTerminatingError(ErrorRecords.From(ex));
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }

    protected override void StopProcessing() => _stopping.Cancel();

    public void Dispose()
    {
        _stopping.Dispose();
        GC.SuppressFinalize(this);
    }
}
