#Requires -Version 7.4
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The real module surface in a real pwsh: import, exports, help, typed output, errors, -WhatIf.
# Run after `dotnet build` (build.ps1 -Test does both). The PostgreSQL and MariaDB contexts run when
# DBMIGRATION_TEST_POSTGRES and DBMIGRATION_TEST_MARIADB are set (see TestSupport.ps1); otherwise they are skipped.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    $script:root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    $script:work, $script:db = New-PesterWorkspace $root 'dbm-pester-' 1000
}

AfterAll {
    Remove-PesterWorkspace $work
}

Describe 'Module surface' {
    It 'exports exactly the cmdlets the manifest lists' {
        $manifest = Import-PowerShellDataFile (Join-Path $root 'DbMigration.psd1')
        (Get-Command -Module DbMigration).Name | Sort-Object | Should -Be ($manifest.CmdletsToExport | Sort-Object)
    }

    It 'has its own help, with examples and every parameter described, for <_>' -ForEach @(
        (Import-PowerShellDataFile (Join-Path $PSScriptRoot '..' '..' 'DbMigration.psd1')).CmdletsToExport) {
        # Without the help file pwsh makes up help from the syntax, so check for what only the file has.
        $help = Get-Help $_ -Full
        $help.Synopsis.Trim() | Should -Not -BeLike "$_ *" -Because 'a synopsis that is the syntax line means the help file was not found'
        $help.description | Should -Not -BeNullOrEmpty
        $help.examples | Should -Not -BeNullOrEmpty
        @($help.examples.example | Where-Object { $_ }).Count | Should -BeGreaterThan 0
        foreach ($parameter in (Get-Command $_).Parameters.Values | Where-Object { $_.Name -notin [System.Management.Automation.PSCmdlet]::CommonParameters -and $_.Name -notin [System.Management.Automation.PSCmdlet]::OptionalCommonParameters }) {
            ($help.parameters.parameter | Where-Object Name -EQ $parameter.Name).description | Should -Not -BeNullOrEmpty -Because "-$($parameter.Name) needs help"
        }
    }

    It 'shows in Get-Help the same syntax as Get-Command, for <_>' -ForEach @(
        (Import-PowerShellDataFile (Join-Path $PSScriptRoot '..' '..' 'DbMigration.psd1')).CmdletsToExport) {
        # A help file's syntax is shown as written: compare each parameter set's parameters, mandatory ones and positions.
        $help = Get-Help $_
        $command = Get-Command $_
        $shown = @($help.syntax.syntaxItem | ForEach-Object {
                (@($_.parameter | ForEach-Object { '{0}:{1}:{2}' -f $_.name, $_.required, $_.position }) | Sort-Object) -join ' ' })
        $declared = @($command.ParameterSets | ForEach-Object {
                (@($_.Parameters | Where-Object { $_.Name -notin [System.Management.Automation.PSCmdlet]::CommonParameters } |
                        ForEach-Object { '{0}:{1}:{2}' -f $_.Name, "$($_.IsMandatory)".ToLowerInvariant(), ($_.Position -lt 0 ? 'named' : $_.Position) }) | Sort-Object) -join ' ' })
        ($shown | Sort-Object) | Should -Be ($declared | Sort-Object)
    }

    It 'loads Core beside the cmdlets and the drivers into its own AssemblyLoadContext' {
        Invoke-DatabaseQuery -Database $db -Query 'SELECT 1 AS one' | Out-Null
        $loaded = [AppDomain]::CurrentDomain.GetAssemblies()
        $core = $loaded | Where-Object { $_.GetName().Name -eq 'DbMigration.Core' }
        $sqlite = $loaded | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' }
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($core[0]) | Should -Be ([System.Runtime.Loader.AssemblyLoadContext]::Default)
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($sqlite[0]).Name | Should -Be 'DbMigration'
        [DbMigration.Backups.BackupInfo].Assembly | Should -Be $core[0]
    }
}

