using DbMigration.Errors;
using DbMigration.Operations;

namespace DbMigration.PowerShell.Infrastructure;

/// <summary>
/// Everything a cmdlet's logic may say to PowerShell. The real host forwards to the cmdlet on the pipeline
/// thread; xUnit passes a recording host. No System.Management.Automation type appears here, so the logic runs
/// without a runspace.
/// </summary>
internal interface ICmdletHost
{
    /// <summary>
    /// A path as PowerShell's own cmdlets resolve it, as a full file-system path: relative to the current location,
    /// with ~ and drives such as TestDrive: or a New-PSDrive. The file need not exist. Throws DbMigrationException
    /// for a path that is not on the file system.
    /// </summary>
    string ResolvePath(string path);

    void WriteObject(object item);

    /// <summary>A non-terminating error: one bad item out of many.</summary>
    void WriteError(DbMigrationException error);

    void WriteVerbose(string text);

    void WriteWarning(string text);

    void WriteDebug(string text);

    void WriteProgress(ProgressUpdate progress);

    bool ShouldProcess(string target, string action);

    bool ShouldContinue(string query, string caption);
}

/// <summary>Turns core progress and messages into host calls.</summary>
internal sealed class HostProgress(ICmdletHost host) : IProgress<OperationUpdate>
{
    public void Report(OperationUpdate value)
    {
        switch (value)
        {
            case ProgressUpdate progress:
                host.WriteProgress(progress);
                break;
            case MessageUpdate { Level: MessageLevel.Warning } message:
                host.WriteWarning(message.Text);
                break;
            case MessageUpdate { Level: MessageLevel.Debug } message:
                host.WriteDebug(message.Text);
                break;
            case MessageUpdate message:
                host.WriteVerbose(message.Text);
                break;
        }
    }
}
