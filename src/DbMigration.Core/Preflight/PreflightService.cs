using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using DbMigration.Errors;
using DbMigration.IO;
using DbMigration.Operations;
using DbMigration.Providers;

namespace DbMigration.Preflight;

/// <summary>
/// Runs every pre-flight check and reports each one; it never throws for a bad target. A check that cannot run
/// because an earlier one failed is reported as Skipped with the reason.
/// </summary>
public sealed class PreflightService
{
    private const string Activity = "Pre-flight checks";
    private const int TotalSteps = 8;

    public async Task<IReadOnlyList<PreflightCheck>> RunAsync(PreflightRequest request, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var target = request.Target;
        var where = target.ToString();
        var checks = new List<PreflightCheck>();
        var step = 0;

        void Report(string status) =>
            progress?.Report(new ProgressUpdate(2, Activity, status, 100.0 * step++ / TotalSteps));

        IDatabaseProvider provider;
        try
        {
            provider = DatabaseProviders.For(target);
        }
        catch (DbMigrationException ex)
        {
            return Unusable(where, ex, "the engine is not supported", request.BackupPath);
        }

        // Read what the first connection could change (a hot journal is rolled back on open).
        var findings = provider.InspectBeforeConnect(target);

        // DbMigration's own idle connections from earlier calls in this session are not other sessions.
        provider.ReleasePooledConnections(target);
        Report("Connecting");
        DbConnection? connection = null;
        long? databaseSize = null;
        PreflightCheck? leftovers = null;
        ProviderCapabilities? capabilities = null;
        try
        {
            var stopwatch = Stopwatch.StartNew();
            try
            {
                connection = await provider.OpenConnectionAsync(target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
                var server = await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false);
                capabilities = provider.GetCapabilities(server);
                checks.Add(new PreflightCheck(PreflightCodes.Connectivity, "Connectivity", PreflightStatus.Passed,
                    string.Create(CultureInfo.InvariantCulture, $"Connected to {server} in {stopwatch.ElapsedMilliseconds} ms."), where,
                    new Dictionary<string, object?>
                    {
                        ["Engine"] = target.Engine.ToString(),
                        ["ServerVersion"] = server.VersionText,
                        ["ConnectMilliseconds"] = stopwatch.ElapsedMilliseconds,
                        ["TransactionalDdl"] = capabilities.TransactionalDdl,
                        ["NativeUuid"] = capabilities.NativeUuid,
                        ["NativeTimestampTz"] = capabilities.NativeTimestampTz,
                    }));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                checks.Add(Failed(PreflightCodes.Connectivity, "Connectivity", Translate(provider, ex, target), where));
                AddSkipped(checks, where, "could not connect", PreflightCodes.Integrity, PreflightCodes.Sessions, PreflightCodes.SchemaPrivileges, PreflightCodes.DatabaseSize);
            }

            if (connection is not null)
            {
                Report("Integrity");
                checks.Add(await RunCheck(PreflightCodes.Integrity, "Integrity", where, provider, target, async () =>
                {
                    var report = await provider.CheckIntegrityAsync(connection, cancellationToken).ConfigureAwait(false);
                    var status = report.Outcome switch
                    {
                        IntegrityOutcome.Passed => PreflightStatus.Passed,
                        IntegrityOutcome.Failed => PreflightStatus.Failed,
                        _ => PreflightStatus.Skipped,
                    };
                    return new PreflightCheck(PreflightCodes.Integrity, "Integrity", status, report.Message, where,
                        new Dictionary<string, object?> { ["Method"] = report.Method, ["Problems"] = report.Problems });
                }, cancellationToken).ConfigureAwait(false));

                Report("Other sessions");
                checks.Add(await RunCheck(PreflightCodes.Sessions, "Other sessions", where, provider, target, async () =>
                {
                    var sessions = await OtherSessions.ListSettledAsync(provider, target, connection, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                    return SessionsCheck(sessions, findings, where);
                }, cancellationToken).ConfigureAwait(false));

                Report("Privileges");
                checks.Add(await RunCheck(PreflightCodes.SchemaPrivileges, "Schema privileges", where, provider, target, async () =>
                {
                    await provider.ProbeSchemaPrivilegesAsync(connection, cancellationToken).ConfigureAwait(false);
                    // Without transactional DDL (MariaDB) the probe table cannot be rolled back: it is dropped.
                    var mayAlter = "May create and alter tables (tried on a probe table, " + (capabilities?.TransactionalDdl == false ? "which was dropped again)" : "in a transaction that was rolled back)");
                    // The rollback after a failed migration is a restore: better known now than when it is needed.
                    return await provider.RestoreBlockerAsync(connection, cancellationToken).ConfigureAwait(false) is { } blocker
                        ? new PreflightCheck(PreflightCodes.SchemaPrivileges, "Schema privileges", PreflightStatus.Warning, $"{mayAlter}, but {blocker}.", where,
                            new Dictionary<string, object?> { ["RestoreBlocked"] = true })
                        : new PreflightCheck(PreflightCodes.SchemaPrivileges, "Schema privileges", PreflightStatus.Passed, mayAlter + ".", where);
                }, cancellationToken).ConfigureAwait(false));

                Report("Size and row counts");
                checks.Add(await RunCheck(PreflightCodes.DatabaseSize, "Size and row counts", where, provider, target, async () =>
                {
                    databaseSize = await provider.GetDatabaseSizeAsync(target, connection, cancellationToken).ConfigureAwait(false);
                    var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
                    var counts = new List<TableRowCount>(tables.Count);
                    foreach (var table in tables)
                    {
                        counts.Add(new TableRowCount(table.Name.ToString(), await provider.CountRowsAsync(connection, table.Name, cancellationToken).ConfigureAwait(false)));
                    }

                    return new PreflightCheck(PreflightCodes.DatabaseSize, "Size and row counts", PreflightStatus.Passed,
                        string.Create(CultureInfo.InvariantCulture, $"{ByteSize.Format(databaseSize.Value)} in {counts.Count} table(s), {counts.Sum(c => c.Rows):N0} row(s)."), where,
                        new Dictionary<string, object?> { ["SizeBytes"] = databaseSize.Value, ["Tables"] = counts });
                }, cancellationToken).ConfigureAwait(false));

                Report(LeftoverCopiesName);
                leftovers = await RunCheck(PreflightCodes.LeftoverCopies, LeftoverCopiesName, where, provider, target, async () =>
                    LeftoverCopiesCheck(await provider.BackupStrategy.FindLeftoverCopiesAsync(target, connection, cancellationToken).ConfigureAwait(false), provider, where),
                    cancellationToken).ConfigureAwait(false);
                if (leftovers.Status == PreflightStatus.Failed)
                {
                    // Only advice: a user who may not list the server's databases is not stopped by it.
                    leftovers = SkippedLeftoverCopies(where, leftovers.Message.TrimEnd('.'));
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        Report("Backup location");
        checks.Add(CheckBackupLocation(request.BackupPath));
        Report("Disk space");
        checks.Add(CheckDiskSpace(request.BackupPath, databaseSize, request.SafetyFactor));
        checks.Add(leftovers ?? SkippedLeftoverCopies(where, "could not connect"));
        progress?.Report(new ProgressUpdate(2, Activity, "Done", 100, Completed: true));
        return checks;
    }

    private const string LeftoverCopiesName = "Leftover copies";

    private static PreflightCheck SkippedLeftoverCopies(string where, string reason) =>
        new(PreflightCodes.LeftoverCopies, LeftoverCopiesName, PreflightStatus.Skipped, $"Not run: {reason}.", where);

    /// <summary>
    /// Whole copies of the database that restores or verifications stopped before they cleaned up left behind: they
    /// take space, and hold the data (decrypted, from an encrypted backup) where nobody looks after it.
    /// </summary>
    internal static PreflightCheck LeftoverCopiesCheck(IReadOnlyList<Backups.LeftoverCopy> copies, IDatabaseProvider provider, string where)
    {
        var details = new Dictionary<string, object?> { ["Copies"] = copies, ["Bytes"] = copies.Sum(c => c.Bytes ?? 0) };
        if (copies.Count == 0)
        {
            return new PreflightCheck(PreflightCodes.LeftoverCopies, LeftoverCopiesName, PreflightStatus.Passed, "No copy of the database was left behind by a stopped restore or verification.", where, details);
        }

        static string Describe(Backups.LeftoverCopy copy) => copy.Kind switch
        {
            Backups.LeftoverCopyKind.Verification => "a verification's scratch copy",
            Backups.LeftoverCopyKind.Restore => "a restored copy never swapped in",
            _ => "the database as it was before a restore replaced it",
        } + (copy.Bytes is { } bytes ? ", " + ByteSize.Format(bytes) : string.Empty) + (copy.InUse ? ", in use now" : string.Empty);

        var list = string.Join("; ", copies.Select(c => $"{c.Name} ({Describe(c)})"));
        var advice = provider.Engine == Targets.DatabaseEngine.Sqlite
            ? "The next Restore-MigrationBackup of this database removes them, or delete the files."
            : $"If no restore or verification of this database is running, drop them: {string.Join(" ", copies.Select(c => $"DROP DATABASE {provider.QuoteIdentifier(c.Name)};"))}";
        if (copies.Any(c => c.Kind == Backups.LeftoverCopyKind.Replaced))
        {
            advice += " Drop the database as it was before a restore once that data is no longer needed: the restore's safety backup holds it too, unless it was skipped.";
        }

        return new PreflightCheck(PreflightCodes.LeftoverCopies, LeftoverCopiesName, PreflightStatus.Warning,
            $"{copies.Count} copy(ies) of the database left behind by restores or verifications stopped before they finished: {list}. {advice}", where, details);
    }

    private static PreflightCheck SessionsCheck(IReadOnlyList<SessionInfo> sessions, IReadOnlyList<ProviderFinding> findings, string where)
    {
        var details = new Dictionary<string, object?>
        {
            ["Sessions"] = sessions.Select(s => s.ToString()).ToList(),
            ["Findings"] = findings.Select(f => f.Message).ToList(),
        };
        var blocking = sessions.Where(s => s.InTransaction).ToList();
        if (blocking.Count > 0)
        {
            return new PreflightCheck(PreflightCodes.Sessions, "Other sessions", PreflightStatus.Failed,
                $"{blocking.Count} other session(s) hold open transactions or write locks that would block a migration: {string.Join("; ", blocking)}.", where, details);
        }

        var problems = findings.Where(f => f.IsProblem).ToList();
        if (problems.Count > 0)
        {
            return new PreflightCheck(PreflightCodes.Sessions, "Other sessions", PreflightStatus.Failed, string.Join(" ", problems.Select(p => p.Message)), where, details);
        }

        if (sessions.Count > 0)
        {
            return new PreflightCheck(PreflightCodes.Sessions, "Other sessions", PreflightStatus.Warning,
                $"{sessions.Count} other session(s) are connected; stop the application before migrating: {string.Join("; ", sessions)}.", where, details);
        }

        var note = findings.Count > 0 ? " " + string.Join(" ", findings.Select(f => f.Message)) : string.Empty;
        return new PreflightCheck(PreflightCodes.Sessions, "Other sessions", PreflightStatus.Passed, "No other session holds the database." + note, where, details);
    }

    internal static PreflightCheck CheckBackupLocation(string? backupPath)
    {
        const string name = "Backup location";
        if (string.IsNullOrWhiteSpace(backupPath))
        {
            return new PreflightCheck(PreflightCodes.BackupLocation, name, PreflightStatus.Skipped, "No -BackupPath given.", string.Empty);
        }

        var full = Path.GetFullPath(backupPath);
        if (File.Exists(full))
        {
            return new PreflightCheck(PreflightCodes.BackupLocation, name, PreflightStatus.Failed, $"'{full}' is a file, not a folder.", full) { ErrorId = ErrorIds.TargetInvalid };
        }

        var existing = DiskSpace.NearestExistingDirectory(full);
        if (existing is null)
        {
            return new PreflightCheck(PreflightCodes.BackupLocation, name, PreflightStatus.Failed, $"No part of '{full}' exists.", full);
        }

        var probe = DirectoryProbe.CheckWritable(existing);
        if (probe is not null)
        {
            return new PreflightCheck(PreflightCodes.BackupLocation, name, PreflightStatus.Failed, probe, full) { ErrorId = ErrorIds.TargetReadOnly };
        }

        var message = existing == full ? $"'{full}' is writable." : $"'{full}' does not exist yet; '{existing}' is writable, so it can be created.";
        return new PreflightCheck(PreflightCodes.BackupLocation, name, PreflightStatus.Passed, message, full);
    }

    internal static PreflightCheck CheckDiskSpace(string? backupPath, long? estimatedBytes, double safetyFactor)
    {
        const string name = "Disk space";
        if (string.IsNullOrWhiteSpace(backupPath))
        {
            return new PreflightCheck(PreflightCodes.DiskSpace, name, PreflightStatus.Skipped, "No -BackupPath given.", string.Empty);
        }

        var full = Path.GetFullPath(backupPath);
        if (estimatedBytes is null)
        {
            return new PreflightCheck(PreflightCodes.DiskSpace, name, PreflightStatus.Skipped, "Not run: the database size is unknown.", full);
        }

        var existing = DiskSpace.NearestExistingDirectory(full);
        if (existing is null)
        {
            return new PreflightCheck(PreflightCodes.DiskSpace, name, PreflightStatus.Skipped, $"Not run: no part of '{full}' exists.", full);
        }

        var free = DiskSpace.AvailableBytes(existing);
        var required = (long)Math.Ceiling(estimatedBytes.Value * safetyFactor);
        var details = new Dictionary<string, object?>
        {
            ["FreeBytes"] = free,
            ["EstimatedBackupBytes"] = estimatedBytes.Value,
            ["RequiredBytes"] = required,
            ["SafetyFactor"] = safetyFactor,
        };
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"{ByteSize.Format(free)} free at '{existing}'; the backup needs about {ByteSize.Format(estimatedBytes.Value)} (x{safetyFactor:0.#} = {ByteSize.Format(required)}).");
        var status = free >= required ? PreflightStatus.Passed : free >= estimatedBytes.Value ? PreflightStatus.Warning : PreflightStatus.Failed;
        return new PreflightCheck(PreflightCodes.DiskSpace, name, status, summary, full, details);
    }

    private static async Task<PreflightCheck> RunCheck(string code, string name, string where, IDatabaseProvider provider, Targets.DatabaseTarget target, Func<Task<PreflightCheck>> check, CancellationToken cancellationToken)
    {
        try
        {
            return await check().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return Failed(code, name, Translate(provider, ex, target), where);
        }
    }

    private static DbMigrationException Translate(IDatabaseProvider provider, Exception ex, Targets.DatabaseTarget target) =>
        provider.TranslateException(ex, target, null)
        ?? new DbMigrationException(ErrorIds.ConnectionFailed, ErrorKind.NotSpecified, ex.Message, ex) { Target = target.ToString() };

    private static PreflightCheck Failed(string code, string name, DbMigrationException ex, string where) =>
        new(code, name, PreflightStatus.Failed, ex.Message, where,
            new Dictionary<string, object?> { ["ErrorId"] = ex.ErrorId, ["Sql"] = ex.Sql, ["SqlState"] = ex.SqlState })
        {
            ErrorId = ex.ErrorId,
        };

    /// <summary>
    /// The checks of a target that cannot even be tried (an unknown engine, a path that does not resolve): PF001
    /// failed with the error, the database checks skipped, the backup location still checked.
    /// </summary>
    public static IReadOnlyList<PreflightCheck> Unusable(string where, DbMigrationException error, string reason, string? backupPath)
    {
        ArgumentNullException.ThrowIfNull(error);
        var checks = new List<PreflightCheck> { Failed(PreflightCodes.Connectivity, "Connectivity", error, where) };
        AddSkipped(checks, where, reason, PreflightCodes.Integrity, PreflightCodes.Sessions, PreflightCodes.SchemaPrivileges, PreflightCodes.DatabaseSize);
        checks.Add(CheckBackupLocation(backupPath));
        checks.Add(new PreflightCheck(PreflightCodes.DiskSpace, "Disk space", PreflightStatus.Skipped, "Not run: the database size is unknown.", backupPath ?? where));
        checks.Add(SkippedLeftoverCopies(where, reason));
        return checks;
    }

    private static void AddSkipped(List<PreflightCheck> checks, string where, string reason, params string[] codes)
    {
        foreach (var code in codes)
        {
            var name = code switch
            {
                PreflightCodes.Integrity => "Integrity",
                PreflightCodes.Sessions => "Other sessions",
                PreflightCodes.SchemaPrivileges => "Schema privileges",
                _ => "Size and row counts",
            };
            checks.Add(new PreflightCheck(code, name, PreflightStatus.Skipped, $"Not run: {reason}.", where));
        }
    }
}
