using System.Management.Automation;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Query;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>The real host: forwards to the cmdlet. Called only on the pipeline thread (see PipelineDispatcher).</summary>
internal sealed class PowerShellCmdletHost(PSCmdlet cmdlet) : ICmdletHost
{
    public string ResolvePath(string path)
    {
        string resolved;
        ProviderInfo provider;
        try
        {
            resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out provider, out _);
        }
        catch (System.Management.Automation.DriveNotFoundException ex)
        {
            // "postgres:/db" or "mysql:host/db" read as a drive: say what a server target looks like.
            throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument,
                $"'{path}' names a PowerShell drive '{ex.ItemName}' that does not exist. A file path needs an existing drive; a server database is a URI such as postgres://user@host/db or mariadb://user@host/db.", ex)
            { Target = path };
        }
        catch (Exception ex) when (ex is SessionStateException or ProviderInvocationException or NotSupportedException or ArgumentException)
        {
            throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument, $"The path '{path}' cannot be resolved: {ex.Message}", ex) { Target = path };
        }

        if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
        {
            throw new DbMigrationException(ErrorIds.TargetInvalid, ErrorKind.InvalidArgument,
                $"The path '{path}' is on the {provider.Name} provider; DbMigration reads and writes files, so give a file-system path.")
            { Target = path };
        }

        return resolved;
    }

    public void WriteObject(object item) => cmdlet.WriteObject(item is QueryRow row ? ToPSObject(row) : item);

    public void WriteError(DbMigrationException error) => cmdlet.WriteError(ErrorRecords.From(error));

    public void WriteVerbose(string text) => cmdlet.WriteVerbose(text);

    public void WriteWarning(string text) => cmdlet.WriteWarning(text);

    public void WriteDebug(string text) => cmdlet.WriteDebug(text);

    public void WriteProgress(ProgressUpdate progress)
    {
        var record = new ProgressRecord(progress.ActivityId, progress.Activity, string.IsNullOrEmpty(progress.Status) ? "Working" : progress.Status)
        {
            RecordType = progress.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing,
        };
        if (progress.PercentComplete is { } percent)
        {
            record.PercentComplete = (int)Math.Clamp(percent, 0, 100);
        }

        if (progress.Remaining is { } remaining)
        {
            record.SecondsRemaining = (int)Math.Ceiling(remaining.TotalSeconds);
        }

        if (progress.CurrentOperation is not null)
        {
            record.CurrentOperation = progress.CurrentOperation;
        }

        cmdlet.WriteProgress(record);
    }

    public bool ShouldProcess(string target, string action) => cmdlet.ShouldProcess(target, action);

    public bool ShouldContinue(string query, string caption) => cmdlet.ShouldContinue(query, caption);

    /// <summary>Rows become objects whose properties are the columns, typed "DbMigration.QueryRow" for formatting.</summary>
    private static PSObject ToPSObject(QueryRow row)
    {
        var result = new PSObject();
        foreach (var (column, value) in row)
        {
            result.Properties.Add(new PSNoteProperty(column, value));
        }

        result.TypeNames.Insert(0, "DbMigration.QueryRow");
        return result;
    }
}

/// <summary>Builds ErrorRecords from DbMigrationException: stable id, category, target, and the SQL when one failed.</summary>
internal static class ErrorRecords
{
    public static ErrorRecord From(DbMigrationException exception)
    {
        var category = Enum.TryParse<ErrorCategory>(exception.Kind.ToString(), out var parsed) ? parsed : ErrorCategory.NotSpecified;
        var record = new ErrorRecord(exception, exception.ErrorId, category, exception.Target);
        var message = exception.Sql is null ? exception.Message : exception.Message + Environment.NewLine + "SQL: " + exception.Sql;
        record.ErrorDetails = new ErrorDetails(message);
        return record;
    }
}
