namespace DbMigration.Errors;

/// <summary>Stable error ids, <c>DbMigration.&lt;Area&gt;.&lt;Reason&gt;</c>. Scripts match on them, so never rename one.</summary>
public static class ErrorIds
{
    public const string TargetInvalid = "DbMigration.Target.Invalid";
    public const string TargetEngineRequired = "DbMigration.Target.EngineRequired";
    public const string TargetUnsupportedScheme = "DbMigration.Target.UnsupportedScheme";
    public const string TargetFileNotFound = "DbMigration.Target.FileNotFound";
    public const string TargetNotADatabase = "DbMigration.Target.NotADatabase";
    public const string TargetDatabaseNotFound = "DbMigration.Target.DatabaseNotFound";
    public const string TargetReadOnly = "DbMigration.Target.ReadOnly";

    public const string ConnectionRefused = "DbMigration.Connection.Refused";
    public const string ConnectionAuthenticationFailed = "DbMigration.Connection.AuthenticationFailed";
    public const string ConnectionTimeout = "DbMigration.Connection.Timeout";
    public const string ConnectionHostNotFound = "DbMigration.Connection.HostNotFound";
    public const string ConnectionFailed = "DbMigration.Connection.Failed";

    public const string QueryStatementFailed = "DbMigration.Query.StatementFailed";
    public const string QueryInvalidParameter = "DbMigration.Query.InvalidParameter";
    public const string QueryTimeout = "DbMigration.Query.Timeout";
    public const string QueryEmpty = "DbMigration.Query.Empty";
    public const string QueryClientSyntax = "DbMigration.Query.ClientSyntax";
    public const string QueryNotTransactional = "DbMigration.Query.NotTransactional";
    public const string QueryValueNotReadable = "DbMigration.Query.ValueNotReadable";

    public const string LockTimeout = "DbMigration.Lock.Timeout";
    public const string LockFailed = "DbMigration.Lock.Failed";

    public const string BackupNotFound = "DbMigration.Backup.NotFound";
    public const string BackupCorrupt = "DbMigration.Backup.Corrupt";
    public const string BackupRepositoryNotFound = "DbMigration.Backup.RepositoryNotFound";
    public const string BackupWrongPassphrase = "DbMigration.Backup.WrongPassphrase";
    public const string BackupPassphraseRequired = "DbMigration.Backup.PassphraseRequired";
    public const string BackupDestinationNotWritable = "DbMigration.Backup.DestinationNotWritable";
    public const string BackupDiskFull = "DbMigration.Backup.DiskFull";
    public const string BackupFailed = "DbMigration.Backup.Failed";
    public const string BackupSourceBusy = "DbMigration.Backup.SourceBusy";
    public const string BackupSecondaryNotIndependent = "DbMigration.Backup.SecondaryNotIndependent";
    public const string BackupToolFailed = "DbMigration.Backup.ToolFailed";
    public const string BackupVerificationFailed = "DbMigration.Backup.VerificationFailed";
    public const string RestoreEngineMismatch = "DbMigration.Restore.EngineMismatch";
    public const string RestoreSessionsConnected = "DbMigration.Restore.SessionsConnected";
    public const string RestoreFailed = "DbMigration.Restore.Failed";
    public const string RestoreTargetRequired = "DbMigration.Restore.TargetRequired";

    public const string MigrationInvalidFile = "DbMigration.Migration.InvalidFile";
    public const string MigrationDuplicateVersion = "DbMigration.Migration.DuplicateVersion";
    public const string MigrationFolderNotFound = "DbMigration.Migration.FolderNotFound";
    public const string MigrationJournalBlocked = "DbMigration.Migration.JournalBlocked";
    public const string MigrationMissingDependency = "DbMigration.Migration.MissingDependency";
    public const string MigrationOutOfOrder = "DbMigration.Migration.OutOfOrder";
    public const string MigrationPreflightFailed = "DbMigration.Migration.PreflightFailed";
    public const string MigrationFailed = "DbMigration.Migration.Failed";
    public const string MigrationPartiallyApplied = "DbMigration.Migration.PartiallyApplied";
    public const string MigrationBackupRequired = "DbMigration.Migration.BackupRequired";
    public const string MigrationNoDownSection = "DbMigration.Migration.NoDownSection";
    public const string MigrationVersionNotFound = "DbMigration.Migration.VersionNotFound";
    public const string MigrationNoSnapshot = "DbMigration.Migration.NoSnapshot";
    public const string MigrationStaleLock = "DbMigration.Migration.StaleLock";
    public const string MigrationLockHeld = "DbMigration.Migration.LockHeld";
    public const string MigrationFolderNotWritable = "DbMigration.Migration.FolderNotWritable";
    public const string MigrationJournalNotWritable = "DbMigration.Migration.JournalNotWritable";

    public const string TimezoneUnknownZone = "DbMigration.Timezone.UnknownZone";
    public const string TimezoneColumnNotFound = "DbMigration.Timezone.ColumnNotFound";
    public const string TimezoneTableNotFound = "DbMigration.Timezone.TableNotFound";
    public const string TimezoneAmbiguousTime = "DbMigration.Timezone.AmbiguousTime";
    public const string TimezoneNonexistentTime = "DbMigration.Timezone.NonexistentTime";
    public const string TimezoneValidationFailed = "DbMigration.Timezone.ValidationFailed";
    public const string TimezoneRunNotFound = "DbMigration.Timezone.RunNotFound";
    public const string TimezoneNoPrimaryKey = "DbMigration.Timezone.NoPrimaryKey";
    public const string TimezoneRunInProgress = "DbMigration.Timezone.RunInProgress";
    public const string TimezoneRunNotFinished = "DbMigration.Timezone.RunNotFinished";
    public const string TimezoneLockWaitTimeout = "DbMigration.Timezone.LockWaitTimeout";
    public const string TimezoneRecordRemoved = "DbMigration.Timezone.RecordRemoved";
    public const string TimezoneInsufficientSpace = "DbMigration.Timezone.InsufficientSpace";
    public const string TimezoneColumnNotConvertible = "DbMigration.Timezone.ColumnNotConvertible";
    public const string TimezoneReportPathNotWritable = "DbMigration.Timezone.ReportPathNotWritable";
    public const string TimezonePermissionDenied = "DbMigration.Timezone.PermissionDenied";

    public const string EngineNotSupported = "DbMigration.Engine.NotSupported";
    public const string OperationCancelled = "DbMigration.Operation.Cancelled";

    /// <summary>An exception DbMigration did not anticipate; the original is the inner exception.</summary>
    public const string InternalUnexpected = "DbMigration.Internal.Unexpected";
}
