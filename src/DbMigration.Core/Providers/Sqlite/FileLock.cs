using System.Globalization;
using System.Text;
using DbMigration.Errors;

namespace DbMigration.Providers.Sqlite;

/// <summary>
/// An exclusive lock on a lock file. On Unix .NET maps FileShare.None to flock(LOCK_EX), which other processes
/// see; on Windows the share mode itself excludes them. The file is never deleted: deleting a lock file while
/// another process waits on it would let two processes hold "the" lock at once.
/// </summary>
internal sealed class FileLock : IDatabaseLock
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(100);
    private FileStream? _stream;

    private FileLock(string name, string path, FileStream stream)
    {
        Name = name;
        Resource = path;
        _stream = stream;
    }

    public string Name { get; }

    public string Resource { get; }

    public static async Task<IDatabaseLock> AcquireAsync(string path, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var owner = string.Create(CultureInfo.InvariantCulture,
                    $"pid={Environment.ProcessId} host={Environment.MachineName} user={Environment.UserName} acquired={DateTime.UtcNow:O}\n");
                stream.SetLength(0);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(owner), cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                return new FileLock(name, path, stream);
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new DbMigrationException(ErrorIds.LockFailed, ErrorKind.PermissionDenied, $"Cannot create the lock file '{path}': {ex.Message}", ex) { Target = path };
            }
            catch (DirectoryNotFoundException ex)
            {
                throw new DbMigrationException(ErrorIds.LockFailed, ErrorKind.ObjectNotFound, $"Cannot create the lock file '{path}': {ex.Message}", ex) { Target = path };
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(RetryDelay, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                throw new DbMigrationException(ErrorIds.LockTimeout, ErrorKind.ResourceBusy,
                    $"The lock '{name}' is held by another process (lock file '{path}'); gave up after {timeout.TotalSeconds:0.#} s.", ex)
                { Target = path };
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        var stream = Interlocked.Exchange(ref _stream, null);
        return stream?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
