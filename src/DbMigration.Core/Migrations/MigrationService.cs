using System.Data.Common;
using System.Diagnostics;
using DbMigration.Backups;
using DbMigration.Errors;
using DbMigration.Operations;
using DbMigration.Preflight;
using DbMigration.Providers;
using DbMigration.Sql;
using DbMigration.Targets;

namespace DbMigration.Migrations;

/// <summary>What Invoke-DatabaseMigration was asked to do.</summary>
public sealed record MigrationRequest
{
    public required DatabaseTarget Target { get; init; }

    public required string Path { get; init; }

    public string? TargetVersion { get; init; }

    public bool AllowOutOfOrder { get; init; }

    public string? BackupPath { get; init; }

    public bool SkipBackup { get; init; }

    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long each statement may wait for a table or row lock another session holds before the step fails
    /// (PostgreSQL and MariaDB); <see cref="TimeSpan.Zero"/> waits as long as the server allows. While DDL waits, the
    /// server queues every later query on that table behind it.
    /// </summary>
    public TimeSpan StatementLockTimeout { get; init; } = DefaultStatementLockTimeout;

    public static readonly TimeSpan DefaultStatementLockTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Run despite failed pre-flight checks, and take over a stale lock.</summary>
    public bool Force { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>One migration the plan would run, with the exact statements.</summary>
public sealed partial record MigrationStep(string Version, string Description, string Script, IReadOnlyList<SqlStatement> Statements, bool Transactional, string? BackupId = null)
{
    public string Sql => string.Join(";\n", Statements.Select(s => s.Text)) + ";";

    /// <summary>
    /// The script switches foreign keys off (PRAGMA foreign_keys = OFF), as SQLite documents for rebuilding a table.
    /// Inside the step's transaction SQLite would ignore it, and dropping the old table would cascade.
    /// </summary>
    public bool SwitchesForeignKeysOff => Statements.Any(s => ForeignKeysOffPattern().IsMatch(s.Text));

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*PRAGMA\s+(main\.)?foreign_keys\s*=\s*'?(off|0|false|no)'?\s*$", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex ForeignKeysOffPattern();
}

/// <summary>What would run, decided before anything runs; says up front what is not transactional.</summary>
public sealed record MigrationPlan(IReadOnlyList<MigrationStep> Steps, bool TransactionalDdl, IReadOnlyList<string> Notes);

/// <summary>Which applied migrations Undo-DatabaseMigration should reverse.</summary>
public sealed record UndoSelection(string? Version, int? Steps, string? ToVersion);

/// <summary>Versioned schema migrations against the journal. Every call is safe to repeat.</summary>
public sealed class MigrationService
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    public async Task<IReadOnlyList<MigrationInfo>> StatusAsync(DatabaseTarget target, string path, CancellationToken cancellationToken)
    {
        var provider = DatabaseProviders.For(target);
        var scripts = MigrationScript.LoadFolder(path);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var journal = new MigrationJournal(provider);
        var entries = await journal.ExistsAsync(connection, cancellationToken).ConfigureAwait(false)
            ? await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false)
            : [];
        (entries, _) = await MarkRunningAsync(provider, target, entries, cancellationToken).ConfigureAwait(false);
        return Describe(scripts, entries);
    }

    /// <summary>
    /// A non-transactional step is journalled as interrupted before it starts, so a killed run leaves a record
    /// that blocks the next one. While a live run holds the migration lock, that record is its step in progress:
    /// it reads as running, and a caller without the lock neither calls it failed nor refuses to plan.
    /// </summary>
    private static async Task<(IReadOnlyList<JournalEntry> Entries, MigrationLockInfo? Holder)> MarkRunningAsync(
        IDatabaseProvider provider, DatabaseTarget target, IReadOnlyList<JournalEntry> entries, CancellationToken cancellationToken)
    {
        if (!entries.Any(IsInterruptedMark))
        {
            return (entries, null);
        }

        var holder = await MigrationLock.InspectAsync(provider, target, cancellationToken).ConfigureAwait(false);
        return holder.IsHeld
            ? (entries.Select(e => IsInterruptedMark(e) ? e with { Status = "running" } : e).ToList(), holder)
            : (entries, null);
    }

    private static bool IsInterruptedMark(JournalEntry entry) =>
        entry.Status == "failed" && entry.FinishedUtc is null && entry.Error == InterruptedMark;

    private const string InterruptedMark = "interrupted: started but did not finish";

    internal static IReadOnlyList<MigrationInfo> Describe(IReadOnlyList<MigrationScript> scripts, IReadOnlyList<JournalEntry> entries)
    {
        var byVersion = entries.ToDictionary(e => MigrationVersion.Parse(e.Version));
        var done = entries.Where(e => e.Status is "applied" or "baseline").Select(e => MigrationVersion.Parse(e.Version)).ToList();
        var highest = done.Count == 0 ? null : done.Max();
        var result = new List<(MigrationVersion Version, MigrationInfo Info)>();
        foreach (var script in scripts)
        {
            byVersion.TryGetValue(script.Version, out var entry);
            var state = entry?.Status switch
            {
                "applied" => entry.Checksum == script.Checksum ? MigrationState.Applied : MigrationState.ChecksumMismatch,
                "baseline" => MigrationState.Baseline,
                "failed" => MigrationState.Failed,
                "running" => MigrationState.Running,
                _ => highest is not null && script.Version < highest ? MigrationState.OutOfOrder : MigrationState.Pending,
            };
            result.Add((script.Version, Info(script.Version, script.Description, script.FileName, state, entry, script.Down is not null) with { Checksum = script.Checksum }));
        }

        foreach (var entry in entries.Where(e => !scripts.Any(s => s.Version == MigrationVersion.Parse(e.Version))))
        {
            var state = entry.Status switch
            {
                "failed" => MigrationState.Failed,
                "running" => MigrationState.Running,
                "rolled_back" => (MigrationState?)null,
                _ => MigrationState.Missing,
            };
            if (state is not null)
            {
                result.Add((MigrationVersion.Parse(entry.Version), Info(MigrationVersion.Parse(entry.Version), entry.Description, entry.Script, state.Value, entry, false)));
            }
        }

        return result.OrderBy(r => r.Version).Select(r => r.Info).ToList();
    }