Describe 'Invoke-DatabaseQuery on SQLite' {
    It 'returns rows as objects with column properties' {
        $rows = Invoke-DatabaseQuery -Database $db -Query 'SELECT id, event_type FROM events ORDER BY id LIMIT 3'
        $rows.Count | Should -Be 3
        $rows[0].id | Should -Be 1
        $rows[0].PSObject.TypeNames[0] | Should -Be 'DbMigration.QueryRow'
    }

    It 'binds hashtable parameters' {
        (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM events WHERE id <= @max' -Parameters @{ max = 10 }).n | Should -Be 10
    }

    It 'reports rows affected as a typed result' {
        $result = Invoke-DatabaseQuery $db "UPDATE events SET note = 'pester' WHERE id <= 5"
        $result | Should -BeOfType ([DbMigration.Query.QueryStatementResult])
        $result.RowsAffected | Should -Be 5
    }

    It '-WhatIf runs nothing' {
        Invoke-DatabaseQuery $db 'DELETE FROM events' -WhatIf
        (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
    }

    It '-SingleTransaction takes back the whole script when a statement fails' {
        $err = { Invoke-DatabaseQuery $db "DELETE FROM events WHERE id <= 10; INSERT INTO events (id) VALUES (20)" -SingleTransaction -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Query.StatementFailed,*'
        $err.Exception.Message | Should -BeLike '*rolled back*'
        (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
    }

    It 'resolves a relative path against the current location' {
        Push-Location $work
        try { (Invoke-DatabaseQuery 'events.db' 'SELECT 1 AS one').one | Should -Be 1 } finally { Pop-Location }
    }

    It 'fails with a stable ErrorId, category and target for a missing file, and creates nothing' {
        $missing = Join-Path $work 'missing.db'
        $err = { Invoke-DatabaseQuery $missing 'SELECT 1' } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Target.FileNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.TargetObject | Should -Be $missing
        Test-Path $missing | Should -BeFalse
    }

    It 'stops a running query when the pipeline is stopped (Ctrl+C)' {
        $runner = [powershell]::Create()
        try {
            $null = $runner.AddScript({
                param($Manifest, $Database)
                Import-Module $Manifest
                # Counts forever unless interrupted.
                Invoke-DatabaseQuery $Database 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) AS n FROM c'
            }).AddArgument((Join-Path $root 'DbMigration.psd1')).AddArgument($db)
            $running = $runner.BeginInvoke()
            Start-Sleep -Milliseconds 1500
            $running.IsCompleted | Should -BeFalse -Because 'the query is still counting'
            # The count never ends by itself, so stopping completes only if the statement is interrupted (the wait
            # bounds a hang, it is not a speed goal).
            $stopping = $runner.BeginStop($null, $null)
            $stopping.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(60)) | Should -BeTrue -Because 'Stop interrupts the statement'
            $runner.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $runner.Dispose() }
        (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
    }

    It 'attaches the failing SQL to the error' {
        $err = { Invoke-DatabaseQuery $db 'SELECT * FROM nope' } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Query.StatementFailed,*'
        $err.Exception.Sql | Should -Be 'SELECT * FROM nope'
    }
}

Describe 'Test-MigrationPreflight on SQLite' {
    It 'emits one PreflightCheck per check, all passing on a healthy database' {
        $checks = Test-MigrationPreflight -Database $db -BackupPath (Join-Path $work 'backups')
        $checks | Should -HaveCount 8
        $checks | ForEach-Object { $_ | Should -BeOfType ([DbMigration.Preflight.PreflightCheck]) }
        $checks.Status | Should -Not -Contain 'Failed'
    }

    It 'names a copy a stopped restore left beside the database (PF008), as a warning' {
        $copy = Join-Path (Split-Path $db) ('.' + (Split-Path $db -Leaf) + '.dbm-restore-20261208T000000000Z-abcdef-0a1b2c3d')
        Copy-Item $db $copy
        try {
            $check = Test-MigrationPreflight -Database $db | Where-Object Code -EQ 'PF008'
            $check.Status | Should -Be 'Warning'
            $check.Message | Should -BeLike "*$copy*"
            $check.Details['Copies'][0].Bytes | Should -Be (Get-Item $db).Length
        }
        finally {
            Remove-Item $copy -Force
        }
        (Test-MigrationPreflight -Database $db | Where-Object Code -EQ 'PF008').Status | Should -Be 'Passed'
    }

    It '-Quiet returns a single boolean' {
        Test-MigrationPreflight $db -Quiet | Should -BeTrue
        Test-MigrationPreflight (Join-Path $work 'nothing.db') -Quiet | Should -BeFalse
    }

    It 'takes files from Get-ChildItem on the pipeline' {
        $checks = Get-ChildItem $work -Filter 'events.db' | Test-MigrationPreflight
        $checks | Should -HaveCount 8
        ($checks | Where-Object Code -EQ 'PF001').Message | Should -Match 'SQLite'
    }

    It 'takes paths as strings on the pipeline, one verdict per path' {
        $verdicts = $db, (Join-Path $work 'nothing.db'), $db | Test-MigrationPreflight -Quiet
        $verdicts | Should -Be @($true, $false, $true)
    }

    It 'turns a file that is not a database into a Failed check, not an exception' {
        $bogus = Join-Path $work 'bogus.db'
        Set-Content -Path $bogus -Value ('x' * 5000)
        $check = Test-MigrationPreflight $bogus | Where-Object Code -EQ 'PF001'
        $check.Status | Should -Be 'Failed'
        $check.ErrorId | Should -Be 'DbMigration.Target.NotADatabase'
    }
}

Describe 'Backups on SQLite' {
    BeforeAll {
        $script:repo = Join-Path $work 'backups'
        # Big enough that a compressed backup or a restore is still running when the tests stop it.
        $script:big = Join-Path $work 'big.db'
        & dotnet run --project (Join-Path $root 'bench/DbMigration.DataGen') -- --engine sqlite --target $big --rows 300000 | Out-Null
    }

    It 'Backup-Database | Test-DatabaseBackup passes and records the verdict' {
        $backup = Backup-Database -Database $db -Path $repo -Category PreMigration -Compress Fast
        $backup | Should -BeOfType ([DbMigration.Backups.BackupInfo])
        $result = $backup | Test-DatabaseBackup
        $result.Status | Should -Be 'Passed'
        (Get-DatabaseBackup -Path $repo -Latest).Verification.Status | Should -Be 'Passed'
    }

    It 'reports progress with bytes written and completes it' {
        $runner = [powershell]::Create()
        try {
            $null = $runner.AddScript({
                param($Manifest, $Database, $Repository)
                Import-Module $Manifest
                Backup-Database $Database -Path $Repository -Compress Fast
            }).AddArgument((Join-Path $root 'DbMigration.psd1')).AddArgument($db).AddArgument($repo)
            $null = $runner.Invoke()
            $runner.Streams.Error | Should -BeNullOrEmpty
            $records = @($runner.Streams.Progress | Where-Object Activity -EQ 'Backup-Database')
            $records.StatusDescription | Should -Contain 'Writing database.sqlite.zst'
            @($records | Where-Object StatusDescription -Like 'Writing*')[-1].CurrentOperation | Should -Match '\d.* of \d'
            $records[-1].RecordType | Should -Be 'Completed'
        }
        finally { $runner.Dispose() }
    }

    It 'tells with -Verbose what backup.log records, and each verification check' {
        $records = Backup-Database $db -Path $repo -Verbose 4>&1
        $backup = $records | Where-Object { $_ -is [DbMigration.Backups.BackupInfo] }
        $said = ($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message
        $said[-1] | Should -Match '^Completed in \d+ ms\.$'
        ($said | Where-Object { $_ -like 'Wrote database.sqlite*' }) | Should -Match $backup.Files[0].Sha256
        $checks = ($backup | Test-DatabaseBackup -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message
        $checks | Should -Contain 'Integrity: passed. PRAGMA integrity_check, PRAGMA foreign_key_check: integrity_check returned ok; no foreign key violations.'
        $checks | Where-Object { $_ -like 'Table events: passed*' } | Should -Not -BeNullOrEmpty
    }

    It 'leaves nothing in the catalog when stopped (Ctrl+C) mid-backup' {
        $stopRepo = Join-Path $work 'stopped-backups'
        $runner = [powershell]::Create()
        try {
            $null = $runner.AddScript({
                param($Manifest, $Database, $Repository)
                Import-Module $Manifest
                Backup-Database $Database -Path $Repository -Compress Small
            }).AddArgument((Join-Path $root 'DbMigration.psd1')).AddArgument($big).AddArgument($stopRepo)
            $running = $runner.BeginInvoke()
            # Stop once the compressed copy is being written, the longest step.
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while (-not ($runner.Streams.Progress | Where-Object StatusDescription -Like 'Writing*') -and -not $running.IsCompleted -and [DateTime]::UtcNow -lt $deadline) {
                Start-Sleep -Milliseconds 20
            }
            $running.IsCompleted | Should -BeFalse -Because 'the backup is still writing when stopped'
            $stopping = $runner.BeginStop($null, $null)
            $stopping.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(60)) | Should -BeTrue
            $runner.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $runner.Dispose() }
        @(Get-DatabaseBackup -Path $stopRepo).Count | Should -Be 0
        @(Get-ChildItem $stopRepo -Recurse -Force -ErrorAction SilentlyContinue | Where-Object Name -Like '.partial*').Count | Should -Be 0
    }

    It 'leaves the database as it was when stopped (Ctrl+C) mid-restore' {
        $target = Join-Path $work 'stop-target.db'
        Copy-Item $big $target
        $backup = Backup-Database $big -Path (Join-Path $work 'restore-stop-backups') -Compress Small
        Invoke-DatabaseQuery $target 'DELETE FROM events WHERE id > 1000' -Confirm:$false | Out-Null
        $runner = [powershell]::Create()
        try {
            $null = $runner.AddScript({
                param($Manifest, $Database, $Backup)
                Import-Module $Manifest
                Restore-MigrationBackup -Database $Database -InputObject $Backup -Reverify -Force -Confirm:$false
            }).AddArgument((Join-Path $root 'DbMigration.psd1')).AddArgument($target).AddArgument($backup)
            $running = $runner.BeginInvoke()
            # Stop while the backup is being restored into the new file, before anything is swapped.
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while (-not ($runner.Streams.Progress | Where-Object StatusDescription -EQ 'Restoring into a new database') -and -not $running.IsCompleted -and [DateTime]::UtcNow -lt $deadline) {
                Start-Sleep -Milliseconds 10
            }
            $running.IsCompleted | Should -BeFalse -Because 'the restore is still running when stopped'
            $stopping = $runner.BeginStop($null, $null)
            $stopping.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(60)) | Should -BeTrue
            $runner.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $runner.Dispose() }
        (Invoke-DatabaseQuery $target 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
        # Nothing but the run lock files the restore held (they stay, as after a migration).
        Get-ChildItem $work -Force | Where-Object { $_.Name -like 'stop-target*' -and $_.Name -ne 'stop-target.db' -and $_.Name -notlike 'stop-target.db.dbmigration-*.lock' } | ForEach-Object Name | Should -BeNullOrEmpty
    }

    It 'encrypts with a SecureString passphrase and refuses a wrong one' {
        $pass = ConvertTo-SecureString 'nightly-secret' -AsPlainText -Force
        $backup = Backup-Database $db -Path $repo -Encrypt -Passphrase $pass
        ($backup | Test-DatabaseBackup -Passphrase $pass).Status | Should -Be 'Passed'
        $wrong = ConvertTo-SecureString 'nope' -AsPlainText -Force
        $result = $backup | Test-DatabaseBackup -Passphrase $wrong -ErrorAction SilentlyContinue -ErrorVariable err
        $result.Status | Should -Be 'Failed'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'DbMigration.Backup.WrongPassphrase,*'
    }

    It 'rolls back with Restore-MigrationBackup -Latest -Category PreMigration' {
        Invoke-DatabaseQuery $db 'DELETE FROM events WHERE id > 100' -Confirm:$false | Out-Null
        $restore = Restore-MigrationBackup -Database $db -Path $repo -Latest -Category PreMigration -Confirm:$false
        $restore.RowCountsMatch | Should -BeTrue
        $restore.SafetyBackupId | Should -Not -BeNullOrEmpty
        (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
    }

    It 'rolls back from the database''s own backups when a same-named database elsewhere shares the repository' {
        $shared = Join-Path $work 'shared-backups'
        $prod = Join-Path (New-Item -ItemType Directory (Join-Path $work 'prod')).FullName 'app.db'
        $staging = Join-Path (New-Item -ItemType Directory (Join-Path $work 'staging')).FullName 'app.db'
        Copy-Item $db $prod
        Copy-Item $db $staging
        Invoke-DatabaseQuery $staging 'DELETE FROM events WHERE id > 5' -Confirm:$false | Out-Null
        $own = Backup-Database $prod -Path $shared -Category PreMigration
        $other = Backup-Database $staging -Path $shared -Category PreMigration
        Invoke-DatabaseQuery $prod 'DELETE FROM events' -Confirm:$false | Out-Null
        $restore = Restore-MigrationBackup -Database $prod -Path $shared -Latest -Category PreMigration -SkipSafetyBackup -Confirm:$false -WarningVariable warned
        $restore.BackupId | Should -Be $own.Id
        $warned | Should -BeNullOrEmpty
        (Invoke-DatabaseQuery $prod 'SELECT COUNT(*) AS n FROM events').n | Should -Be 1000
        @(Get-DatabaseBackup $shared -Latest).Id | Should -Be @($own.Id, $other.Id)
    }

    It 'refuses an empty tag before taking a backup' {
        $tagged = Join-Path $work 'tag-backups'
        { Backup-Database $db -Path $tagged -Tag 'nightly', '' } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        Test-Path $tagged | Should -BeFalse
    }

    It 'backs up every piped database, reporting the one that fails without stopping the rest' {
        $piped = Join-Path $work 'piped-backups'
        $missing = Join-Path $work 'missing.db'
        $backups = $db, $missing, $db | Backup-Database -Path $piped -ErrorVariable failed -ErrorAction SilentlyContinue
        $backups | Should -HaveCount 2
        $failed | Should -HaveCount 1
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'DbMigration.Target.FileNotFound,*'
        $failed[0].TargetObject | Should -Be $missing
        { $missing, $db | Backup-Database -Path $piped -ErrorAction Stop } | Should -Throw -ErrorId 'DbMigration.Target.FileNotFound,*'
        @(Get-DatabaseBackup -Path $piped) | Should -HaveCount 2
    }

    It 'refuses a piped backup without -Database, and creates nothing' {
        # PowerShell would bind the BackupInfo's Database property (the name 'copy') to -Database.
        $copy = Join-Path $work 'copy.db'
        Copy-Item $db $copy
        $copyRepo = Join-Path $work 'copy-backups'
        Backup-Database $copy -Path $copyRepo | Out-Null
        Push-Location $work
        try {
            $before = @(Get-ChildItem $work).Name
            { Get-DatabaseBackup -Path $copyRepo -Latest | Restore-MigrationBackup -Force -SkipSafetyBackup -Confirm:$false } |
                Should -Throw -ErrorId 'DbMigration.Restore.TargetRequired,*'
            @(Get-ChildItem $work).Name | Should -Be $before
            (Get-DatabaseBackup -Path $copyRepo -Latest | Restore-MigrationBackup -Database $copy -SkipSafetyBackup -Confirm:$false).RowCountsMatch |
                Should -BeTrue
        }
        finally { Pop-Location }
    }

    It 'lists backups in a table with UTC times and readable sizes' {
        $table = Get-DatabaseBackup -Path $repo | Out-String -Width 250
        $table | Should -Match 'events\s+\d{8}T\d{9}Z-[0-9a-f]{6}\s+PreMigration\s+Sqlite\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+[\d.,]+ KiB\s+False\s+Passed'
    }

    It 'Invoke-BackupRetention -WhatIf removes nothing' {
        $before = @(Get-DatabaseBackup $repo).Count
        Invoke-BackupRetention $repo -KeepLast 1 -KeepDaily 0 -KeepWeekly 0 -KeepMonthly 0 -WhatIf | Out-Null
        @(Get-DatabaseBackup $repo).Count | Should -Be $before
    }
}

Describe 'Paths as PowerShell resolves them' {
    BeforeAll {
        Copy-Item $db (Join-Path $TestDrive 'app.db')
        $script:drive = New-PSDrive -Name dbmpaths -PSProvider FileSystem -Root $TestDrive
    }

    AfterAll {
        Remove-PSDrive -Name dbmpaths
    }

    It 'reads a database and writes a backup on a PowerShell drive' {
        Test-MigrationPreflight dbmpaths:/app.db -Quiet | Should -BeTrue
        $backup = Backup-Database TestDrive:/app.db -Path dbmpaths:/backups
        $backup.Path | Should -BeLike (Join-Path $TestDrive 'backups' '*')
        $backup.Source | Should -Be (Join-Path $TestDrive 'app.db')
        Test-Path (Join-Path (Get-Location).ProviderPath 'dbmpaths:') | Should -BeFalse
    }

    It 'expands ~ to the home folder' {
        $fileSystem = Get-PSProvider FileSystem
        $home_ = $fileSystem.Home
        $fileSystem.Home = $TestDrive
        try {
            Test-MigrationPreflight ~/app.db -Quiet | Should -BeTrue
            (Backup-Database ~/app.db -Path ~/tilde-backups).Path | Should -BeLike (Join-Path $TestDrive 'tilde-backups' '*')
        }
        finally { $fileSystem.Home = $home_ }
        Test-Path (Join-Path (Get-Location).ProviderPath '~') | Should -BeFalse
    }

    It 'refuses a path on another provider, or a drive that does not exist, with a stable ErrorId' {
        { Backup-Database TestDrive:/app.db -Path Env:/backups } | Should -Throw -ErrorId 'DbMigration.Target.Invalid,*'
        # The pre-flight reports bad input as a failed check, so one bad path among many piped in stops nothing.
        $checks = 'Env:/PATH', 'postgres:/shop', 'TestDrive:/app.db' | Test-MigrationPreflight | Where-Object Code -EQ 'PF001'
        $checks.Status | Should -Be @('Failed', 'Failed', 'Passed')
        $checks[0].ErrorId | Should -Be 'DbMigration.Target.Invalid'
        $checks[0].Message | Should -BeLike '*Environment provider*'
        $checks[1].Message | Should -BeLike '*postgres://user@host/db*'
    }
}

Describe 'Timezone migration on SQLite' {
    BeforeAll {
        $script:tzDb = Join-Path $work 'timezone.db'
        Copy-Item $db $tzDb
        $script:reports = Join-Path $work 'tz-reports'
        $script:readAll = { (Invoke-DatabaseQuery $tzDb 'SELECT id, created_at, updated_at FROM events ORDER BY id' | ForEach-Object { "$($_.id)|$($_.created_at)|$($_.updated_at)" }) -join "`n" }
        $script:original = & $readAll
    }

    It 'completes -SourceTimeZone with tzdb and Windows ids' {
        $line = "Invoke-TimezoneMigration $tzDb -SourceTimeZone America/New_Y"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches[0].CompletionText | Should -Be 'America/New_York'
        $line = "Invoke-TimezoneMigration $tzDb -SourceTimeZone Eastern_Sta"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain "'Eastern Standard Time'"
    }

    It 'refuses an unknown zone id and suggests close matches' {
        $err = { Invoke-TimezoneMigration $tzDb -SourceTimeZone 'America/New_Yrok' -SkipBackup -ReportPath $reports -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Timezone.UnknownZone,*'
        $err.Exception.Message | Should -Match 'America/New_York'
        & $readAll | Should -Be $original
    }

    It '-WhatIf returns the analysis of the discovered columns and changes nothing' {
        $analysis = Invoke-TimezoneMigration $tzDb -SourceTimeZone 'America/New_York' -SkipBackup -ReportPath $reports -WhatIf
        $analysis | Should -BeOfType ([DbMigration.Timezone.TimezoneMigrationResult])
        $analysis.AnalysisOnly | Should -BeTrue
        $analysis.Columns.Column | Should -Contain 'created_at'
        $analysis.Columns.Column | Should -Contain 'updated_at'
        & $readAll | Should -Be $original
    }

    It 'names every column it cannot convert in one error, whose -ExcludeColumn list lets -WhatIf through' {
        $blocked = Join-Path $work 'timezone-blocked.db'
        Copy-Item $db $blocked
        Invoke-DatabaseQuery $blocked "CREATE TABLE slots (at TEXT PRIMARY KEY); INSERT INTO slots VALUES ('2024-07-01 12:00:00'); CREATE TABLE readings (device TEXT, at TEXT, PRIMARY KEY (device, at)) WITHOUT ROWID; INSERT INTO readings VALUES ('a', '2024-07-01 12:00:00')" -Confirm:$false | Out-Null
        $err = { Invoke-TimezoneMigration $blocked -SourceTimeZone 'America/New_York' -SkipBackup -ReportPath $reports -WhatIf } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Timezone.ColumnNotConvertible,*'
        $lines = $err.Exception.Message -split "`r?`n"
        $lines[0] | Should -BeLike '2 of the columns found cannot be converted.*'
        $lines[-1] | Should -Be 'To leave them all out: -ExcludeColumn slots.at, readings.at'
        $exclude = $lines[-1].Substring('To leave them all out: -ExcludeColumn '.Length) -split ', '
        $analysis = Invoke-TimezoneMigration $blocked -SourceTimeZone 'America/New_York' -SkipBackup -ReportPath $reports -ExcludeColumn $exclude -WhatIf
        $analysis.Columns.Column | Should -Contain 'created_at'
    }

    It 'converts to UTC with a PreMigration backup, validates, and a second run converts nothing' {
        $backups = Join-Path $work 'tz-backups'
        $script:run = Invoke-TimezoneMigration $tzDb -SourceTimeZone 'America/New_York' -Ambiguous Earlier -Nonexistent ShiftForward -BackupPath $backups -ReportPath $reports -Confirm:$false
        $run | Should -BeOfType ([DbMigration.Timezone.TimezoneMigrationResult])
        $run.Validation.Passed | Should -BeTrue
        ($run.Columns | Where-Object Column -EQ 'created_at').Converted | Should -Be 1000
        (Get-DatabaseBackup -Path $backups -Latest).Id | Should -Be $run.BackupId
        (Get-DatabaseBackup -Path $backups -Latest).Category | Should -Be 'PreMigration'
        Test-Path (Join-Path $run.ReportPath 'report.json') | Should -BeTrue
        (Invoke-DatabaseQuery $tzDb 'SELECT created_at FROM events').created_at | ForEach-Object { $_ | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$' }

        $again = Invoke-TimezoneMigration $tzDb -SourceTimeZone 'America/New_York' -Ambiguous Earlier -Nonexistent ShiftForward -SkipBackup -ReportPath $reports -Confirm:$false
        ($again.Columns | Measure-Object -Property Converted -Sum).Sum | Should -Be 0
        ($again.Columns | Where-Object Column -EQ 'created_at').AlreadyUtc | Should -Be 1000
    }

    It 'Undo-TimezoneMigration gives back the exact originals, taking the run from the pipeline' {
        $undo = $run | Undo-TimezoneMigration $tzDb -Confirm:$false
        $undo | Should -BeOfType ([DbMigration.Timezone.TimezoneUndoResult])
        $undo.ValuesRestored | Should -BeGreaterThan 0
        & $readAll | Should -Be $original
    }

    It 'Remove-TimezoneMigrationRecord releases a finished run''s copy of the table; undo then names the backup' {
        $backups = Join-Path $work 'tz-backups-release'
        $kept = Invoke-TimezoneMigration $tzDb -SourceTimeZone 'America/New_York' -Ambiguous Earlier -Nonexistent ShiftForward -BackupPath $backups -ReportPath $reports -Confirm:$false
        $converted = & $readAll
        $recordSql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dbmigration_tz_rollback_%'"
        Remove-TimezoneMigrationRecord $tzDb -Id $kept.RunId -WhatIf
        @(Invoke-DatabaseQuery $tzDb $recordSql).Count | Should -Be 1

        $removal = $kept | Remove-TimezoneMigrationRecord $tzDb -Confirm:$false
        $removal | Should -BeOfType ([DbMigration.Timezone.TimezoneRecordRemoval])
        $removal.BackupId | Should -Be $kept.BackupId
        @($removal.TablesDropped).Count | Should -Be 1
        @(Invoke-DatabaseQuery $tzDb $recordSql).Count | Should -Be 0
        & $readAll | Should -Be $converted

        $err = { Undo-TimezoneMigration $tzDb -Id $kept.RunId -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Match '^DbMigration\.Timezone\.RecordRemoved'
        $err.Exception.Message | Should -Match $kept.BackupId
        & $readAll | Should -Be $converted
    }
}

Describe 'Migrations on SQLite' {
    BeforeAll {
        $script:appDb = Join-Path $work 'fossawork.db'
        # An empty file is an empty SQLite database (DbMigration never creates a missing one); no sqlite3 CLI needed.
        New-Item -ItemType File -Path $appDb | Out-Null
        $script:examples = Join-Path $root 'examples' 'migrations'
    }

    It '-WhatIf shows the SQL and writes nothing' {
        Invoke-DatabaseMigration $appDb $examples -SkipBackup -WhatIf
        (Get-MigrationStatus $appDb $examples).State | Sort-Object -Unique | Should -Be 'Pending'
    }

    It 'applies the example set and records it' {
        $runs = Invoke-DatabaseMigration $appDb $examples -BackupPath (Join-Path $work 'mig-backups') -Confirm:$false
        $runs.Version | Should -Be @('1', '2', '3', '4', '5', '6')
        (Get-MigrationStatus $appDb $examples).State | Sort-Object -Unique | Should -Be 'Applied'
        Test-MigrationDrift $appDb | Should -BeNullOrEmpty
        (Get-MigrationLock $appDb).IsHeld | Should -BeFalse
    }

    It 'shows applied times in the default table as UTC' {
        $table = Get-MigrationStatus $appDb $examples | Out-String -Width 250
        $table | Should -Match 'initial schema\s+Applied\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ'
        $table | Should -Not -Match '\$null|\$_'
    }

    It 'undoes the newest migration' {
        (Undo-DatabaseMigration $appDb $examples -Confirm:$false).Status | Should -Be 'rolled_back'
        (Get-MigrationStatus $appDb $examples | Where-Object Version -EQ '6').State | Should -Be 'Pending'
    }

    It 'scaffolds the next migration' {
        $folder = Join-Path $work 'new-migrations'
        (New-Migration $folder 'first change').Version | Should -Be '1'
        (New-Migration $folder 'second change').Path | Should -BeLike '*V002__second_change.sql'
    }

    It 'refuses to scaffold into a path that is a file, with a stable id' {
        $file = Join-Path $work 'not-a-folder.txt'
        Set-Content $file 'notes'
        $err = { New-Migration $file 'first change' -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Migration.FolderNotWritable,*'
        $err.CategoryInfo.Category | Should -Be 'WriteError'
        Get-Content $file | Should -Be 'notes'
    }

    It 'refuses a script with its own BEGIN and COMMIT before anything runs, and runs it as written with -- transaction: none' {
        $db = Join-Path $work 'own-transaction.db'
        New-Item -ItemType File -Path $db | Out-Null
        $folder = Join-Path $work 'own-transaction'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder 'V1__table.sql') "CREATE TABLE gadgets (id INTEGER PRIMARY KEY);"
        Set-Content (Join-Path $folder 'V2__fill.sql') "BEGIN;`nINSERT INTO gadgets (id) VALUES (1);`nCOMMIT;"
        $refusal = { Invoke-DatabaseMigration $db $folder -SkipBackup -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $refusal.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Migration.InvalidFile*'
        $refusal.Exception.Sql | Should -Be 'BEGIN'
        (Get-MigrationStatus $db $folder).State | Sort-Object -Unique | Should -Be 'Pending'

        Set-Content (Join-Path $folder 'V2__fill.sql') "-- transaction: none`nBEGIN;`nINSERT INTO gadgets (id) VALUES (1);`nCOMMIT;"
        (Invoke-DatabaseMigration $db $folder -SkipBackup -Confirm:$false).Version | Should -Be @('1', '2')
        (Invoke-DatabaseQuery $db -Query 'SELECT COUNT(*) AS n FROM gadgets').n | Should -Be 1
    }
}

Describe 'PostgreSQL' -Skip:(-not $env:DBMIGRATION_TEST_POSTGRES) {
    BeforeAll {
        $script:pg = New-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES 'dbm_pester_'
        # Every minute of 2024-03-10 in New York, 02:00-02:59 included: that hour does not exist there.
        Invoke-DatabaseQuery $pg @"
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamp NOT NULL, note text);
INSERT INTO events SELECT g, timestamp '2024-03-10 00:00' + g * interval '1 minute', 'row ' || g FROM generate_series(0, 1439) g;
"@ -Confirm:$false | Out-Null
        $script:pgOriginal = Get-Rows $pg 'SELECT id, created_at, note FROM events ORDER BY id'
        $script:pgRepo = Join-Path $work 'pg-backups'
    }

    AfterAll {
        Remove-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES $pg
    }

    It 'accepts -Credential and never shows the password' {
        Assert-WrongPasswordRefused $pg
    }

    It 'Backup-Database | Test-DatabaseBackup proves the backup, and -Latest rolls back a loss' {
        Assert-BackupRollsBackALoss $pg $pgRepo $pgOriginal
    }

    It 'keeps working beside another module that loaded an older Npgsql first' -Skip:(-not $env:DBMIGRATION_TEST_OTHER_NPGSQL) {
        # A fresh pwsh, so the other Npgsql is the first one in the default load context.
        $pwsh = (Get-Command pwsh -CommandType Application | Select-Object -First 1).Source
        $script = @'
param($OtherNpgsql, $Manifest, $Database)
$ErrorActionPreference = 'Stop'
Add-Type -Path $OtherNpgsql
Import-Module $Manifest
$rows = Invoke-DatabaseQuery $Database 'SELECT COUNT(*) AS n FROM events'
$loaded = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Npgsql' }
"rows=$($rows.n)"
$loaded | ForEach-Object { 'npgsql={0}@{1}' -f $_.GetName().Version.Major, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name }
'@
        $file = Join-Path $work 'other-npgsql.ps1'
        Set-Content $file $script
        $output = & $pwsh -NoProfile -NonInteractive -File $file $env:DBMIGRATION_TEST_OTHER_NPGSQL (Join-Path $root 'DbMigration.psd1') $pg
        $LASTEXITCODE | Should -Be 0
        $output | Should -Contain 'rows=1440'
        $other = [Reflection.AssemblyName]::GetAssemblyName($env:DBMIGRATION_TEST_OTHER_NPGSQL).Version.Major
        $output | Should -Contain "npgsql=$other@Default"
        $output | Should -Contain 'npgsql=10@DbMigration'
    }

    It 'leaves no idle session behind: a plain DROP DATABASE right after Backup-Database goes through' {
        $scratch = New-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES 'dbm_pester_drop_'
        Invoke-DatabaseQuery $scratch 'CREATE TABLE t (id int PRIMARY KEY)' -Confirm:$false | Out-Null
        Backup-Database $scratch -Path (Join-Path $work 'pg-drop') -DumpMethod BuiltIn | Should -Not -BeNullOrEmpty
        $name = ([uri]$scratch).AbsolutePath.Trim('/')
        { Invoke-DatabaseQuery $env:DBMIGRATION_TEST_POSTGRES "DROP DATABASE $name" -Confirm:$false -ErrorAction Stop } | Should -Not -Throw
    }

    It 'converts a timestamp column to timestamptz, reports the DST gap, and undoes it exactly' {
        Assert-TimezoneRoundTrip $pg (Join-Path $work 'pg-tz') "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS utc FROM events WHERE id = 0" $pgOriginal -AfterConversion {
            (Invoke-DatabaseQuery $pg "SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'created_at'").data_type | Should -Be 'timestamp with time zone'
        }
    }

    It 'refuses a built-in dump of large objects by count instead of leaving them out' {
        $db = New-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES 'dbm_pester_lob_'
        try {
            Invoke-DatabaseQuery $db "CREATE TABLE docs (id integer PRIMARY KEY, body oid); INSERT INTO docs VALUES (1, lo_from_bytea(0, 'hello'::bytea))" -Confirm:$false | Out-Null
            $err = { Backup-Database $db -Path (Join-Path $work 'pg-lob') -DumpMethod BuiltIn } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'DbMigration.Backup.ToolFailed*'
            $err.Exception.Message | Should -BeLike '*1 large object(s)*'
        }
        finally {
            Remove-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES $db
        }
    }
}

Describe 'MariaDB' -Skip:(-not $env:DBMIGRATION_TEST_MARIADB) {
    BeforeAll {
        $script:my = New-ServerDatabase $env:DBMIGRATION_TEST_MARIADB 'dbm_pester_'
        Invoke-DatabaseQuery $my @"
CREATE TABLE events (id BIGINT PRIMARY KEY, created_at DATETIME NOT NULL, note VARCHAR(40));
INSERT INTO events SELECT seq, TIMESTAMP '2024-03-10 00:00:00' + INTERVAL seq MINUTE, CONCAT('row ', seq) FROM seq_0_to_1439;
"@ -Confirm:$false | Out-Null
        $script:myOriginal = Get-Rows $my 'SELECT id, created_at, note FROM events ORDER BY id'
        $script:myRepo = Join-Path $work 'my-backups'
    }

    AfterAll {
        Remove-ServerDatabase $env:DBMIGRATION_TEST_MARIADB $my
    }

    It 'refuses a wrong password with a stable ErrorId and never shows it' {
        Assert-WrongPasswordRefused $my
    }

    It 'Backup-Database | Test-DatabaseBackup proves the backup, and -Latest rolls back a loss' {
        Assert-BackupRollsBackALoss $my $myRepo $myOriginal
    }

    It 'leaves no idle session behind on the database once Backup-Database returns' {
        Backup-Database $my -Path (Join-Path $work 'my-idle') -DumpMethod BuiltIn | Should -Not -BeNullOrEmpty
        $name = ([uri]$my).AbsolutePath.Trim('/')
        (Invoke-DatabaseQuery $env:DBMIGRATION_TEST_MARIADB "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = '$name' AND id <> CONNECTION_ID()").n | Should -Be 0
    }

    It 'converts DATETIME values to UTC, reports the DST gap, and undoes them exactly' {
        Assert-TimezoneRoundTrip $my (Join-Path $work 'my-tz') "SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i') AS utc FROM events WHERE id = 0" $myOriginal
    }

    It 'restores sequences, events and system-versioned history with the tables' {
        $db = New-ServerDatabase $env:DBMIGRATION_TEST_MARIADB 'dbm_pester_objects_'
        try {
            Invoke-DatabaseQuery $db @"
CREATE SEQUENCE ticket_no START WITH 500 NOCACHE;
CREATE TABLE ticket (id INT PRIMARY KEY DEFAULT NEXTVAL(ticket_no), price INT NOT NULL) WITH SYSTEM VERSIONING;
INSERT INTO ticket (price) VALUES (10);
UPDATE ticket SET price = 12;
CREATE EVENT ticket_purge ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE DO DELETE FROM ticket WHERE price < 0;
"@ -Confirm:$false | Out-Null
            $backup = Backup-Database $db -Path (Join-Path $work 'my-objects') -DumpMethod EngineTool -Verify
            $backup.Verification.Status | Should -Be 'Passed'
            Invoke-DatabaseQuery $db 'DROP EVENT ticket_purge; DROP TABLE ticket; DROP SEQUENCE ticket_no' -Confirm:$false | Out-Null

            $backup | Restore-MigrationBackup -Database $db -SkipSafetyBackup -Confirm:$false | Should -Not -BeNullOrEmpty
            (Invoke-DatabaseQuery $db 'SELECT COUNT(*) AS n FROM ticket FOR SYSTEM_TIME ALL').n | Should -Be 2
            (Invoke-DatabaseQuery $db "SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'ticket_purge'").n | Should -Be 1
            Invoke-DatabaseQuery $db 'INSERT INTO ticket (price) VALUES (20)' -Confirm:$false | Out-Null
            (Invoke-DatabaseQuery $db 'SELECT MAX(id) AS id FROM ticket').id | Should -Be 501
        }
        finally {
            Remove-ServerDatabase $env:DBMIGRATION_TEST_MARIADB $db
        }
    }
}
