using DbMigration.Errors;
using DbMigration.PowerShell.Commands;
using DbMigration.PowerShell.Infrastructure;
using DbMigration.Tests.Fixtures;

namespace DbMigration.Tests.Cmdlets;

/// <summary>Every error a cmdlet raises carries a stable DbMigration id, even one the core did not anticipate.</summary>
public sealed class CmdletErrorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void New_Migration_into_a_path_that_is_a_file_names_the_path_with_a_stable_id()
    {
        File.WriteAllText(_dir.File("notes"), "not a folder");
        var command = new NewMigrationCommand { Path = _dir.File("notes"), Name = "create users" };

        var error = Assert.Throws<DbMigrationException>(() => command.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        Assert.Equal(ErrorIds.MigrationFolderNotWritable, error.ErrorId);
        Assert.Equal(ErrorKind.WriteError, error.Kind);
        Assert.Equal(_dir.File("notes"), error.Target);
        Assert.Contains("is a file, not a folder", error.Message, StringComparison.Ordinal);
        Assert.Equal("not a folder", File.ReadAllText(_dir.File("notes")));
    }

    [Fact]
    public void New_Migration_below_a_file_names_the_path_with_a_stable_id()
    {
        File.WriteAllText(_dir.File("notes"), "not a folder");
        var command = new NewMigrationCommand { Path = Path.Combine(_dir.File("notes"), "migrations"), Name = "create users" };

        var error = Assert.Throws<DbMigrationException>(() => command.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        Assert.Equal(ErrorIds.MigrationFolderNotWritable, error.ErrorId);
        Assert.IsAssignableFrom<IOException>(error.InnerException);
    }

    [Theory]
    [InlineData(typeof(IOException), ErrorKind.ResourceUnavailable)]
    [InlineData(typeof(UnauthorizedAccessException), ErrorKind.PermissionDenied)]
    [InlineData(typeof(InvalidOperationException), ErrorKind.NotSpecified)]
    [InlineData(typeof(NullReferenceException), ErrorKind.NotSpecified)]
    public void An_unanticipated_exception_leaves_as_DbMigration_Internal_Unexpected_with_the_original_inside(Type type, ErrorKind kind)
    {
        var original = (Exception)Activator.CreateInstance(type, "the disk said no")!;
        var command = new ThrowingCommand(original);

        var error = Assert.Throws<DbMigrationException>(() => command.Invoke(new RecordingHost(_dir.Path), CancellationToken.None));

        Assert.Equal(ErrorIds.InternalUnexpected, error.ErrorId);
        Assert.Equal(kind, error.Kind);
        Assert.Same(original, error.InnerException);
        Assert.Contains("the disk said no", error.Message, StringComparison.Ordinal);
        Assert.Contains(type.FullName!, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DbMigration_errors_and_cancellation_pass_through_unchanged()
    {
        var own = new DbMigrationException(ErrorIds.BackupNotFound, ErrorKind.ObjectNotFound, "no backup");
        Assert.Same(own, Assert.Throws<DbMigrationException>(() => new ThrowingCommand(own).Invoke(new RecordingHost(_dir.Path), CancellationToken.None)));

        var cancelled = new OperationCanceledException();
        Assert.Same(cancelled, Assert.Throws<OperationCanceledException>(() => new ThrowingCommand(cancelled).Invoke(new RecordingHost(_dir.Path), CancellationToken.None)));

        // Wrapped by a task, the one DbMigration error inside is the error.
        Assert.Same(own, Assert.Throws<DbMigrationException>(() => new ThrowingCommand(new AggregateException(own)).Invoke(new RecordingHost(_dir.Path), CancellationToken.None)));
    }

    /// <summary>A cmdlet whose logic fails with a given exception after it has started its async work.</summary>
    private sealed class ThrowingCommand(Exception exception) : DbMigrationCmdlet
    {
        internal override async Task ExecuteAsync(ICmdletHost host, CancellationToken cancellationToken)
        {
            await Task.Yield();
            throw exception;
        }
    }
}