    private static MigrationInfo Info(MigrationVersion version, string description, string script, MigrationState state, JournalEntry? entry, bool hasDown) => new()
    {
        Version = version.ToString(),
        Description = description,
        Script = script,
        State = state,
        AppliedUtc = entry?.Status is "applied" or "baseline" ? entry.FinishedUtc ?? entry.StartedUtc : null,
        ExecutionMs = entry?.ExecutionMs,
        Checksum = entry?.Checksum,
        BackupId = entry?.BackupId,
        Error = entry?.Error,
        HasDownSection = hasDown,
    };

    /// <summary>Decides what would run. Reads only: -WhatIf shows this plan and nothing is written.</summary>
    public async Task<MigrationPlan> PlanAsync(MigrationRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await PlanAsync(request, holdsLock: false, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException ex) when (ex.Kind is ErrorKind.ResourceBusy or ErrorKind.OperationTimeout)
        {
            // A SQLite migration running elsewhere locks even the plan's reads out: say so, not just "locked".
            if (await LiveHolderAsync(request.Target, cancellationToken).ConfigureAwait(false) is { } holder)
            {
                throw AnotherRunHolds(request.Target, holder, ex.Message, ex);
            }

            throw;
        }
    }

    private static async Task<MigrationLockInfo?> LiveHolderAsync(DatabaseTarget target, CancellationToken cancellationToken)
    {
        try
        {
            return await MigrationLock.FindLiveHolderAsync(DatabaseProviders.For(target), target, cancellationToken).ConfigureAwait(false);
        }
        catch (DbMigrationException)
        {
            // No better explanation to give: the caller's own error stands.
            return null;
        }
    }

    private static DbMigrationException AnotherRunHolds(DatabaseTarget target, MigrationLockInfo holder, string detail, Exception? inner) =>
        new(ErrorIds.MigrationLockHeld, ErrorKind.ResourceBusy,
            $"Another migration is running on {target}" + (holder.Owner is null ? string.Empty : $" ({holder.Owner}@{holder.Host}, pid {holder.ProcessId}, since {holder.AcquiredUtc:u})") +
            $", so nothing was migrated. Wait for it to finish, then run again; Get-MigrationLock shows the holder. {detail}", inner)
        { Target = target.ToString() };

    private async Task<MigrationPlan> PlanAsync(MigrationRequest request, bool holdsLock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var provider = DatabaseProviders.For(request.Target);
        var scripts = MigrationScript.LoadFolder(request.Path);
        await using var connection = await provider.OpenConnectionAsync(request.Target, request.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var capabilities = provider.GetCapabilities(await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false));
        var journal = new MigrationJournal(provider);
        var exists = await journal.ExistsAsync(connection, cancellationToken).ConfigureAwait(false);
        // Under the lock, MigrationLock has checked already.
        if (exists && !holdsLock && await journal.WriteProblemAsync(connection, cancellationToken).ConfigureAwait(false) is { } problem)
        {
            throw new DbMigrationException(ErrorIds.MigrationJournalNotWritable, ErrorKind.PermissionDenied, problem) { Target = request.Target.ToString() };
        }

        var entries = exists ? await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false) : [];
        if (holdsLock)
        {
            return BuildPlan(request, provider.Engine, capabilities.TransactionalDdl, scripts, entries);
        }

        (entries, var holder) = await MarkRunningAsync(provider, request.Target, entries, cancellationToken).ConfigureAwait(false);
        var plan = BuildPlan(request, provider.Engine, capabilities.TransactionalDdl, scripts, entries);
        var running = entries.Where(e => e.Status == "running").Select(e => "V" + e.Version).ToList();
        return running.Count == 0 ? plan : plan with
        {
            Notes = [.. plan.Notes, $"{string.Join(", ", running)} {(running.Count == 1 ? "is" : "are")} being applied now by another run (the migration lock is {holder}); this run waits for the lock and plans again under it."],
        };
    }

    internal static MigrationPlan BuildPlan(MigrationRequest request, DatabaseEngine engine, bool transactionalDdl, IReadOnlyList<MigrationScript> scripts, IReadOnlyList<JournalEntry> entries)
    {
        var states = Describe(scripts, entries);
        var blocking = states.Where(s => s.State is MigrationState.Failed or MigrationState.ChecksumMismatch).ToList();
        if (blocking.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.MigrationJournalBlocked, ErrorKind.InvalidOperation,
                "The journal must be repaired before migrating: " + string.Join("; ", blocking.Select(b => b.State == MigrationState.Failed
                    ? $"V{b.Version} failed ({b.Error}); fix it, then Repair-MigrationHistory -Database '{request.Target}' -Version {b.Version} -Resolve RolledBack (or Applied){(b.BackupId is null ? string.Empty : $", or put the database back as it was before that run with Restore-MigrationBackup -Database '{request.Target}' -Id {b.BackupId}")}"
                    : $"V{b.Version} changed since it was applied; if that is intended, Repair-MigrationHistory -Database '{request.Target}' -Path '{request.Path}' -Version {b.Version} -AcceptChecksum")) + ".")
            { Target = request.Target.ToString() };
        }

        MigrationVersion? limit = null;
        if (request.TargetVersion is not null)
        {
            limit = MigrationVersion.Parse(request.TargetVersion);
            if (!scripts.Any(s => s.Version == limit) && !entries.Any(e => MigrationVersion.Parse(e.Version) == limit))
            {
                throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.ObjectNotFound, $"-TargetVersion {limit} matches no migration in '{request.Path}'.");
            }
        }

        var outOfOrder = states.Where(s => s.State == MigrationState.OutOfOrder && (limit is null || MigrationVersion.Parse(s.Version) <= limit)).ToList();
        if (outOfOrder.Count > 0 && !request.AllowOutOfOrder)
        {
            throw new DbMigrationException(ErrorIds.MigrationOutOfOrder, ErrorKind.InvalidOperation,
                $"{string.Join(", ", outOfOrder.Select(o => "V" + o.Version))} {(outOfOrder.Count == 1 ? "is" : "are")} older than migrations already applied. Pass -AllowOutOfOrder to run {(outOfOrder.Count == 1 ? "it" : "them")} anyway.")
            { Target = request.Target.ToString() };
        }

        var done = entries.Where(e => e.Status is "applied" or "baseline").Select(e => MigrationVersion.Parse(e.Version)).ToHashSet();
        var pending = scripts.Where(s => !done.Contains(s.Version) && (limit is null || s.Version <= limit)).ToList();

        // Dependencies are checked before anything runs.
        var available = new HashSet<MigrationVersion>(done);
        var missing = new List<string>();
        foreach (var script in pending)
        {
            foreach (var required in script.Requires.Where(r => !available.Contains(r)))
            {
                missing.Add($"V{script.Version} requires V{required}, which is {(scripts.Any(s => s.Version == required) ? "not applied and does not run before it" : "not in the folder")}");
            }

            available.Add(script.Version);
        }

        if (missing.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.MigrationMissingDependency, ErrorKind.InvalidOperation, "Nothing was run: " + string.Join("; ", missing) + ".")
            { Target = request.Target.ToString() };
        }

        var notes = new List<string>();
        var steps = pending.Select(s =>
        {
            s.EnsureRunnable();
            var transactional = transactionalDdl && s.Transactional;
            if (!transactional)
            {
                notes.Add(transactionalDdl
                    ? $"V{s.Version} runs outside a transaction (-- transaction: none): a failure leaves it partially applied."
                    : $"V{s.Version} is not transactional on {engine} (DDL commits implicitly): a failure leaves it partially applied.");
            }

            var statements = SqlScriptSplitter.Split(s.Up, engine);
            RefuseClientSyntax(s, "up", statements, engine);
            if (transactional)
            {
                RefuseTransactionControl(s, "up", statements);
            }

            return new MigrationStep(s.Version.ToString(), s.Description, s.FileName, statements, transactional);
        }).ToList();
        return new MigrationPlan(steps, transactionalDdl, notes);
    }

    /// <summary>A command-line client's syntax (psql's \connect or COPY … FROM stdin, mysql's SOURCE) is refused before anything runs.</summary>
    private static void RefuseClientSyntax(MigrationScript script, string section, IReadOnlyList<SqlStatement> statements, DatabaseEngine engine)
    {
        foreach (var statement in statements)
        {
            if (ClientSyntax.Describe(statement.Text, engine) is { } why)
            {
                throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData, $"{script.FileName} line {statement.Line} ({section} section): {why} Nothing was run.")
                { Target = script.Path, Sql = statement.Text };
            }
        }
    }

    /// <summary>
    /// A script's own BEGIN or COMMIT inside the step's transaction would commit part of the migration early, apart
    /// from its journal row: refused before anything runs.
    /// </summary>
    private static void RefuseTransactionControl(MigrationScript script, string section, IReadOnlyList<SqlStatement> statements)
    {
        foreach (var statement in statements)
        {
            if (TransactionControl.Keyword(statement.Text) is { } keyword)
            {
                throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidData,
                    $"{script.FileName} line {statement.Line}: its {section} section runs {keyword} itself, but each migration runs in one transaction together with its journal row, so this would commit part of it early and leave the journal behind. Nothing was run. Remove the script's own BEGIN and COMMIT (the migration stays all-or-nothing), or put '-- transaction: none' in its header to run it as written.")
                { Target = script.Path, Sql = statement.Text };
            }
        }
    }

    /// <summary>
    /// Applies the confirmed steps of a fresh plan, under the migration lock, after a pre-flight and a safety backup.
    /// Each applied migration is reported through <paramref name="onApplied"/> as it completes. Notes of the fresh
    /// plan are warned unless they are among <paramref name="notesShown"/>, the ones the caller already showed.
    /// </summary>
    public async Task ExecuteAsync(MigrationRequest request, IReadOnlySet<string> confirmedVersions, Action<MigrationRun> onApplied, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken, IReadOnlyCollection<string>? notesShown = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(onApplied);
        var target = request.Target;
        var provider = DatabaseProviders.For(target);

        if (!request.Force)
        {
            var checks = await new PreflightService().RunAsync(new PreflightRequest(target, request.SkipBackup ? null : request.BackupPath, request.ConnectTimeout), progress, cancellationToken).ConfigureAwait(false);
            foreach (var warning in checks.Where(c => c.Status == PreflightStatus.Warning))
            {
                progress.Warning($"Pre-flight {warning.Code} {warning.Name}: {warning.Message}");
            }

            var failed = checks.Where(c => c.Status == PreflightStatus.Failed).ToList();
            if (failed.Count > 0)
            {
                // A migration running elsewhere fails PF003 with its own open transaction: name it for what it is.
                if (await LiveHolderAsync(target, cancellationToken).ConfigureAwait(false) is { } holder)
                {
                    throw AnotherRunHolds(target, holder, "Pre-flight: " + string.Join("; ", failed.Select(f => $"{f.Code} {f.Name}: {f.Message}")), null);
                }

                throw new DbMigrationException(ErrorIds.MigrationPreflightFailed, ErrorKind.InvalidOperation,
                    "Pre-flight failed, so nothing was migrated: " + string.Join("; ", failed.Select(f => $"{f.Code} {f.Name}: {f.Message}")) + " Pass -Force to migrate anyway.")
                { Target = target.ToString() };
            }
        }

        await using var migrationLock = await MigrationLock.AcquireAsync(provider, target, request.LockTimeout, request.Force, progress, cancellationToken).ConfigureAwait(false);

        // Re-plan under the lock: another process may have migrated while we waited.
        var plan = await PlanAsync(request, holdsLock: true, cancellationToken).ConfigureAwait(false);
        var steps = plan.Steps.TakeWhile(s => confirmedVersions.Contains(s.Version)).ToList();
        if (steps.Count == 0)
        {
            progress.Verbose("Nothing to migrate: the database is up to date.");
            return;
        }

        foreach (var note in plan.Notes.Except(notesShown ?? []))
        {
            progress.Warning(note);
        }

        string? backupId = null;
        if (!request.SkipBackup)
        {
            if (request.BackupPath is null)
            {
                throw new DbMigrationException(ErrorIds.MigrationBackupRequired, ErrorKind.InvalidArgument,
                    "A safety backup is taken before migrating: pass -BackupPath, or -SkipBackup to go without one.") { Target = target.ToString() };
            }

            progress?.Report(new ProgressUpdate(6, "Invoke-DatabaseMigration", "Safety backup", 0));
            var backup = await new BackupService().CreateAsync(new BackupRequest
            {
                Source = target,
                Path = request.BackupPath,
                Category = BackupCategory.PreMigration,
                Tags = ["before-V" + steps[0].Version],
            }, progress, cancellationToken).ConfigureAwait(false);
            backupId = backup.Id;
        }

        var journal = new MigrationJournal(provider);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await provider.LimitLockWaitAsync(connection, request.StatementLockTimeout, cancellationToken).ConfigureAwait(false);
        await journal.EnsureAsync(connection, cancellationToken).ConfigureAwait(false);
        var scripts = MigrationScript.LoadFolder(request.Path).ToDictionary(s => s.Version.ToString());
        string? lastApplied = null;
        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            progress?.Report(new ProgressUpdate(6, "Invoke-DatabaseMigration", $"V{step.Version} {step.Description}", 100.0 * i / steps.Count, CurrentOperation: step.Script));
            var script = scripts[step.Version];
            MigrationRun run;
            try
            {
                run = await ApplyAsync(provider, journal, connection, target, step, EntryFor(script, backupId), "applied", progress, cancellationToken).ConfigureAwait(false);
            }
            catch (DbMigrationException ex) when (lastApplied is not null && ex.ErrorId == ErrorIds.MigrationFailed)
            {
                // The failed step changed nothing, so the schema is what the steps before it left: drift is measured
                // against that, not against an older run's (a partly applied step leaves no honest snapshot to take).
                await TrySaveSnapshotAsync(provider, journal, connection, lastApplied).ConfigureAwait(false);
                throw;
            }

            lastApplied = step.Version;
            onApplied(run with { BackupId = backupId });
        }

        await SaveSnapshotAsync(provider, journal, connection, steps[^1].Version, cancellationToken).ConfigureAwait(false);
        progress?.Report(new ProgressUpdate(6, "Invoke-DatabaseMigration", "Done", 100, Completed: true));
    }

    private static JournalEntry EntryFor(MigrationScript script, string? backupId) => new()
    {
        Version = script.Version.ToString(),
        SortKey = script.Version.SortKey,
        Description = script.Description,
        Script = script.FileName,
        Checksum = script.Checksum,
        ChecksumAlgorithm = MigrationScript.ChecksumAlgorithm,
        Status = "applied",
        AppliedBy = Actor.User,
        Host = Actor.Host,
        StartedUtc = DateTimeOffset.UtcNow,
        BackupId = backupId,
    };

    /// <summary>
    /// Runs one step. Transactional steps commit their statements and the journal row together, or roll back
    /// both. Other steps are first journalled as failed ("interrupted"), so a kill mid-way leaves a record that
    /// blocks the next run, and are marked done only after the last statement.
    /// </summary>
    private static async Task<MigrationRun> ApplyAsync(
        IDatabaseProvider provider, MigrationJournal journal, DbConnection connection, DatabaseTarget target, MigrationStep step, JournalEntry entry,
        string successStatus, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var eventName = successStatus == "applied" ? "applied" : "undone";
        // A script may move the session elsewhere (USE other_db; pg_dump's empty search_path; SET ROLE app_owner): the
        // journal row, the next step and the schema snapshot must still find their tables, as the user who migrates.
        var session = await provider.ReadSessionStateAsync(connection, cancellationToken).ConfigureAwait(false);
        if (step.Transactional)
        {
            // Switched off before the transaction, where SQLite honours it, and checked before the commit.
            await using var foreignKeys = step.SwitchesForeignKeysOff ? await provider.SuspendForeignKeysAsync(connection, cancellationToken).ConfigureAwait(false) : null;
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            SqlStatement? current = null;
            try
            {
                foreach (var statement in step.Statements)
                {
                    current = statement;
                    await RunStatementAsync(provider, connection, transaction, statement, cancellationToken).ConfigureAwait(false);
                }

                if (foreignKeys is not null)
                {
                    current = new SqlStatement(step.Statements.Count + 1, step.Statements.Count == 0 ? 0 : step.Statements[^1].Line, "PRAGMA foreign_key_check");
                    var violations = await provider.ForeignKeyViolationsAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
                    if (violations.Count > 0)
                    {
                        throw new DbMigrationException(ErrorIds.MigrationFailed, ErrorKind.InvalidData,
                            $"with foreign keys switched off, the script left rows whose parents are missing: {string.Join("; ", violations.Take(10))}{(violations.Count > 10 ? $"; and {violations.Count - 10} more" : string.Empty)}.")
                        { Sql = current.Text };
                    }
                }

                current = null;
                await provider.RestoreSessionStateAsync(connection, transaction, session, cancellationToken).ConfigureAwait(false);
                await journal.RecordAsync(connection, transaction, entry with { Status = successStatus, FinishedUtc = DateTimeOffset.UtcNow, ExecutionMs = stopwatch.ElapsedMilliseconds }, eventName, null, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                throw await FailAsync(provider, journal, connection, target, step, entry, current, ex, partial: false, stopwatch, session, successStatus).ConfigureAwait(false);
            }
        }
        else
        {
            await journal.RecordAsync(connection, null, entry with { Status = "failed", Error = InterruptedMark }, "started", "non-transactional", cancellationToken).ConfigureAwait(false);
            var done = 0;
            foreach (var statement in step.Statements)
            {
                try
                {
                    await RunStatementAsync(provider, connection, null, statement, cancellationToken).ConfigureAwait(false);
                    done++;
                }
                catch (Exception ex)
                {
                    throw await FailAsync(provider, journal, connection, target, step, entry, statement, ex, partial: done > 0, stopwatch, session, successStatus).ConfigureAwait(false);
                }
            }

            // Every statement succeeded: what the script left open is part of the step.
            await provider.EndOpenTransactionAsync(connection, commit: true, cancellationToken).ConfigureAwait(false);
            await provider.RestoreSessionStateAsync(connection, null, session, cancellationToken).ConfigureAwait(false);
            await journal.RecordAsync(connection, null, entry with { Status = successStatus, FinishedUtc = DateTimeOffset.UtcNow, ExecutionMs = stopwatch.ElapsedMilliseconds }, eventName, null, cancellationToken).ConfigureAwait(false);
        }

        progress.Verbose($"V{step.Version} {step.Description}: {successStatus} in {stopwatch.ElapsedMilliseconds} ms.");
        return new MigrationRun
        {
            Version = step.Version,
            Description = step.Description,
            Status = successStatus,
            Transactional = step.Transactional,
            Statements = step.Statements.Count,
            Duration = stopwatch.Elapsed,
        };
    }

    private static async Task RunStatementAsync(IDatabaseProvider provider, DbConnection connection, DbTransaction? transaction, SqlStatement statement, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand(statement.Text, transaction, timeoutSeconds: 0);
        provider.SendAsWritten(command);
        using var interrupt = provider.InterruptOn(connection, cancellationToken);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<DbMigrationException> FailAsync(
        IDatabaseProvider provider, MigrationJournal journal, DbConnection connection, DatabaseTarget target, MigrationStep step, JournalEntry entry,
        SqlStatement? statement, Exception error, bool partial, Stopwatch stopwatch, string? session, string successStatus)
    {
        var translated = provider.TranslateException(error, target, statement?.Text);
        var message = translated?.Message ?? error.Message;
        var outcome = step.Transactional ? "was rolled back completely" : partial ? "is PARTIALLY APPLIED: earlier statements committed" : "changed nothing";
        // Waiting for another session's lock is no fault of the script: when the step changed nothing, the version
        // stays as it was (pending, or applied for an undo) instead of blocking the journal until a repair.
        var lockWait = statement is not null && provider.IsLockWaitTimeout(error);
        var unchanged = lockWait && (step.Transactional || !partial);
        // SQLSTATE 25001 (CREATE INDEX CONCURRENTLY, VACUUM and the like), or SQLite's own words for VACUUM.
        var hint = step.Transactional && statement is not null && (translated?.SqlState == "25001" || message.Contains("within a transaction", StringComparison.OrdinalIgnoreCase))
            ? " That statement cannot run inside a transaction: put it in a migration of its own with '-- transaction: none' in its header (such a step is not all-or-nothing)."
            : lockWait
                ? $" The statement gave up waiting for a lock that another session holds (an open transaction on the table): Test-MigrationPreflight names the sessions.{(unchanged ? " Nothing changed and the journal does not block: run again once they have finished," : " Once they have finished, repair the journal with Repair-MigrationHistory and run again,")} or allow a longer wait with -StatementLockTimeout (0 waits as long as the server allows, while later queries on the table queue behind the migration)."
            : statement is not null && AlreadyExists(translated, message)
                ? $" If the database was built before DbMigration managed it, record the migrations it already reflects with Set-MigrationBaseline (for example -Version {step.Version}) instead of running them; Test-MigrationDrift then shows what differs."
                : string.Empty;
        if (!step.Transactional && partial && !unchanged)
        {
            // The journal now blocks every run until this is settled: say both ways out, not only that it is broken.
            hint += (entry.BackupId is null
                    ? " Finish the step by hand, or undo what it committed,"
                    : $" Either put the database back as it was before the run (its journal included) with Restore-MigrationBackup -Database '{target}' -Id {entry.BackupId}, or finish the step by hand, or undo what it committed,")
                + $" and record which with Repair-MigrationHistory -Database '{target}' -Version {step.Version} -Resolve Applied (or RolledBack).";
        }

        try
        {
            if (!step.Transactional)
            {
                // A transaction the script left open would swallow the journal row below.
                await provider.EndOpenTransactionAsync(connection, commit: false, CancellationToken.None).ConfigureAwait(false);
            }

            await provider.RestoreSessionStateAsync(connection, null, session, CancellationToken.None).ConfigureAwait(false);
            await journal.RecordAsync(connection, null, entry with
            {
                Status = unchanged ? (successStatus == "applied" ? "rolled_back" : "applied") : "failed",
                FinishedUtc = DateTimeOffset.UtcNow,
                ExecutionMs = stopwatch.ElapsedMilliseconds,
                Error = message,
                FailedStatement = statement?.Text,
            }, "failed", outcome, CancellationToken.None).ConfigureAwait(false);
        }
        catch (DbException)
        {
            // The journal write is best effort once the database itself failed; the error below still says everything.
        }

        return new DbMigrationException(
            !step.Transactional && partial ? ErrorIds.MigrationPartiallyApplied : ErrorIds.MigrationFailed,
            translated?.Kind ?? ErrorKind.InvalidOperation,
            $"V{step.Version} {step.Description} failed {(statement is null ? "while being recorded in the journal" : $"at statement {statement.Index} (line {statement.Line})")} and {outcome}: {message.TrimEnd()}{(!message.TrimEnd().EndsWith('.') ? "." : string.Empty)}{hint}" +
            (entry.BackupId is null || hint.Contains(entry.BackupId, StringComparison.Ordinal) ? string.Empty : $" The pre-run backup is {entry.BackupId}."), error)
        {
            Target = target.ToString(),
            Sql = statement?.Text,
            SqlState = translated?.SqlState,
            ServerErrorNumber = translated?.ServerErrorNumber,
        };
    }

    /// <summary>The object a statement creates is already there: PostgreSQL 42P07/42710, MySQL 1050/1061, SQLite's words.</summary>
    private static bool AlreadyExists(DbMigrationException? translated, string message) =>
        translated?.SqlState is "42P07" or "42710" or "42S01" || translated?.ServerErrorNumber is 1050 or 1061 ||
        message.Contains("already exists", StringComparison.OrdinalIgnoreCase);

    private static async Task TrySaveSnapshotAsync(IDatabaseProvider provider, MigrationJournal journal, DbConnection connection, string version)
    {
        try
        {
            await SaveSnapshotAsync(provider, journal, connection, version, CancellationToken.None).ConfigureAwait(false);
        }
        catch (DbException)
        {
            // Best effort beside the step's own error, which is what the caller must see.
        }
    }

    private static async Task SaveSnapshotAsync(IDatabaseProvider provider, MigrationJournal journal, DbConnection connection, string version, CancellationToken cancellationToken)
    {
        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var definitions = await provider.GetDefinitionsAsync(connection, cancellationToken).ConfigureAwait(false);
        await journal.SaveSnapshotAsync(connection, version, SchemaSnapshot.Capture(tables, definitions), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The applied migrations to reverse, newest first, with their down statements (null where a file has none).</summary>
    public async Task<IReadOnlyList<(MigrationStep Step, bool HasDown)>> PlanUndoAsync(DatabaseTarget target, string path, UndoSelection selection, CancellationToken cancellationToken)
    {
        var provider = DatabaseProviders.For(target);
        var scripts = MigrationScript.LoadFolder(path).ToDictionary(s => s.Version);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var capabilities = provider.GetCapabilities(await provider.GetServerInfoAsync(connection, cancellationToken).ConfigureAwait(false));
        var journal = new MigrationJournal(provider);
        var applied = (await journal.ExistsAsync(connection, cancellationToken).ConfigureAwait(false) ? await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false) : [])
            .Where(e => e.Status == "applied")
            .OrderByDescending(e => MigrationVersion.Parse(e.Version))
            .ToList();

        IEnumerable<JournalEntry> chosen;
        if (selection.Version is not null)
        {
            var version = MigrationVersion.Parse(selection.Version);
            chosen = applied.Where(e => MigrationVersion.Parse(e.Version) == version).ToList();
            if (!chosen.Any())
            {
                throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.ObjectNotFound, $"V{version} is not applied on {target}; nothing to undo.") { Target = target.ToString() };
            }
        }
        else if (selection.ToVersion is not null)
        {
            var version = MigrationVersion.Parse(selection.ToVersion);
            chosen = applied.Where(e => MigrationVersion.Parse(e.Version) > version);
        }
        else
        {
            chosen = applied.Take(selection.Steps ?? 1);
        }

        chosen = chosen.ToList();
        // The down section of a file edited since its up ran may not undo what ran: the same rule as migrating.
        var changed = chosen.Where(e => scripts.TryGetValue(MigrationVersion.Parse(e.Version), out var script) && script.Checksum != e.Checksum).ToList();
        if (changed.Count > 0)
        {
            throw new DbMigrationException(ErrorIds.MigrationJournalBlocked, ErrorKind.InvalidOperation,
                "Nothing was undone: " + string.Join("; ", changed.Select(e =>
                    $"V{e.Version} ({e.Script}) changed since it was applied, so its down section may not undo what ran; if the change is intended (a fixed down section), Repair-MigrationHistory -Database '{target}' -Path '{path}' -Version {e.Version} -AcceptChecksum, then undo" +
                    (e.BackupId is null ? string.Empty : $", or restore backup {e.BackupId}, taken before it (Restore-MigrationBackup -Id {e.BackupId})"))) + ".")
            { Target = target.ToString() };
        }

        return chosen.Select(e =>
        {
            var version = MigrationVersion.Parse(e.Version);
            scripts.TryGetValue(version, out var script);
            var down = script?.Down;
            var statements = down is null ? [] : SqlScriptSplitter.Split(down, provider.Engine);
            var transactional = capabilities.TransactionalDdl && (script?.Transactional ?? true);
            if (script is not null)
            {
                RefuseClientSyntax(script, "down", statements, provider.Engine);
                if (transactional)
                {
                    RefuseTransactionControl(script, "down", statements);
                }
            }

            return (new MigrationStep(e.Version, e.Description, e.Script, statements, transactional, e.BackupId), down is not null);
        }).ToList();
    }

    /// <summary>Runs the down sections of the confirmed steps, newest first, under the migration lock.</summary>
    public async Task UndoAsync(DatabaseTarget target, string path, IReadOnlyList<MigrationStep> steps, TimeSpan lockTimeout, TimeSpan statementLockTimeout, Action<MigrationRun> onUndone, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var provider = DatabaseProviders.For(target);
        await using var migrationLock = await MigrationLock.AcquireAsync(provider, target, lockTimeout, force: false, progress, cancellationToken).ConfigureAwait(false);
        var journal = new MigrationJournal(provider);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        await provider.LimitLockWaitAsync(connection, statementLockTimeout, cancellationToken).ConfigureAwait(false);
        var entries = (await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false)).ToDictionary(e => e.Version);
        string? lastUndone = null;
        try
        {
            foreach (var step in steps)
            {
                if (!entries.TryGetValue(step.Version, out var entry) || entry.Status != "applied")
                {
                    throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.InvalidOperation, $"V{step.Version} is no longer applied; nothing was undone from here on.");
                }

                onUndone(await ApplyAsync(provider, journal, connection, target, step, entry with { StartedUtc = DateTimeOffset.UtcNow, Error = null, FailedStatement = null }, "rolled_back", progress, cancellationToken).ConfigureAwait(false));
                lastUndone = step.Version;
            }
        }
        catch (DbMigrationException ex) when (lastUndone is not null && ex.ErrorId is ErrorIds.MigrationFailed or ErrorIds.MigrationVersionNotFound)
        {
            // As for a run: the steps undone so far are the schema now.
            await TrySaveSnapshotAsync(provider, journal, connection, lastUndone).ConfigureAwait(false);
            throw;
        }

        if (steps.Count > 0)
        {
            await SaveSnapshotAsync(provider, journal, connection, steps[^1].Version, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Records existing versions as baseline without running them. Says so when a journal already exists.</summary>
    public async Task<IReadOnlyList<MigrationInfo>> BaselineAsync(DatabaseTarget target, string? path, string version, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var provider = DatabaseProviders.For(target);
        var limit = MigrationVersion.Parse(version);
        var scripts = path is null ? [] : MigrationScript.LoadFolder(path);
        if (scripts.Count > 0 && limit > scripts[^1].Version)
        {
            // Most likely a typo (99 for 9): every migration would be marked applied and never run.
            throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.InvalidArgument,
                $"V{limit} is above every migration in '{path}' (the highest is V{scripts[^1].Version}), so all of them would be recorded as applied without running. Give the version the database is at.")
            { Target = target.ToString() };
        }

        await using var migrationLock = await MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(30), force: false, progress, cancellationToken).ConfigureAwait(false);
        var journal = new MigrationJournal(provider);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var existing = await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false);
        if (existing.Count > 0)
        {
            progress.Warning($"The journal already has {existing.Count} entr{(existing.Count == 1 ? "y" : "ies")} on {target}; versions already applied stay as they are, the others up to V{limit} are recorded as baseline.");
        }

        var done = existing.Where(e => e.Status is "applied" or "baseline").Select(e => MigrationVersion.Parse(e.Version)).ToHashSet();
        var adopt = scripts.Where(s => s.Version <= limit && !done.Contains(s.Version))
            .Select(s => EntryFor(s, null) with { Status = "baseline", FinishedUtc = DateTimeOffset.UtcNow, ExecutionMs = 0 })
            .ToList();
        if (path is null && !done.Contains(limit))
        {
            adopt.Add(new JournalEntry
            {
                Version = limit.ToString(),
                SortKey = limit.SortKey,
                Description = "baseline",
                Script = string.Empty,
                Checksum = string.Empty,
                ChecksumAlgorithm = MigrationScript.ChecksumAlgorithm,
                Status = "baseline",
                AppliedBy = Actor.User,
                Host = Actor.Host,
                StartedUtc = DateTimeOffset.UtcNow,
                FinishedUtc = DateTimeOffset.UtcNow,
                ExecutionMs = 0,
            });
        }

        foreach (var entry in adopt)
        {
            await journal.RecordAsync(connection, null, entry, "baseline", $"adopted at V{limit}", cancellationToken).ConfigureAwait(false);
        }

        await SaveSnapshotAsync(provider, journal, connection, limit.ToString(), cancellationToken).ConfigureAwait(false);
        return Describe(scripts, await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false)).Where(i => adopt.Any(a => a.Version == i.Version)).ToList();
    }

    /// <summary>Repairs one version's journal entry: accept its current checksum, or resolve a failure.</summary>
    public async Task<MigrationInfo> RepairAsync(DatabaseTarget target, string? path, string version, bool acceptChecksum, MigrationState? resolveAs, string? note, IProgress<OperationUpdate>? progress, CancellationToken cancellationToken)
    {
        var provider = DatabaseProviders.For(target);
        var wanted = MigrationVersion.Parse(version);
        await using var migrationLock = await MigrationLock.AcquireAsync(provider, target, TimeSpan.FromSeconds(30), force: false, progress, cancellationToken).ConfigureAwait(false);
        var journal = new MigrationJournal(provider);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var entry = (await journal.ReadAsync(connection, cancellationToken).ConfigureAwait(false)).FirstOrDefault(e => MigrationVersion.Parse(e.Version) == wanted)
            ?? throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.ObjectNotFound, $"V{wanted} has no journal entry on {target}.") { Target = target.ToString() };

        JournalEntry repaired;
        string detail;
        if (acceptChecksum)
        {
            if (path is null)
            {
                throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument, "-AcceptChecksum needs -Path to read the current file.");
            }

            var script = MigrationScript.LoadFolder(path).FirstOrDefault(s => s.Version == wanted)
                ?? throw new DbMigrationException(ErrorIds.MigrationVersionNotFound, ErrorKind.ObjectNotFound, $"No file for V{wanted} in '{path}'.");
            if (entry.Status is not ("applied" or "baseline"))
            {
                throw new DbMigrationException(ErrorIds.MigrationJournalBlocked, ErrorKind.InvalidOperation, $"V{wanted} is {entry.Status}, not applied; there is no checksum to accept.");
            }

            repaired = entry with { Checksum = script.Checksum, ChecksumAlgorithm = MigrationScript.ChecksumAlgorithm };
            detail = $"checksum accepted: {entry.Checksum} -> {script.Checksum}" + (note is null ? string.Empty : "; " + note);
        }
        else
        {
            if (entry.Status != "failed")
            {
                throw new DbMigrationException(ErrorIds.MigrationJournalBlocked, ErrorKind.InvalidOperation, $"V{wanted} is {entry.Status}, not failed; there is nothing to resolve.");
            }

            var status = resolveAs == MigrationState.Applied ? "applied" : "rolled_back";
            repaired = entry with { Status = status };
            detail = $"resolved as {status} (was failed: {entry.Error})" + (note is null ? string.Empty : "; note: " + note);
        }

        await journal.RecordAsync(connection, null, repaired, acceptChecksum ? "checksum_accepted" : "resolved", detail, cancellationToken).ConfigureAwait(false);
        progress.Verbose($"V{wanted}: {detail}");
        var scripts = path is null ? [] : MigrationScript.LoadFolder(path);
        return Describe(scripts, [repaired]).FirstOrDefault(i => i.Version == wanted.ToString())
            ?? Info(wanted, repaired.Description, repaired.Script, repaired.Status == "rolled_back" ? MigrationState.Pending : MigrationState.Applied, repaired, false);
    }

    /// <summary>
    /// Live schema against the schema recorded after the last migration run. A PostgreSQL column that a timezone run
    /// turned from timestamp into timestamptz is DbMigration's own recorded change, not drift: it is named in a
    /// verbose message instead, until the run is undone.
    /// </summary>
    public async Task<IReadOnlyList<SchemaDifference>> DriftAsync(DatabaseTarget target, CancellationToken cancellationToken, IProgress<OperationUpdate>? progress = null)
    {
        var provider = DatabaseProviders.For(target);
        await using var connection = await provider.OpenConnectionAsync(target, ConnectTimeout, cancellationToken).ConfigureAwait(false);
        var journal = new MigrationJournal(provider);
        var snapshot = await journal.ExistsAsync(connection, cancellationToken).ConfigureAwait(false)
            ? await journal.LatestSnapshotAsync(connection, cancellationToken).ConfigureAwait(false)
            : null;
        if (snapshot is null)
        {
            throw new DbMigrationException(ErrorIds.MigrationNoSnapshot, ErrorKind.ObjectNotFound,
                $"{target} has no recorded schema: run Invoke-DatabaseMigration or Set-MigrationBaseline first.") { Target = target.ToString() };
        }

        var tables = await provider.GetTablesAsync(connection, cancellationToken).ConfigureAwait(false);
        var differences = SchemaSnapshot.Compare(snapshot.Value.Json, tables, await provider.GetDefinitionsAsync(connection, cancellationToken).ConfigureAwait(false));
        if (provider.Engine != DatabaseEngine.PostgreSql || !differences.Any(d => d.ObjectType == SchemaObjectType.Column && d.Kind == DifferenceKind.Changed))
        {
            return differences;
        }

        var converted = await Timezone.TimezoneMigrationService.ConvertedTypedColumnsAsync(tables, connection, cancellationToken).ConfigureAwait(false);
        return differences.Where(d =>
        {
            if (d.ObjectType != SchemaObjectType.Column || d.Kind != DifferenceKind.Changed || !converted.TryGetValue($"{d.Table}.{d.Name}", out var runId)
                || d.Expected is not { } expected || !expected.Contains(" without time zone", StringComparison.Ordinal)
                || expected.Replace(" without time zone", " with time zone", StringComparison.Ordinal) != d.Actual)
            {
                return true;
            }

            progress.Verbose($"{d.Table}.{d.Name}: {d.Expected} -> {d.Actual} is timezone run {runId}'s conversion to UTC, not drift (Undo-TimezoneMigration -Id {runId} reverts it).");
            return false;
        }).ToList();
    }

    /// <summary>Creates the next V&lt;n&gt;__&lt;name&gt;.sql with up and down sections.</summary>
    public static MigrationFile NewFile(string path, string name)
    {
        if (File.Exists(path))
        {
            throw new DbMigrationException(ErrorIds.MigrationFolderNotWritable, ErrorKind.WriteError, $"Cannot create a migration in '{path}': '{path}' is a file, not a folder.") { Target = path };
        }

        try
        {
            return WriteNewFile(path, name);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DbMigrationException(ErrorIds.MigrationFolderNotWritable, ex is UnauthorizedAccessException ? ErrorKind.PermissionDenied : ErrorKind.WriteError,
                $"Cannot create a migration in '{path}': {ex.Message}", ex)
            { Target = path };
        }
    }

    private static MigrationFile WriteNewFile(string path, string name)
    {
        Directory.CreateDirectory(path);

        // From the names alone: a freshly scaffolded, still empty file must not stop the next scaffold.
        var highest = Directory.EnumerateFiles(path, "V*__*.sql", new EnumerationOptions { MatchCasing = MatchCasing.CaseInsensitive })
            .Select(f => System.IO.Path.GetFileName(f)[1..].Split("__")[0].Split('.', '_')[0])
            .Select(v => long.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0)
            .DefaultIfEmpty(0)
            .Max();
        var next = highest + 1;
        // One underscore for each run of other characters: "__" separates the version from the description.
        var slug = System.Text.RegularExpressions.Regex.Replace(name, @"[^\p{L}\p{Nd}]+", "_", System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1)).Trim('_');
        if (slug.Length == 0)
        {
            throw new DbMigrationException(ErrorIds.MigrationInvalidFile, ErrorKind.InvalidArgument, $"'{name}' gives an empty file name; use letters or digits.");
        }

        var file = System.IO.Path.Combine(path, $"V{next:D3}__{slug}.sql");
        File.WriteAllText(file, $"-- {name}\n-- requires:\n-- migrate:up\n\n\n-- migrate:down\n\n");
        return new MigrationFile(next.ToString(System.Globalization.CultureInfo.InvariantCulture), slug.Replace('_', ' '), file);
    }
}
