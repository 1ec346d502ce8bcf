#Requires -Version 7.4
#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }
# The example runbooks, run as a scheduler runs them: a separate `pwsh -NoProfile -File`, judged by exit code, log
# and data. Server cases use DBMIGRATION_TEST_POSTGRES / DBMIGRATION_TEST_MARIADB, as in DbMigration.Tests.ps1.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSupport.ps1')
    $script:root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    $script:work, $script:db = New-PesterWorkspace $root 'dbm-examples-' 500
    # pwsh on PATH: as a .NET tool this process is dotnet itself, so its own path would not do.
    $script:pwsh = (Get-Command pwsh -CommandType Application | Select-Object -First 1).Source

    # Runs an example in its own pwsh and returns its exit code; its output goes to $work/<name>.out.
    function script:Invoke-Example([string] $Name, [string[]] $Arguments) {
        $out = Join-Path $work "$Name.out"
        & $pwsh -NoProfile -NonInteractive -File (Join-Path $root 'examples' "$Name.ps1") @Arguments *> $out
        $LASTEXITCODE
    }

    # A copy of the example migrations plus a V007 whose third statement fails after two have run.
    function script:New-BrokenMigrationSet {
        $folder = Join-Path $work ('broken-' + [guid]::NewGuid().ToString('N').Substring(0, 6))
        Copy-Item (Join-Path $root 'examples' 'migrations') $folder -Recurse
        Set-Content (Join-Path $folder 'V007__broken.sql') @"
CREATE TABLE deploy_probe (id INT PRIMARY KEY);
INSERT INTO deploy_probe VALUES (1);
ALTER TABLE no_such_table ADD COLUMN x INT;
"@
        $folder
    }
}

AfterAll {
    Remove-PesterWorkspace $work
}

Describe 'examples/quickstart.ps1' {
    It 'builds a database, passes the pre-flight and exits 0' {
        Invoke-Example 'quickstart' @('-WorkPath', (Join-Path $work 'quickstart'), '-Rows', '200') | Should -Be 0
        Get-Content (Join-Path $work 'quickstart.out') -Raw | Should -Match 'Pre-flight passed'
        (Invoke-DatabaseQuery (Join-Path $work 'quickstart' 'events.db') 'SELECT COUNT(*) AS n FROM events').n | Should -Be 200
    }
}

Describe 'examples/nightly-backup.ps1' {
    It 'backs up, verifies, applies retention, logs, and exits 0' {
        $repo = Join-Path $work 'nightly'
        Invoke-Example 'nightly-backup' @('-Database', $db, '-Path', $repo, '-SecondaryPath', (Join-Path $work 'offsite')) | Should -Be 0
        $backup = Get-DatabaseBackup -Path $repo -Latest
        $backup.Category | Should -Be 'Daily'
        $backup.Verification.Status | Should -Be 'Passed'
        (Get-DatabaseBackup -Path (Join-Path $work 'offsite') -Latest).Id | Should -Be $backup.Id -Because 'the secondary copy was written'
        $log = Get-ChildItem (Join-Path $repo 'logs') -Filter 'nightly-*.log' | Select-Object -Last 1
        Get-Content $log.FullName -Raw | Should -Match 'Nightly backup succeeded'
    }

    It 'prunes only the scheduled backups, keeping a PreMigration backup older than all of them' {
        $repo = Join-Path $work 'nightly-scoped'
        $before = Backup-Database -Database $db -Path $repo -Category PreMigration
        foreach ($night in 1..4) {
            Invoke-Example 'nightly-backup' @('-Database', $db, '-Path', $repo, '-KeepDaily', '0', '-KeepWeekly', '0', '-KeepMonthly', '0') | Should -Be 0
        }
        $left = @(Get-DatabaseBackup -Path $repo)
        @($left | Where-Object Category -EQ 'Daily').Count | Should -Be 3 -Because 'the default -KeepLast 3 applies to the Daily backups'
        ($left | Where-Object Category -EQ 'PreMigration').Id | Should -Be $before.Id
    }

    It 'exits 1 and logs the error id when the database is missing, leaving no backup' {
        $repo = Join-Path $work 'nightly-missing'
        Invoke-Example 'nightly-backup' @('-Database', (Join-Path $work 'gone.db'), '-Path', $repo) | Should -Be 1
        Get-Content (Get-ChildItem (Join-Path $repo 'logs') -Filter 'nightly-*.log').FullName -Raw | Should -Match 'FAILED: DbMigration\.Target\.FileNotFound'
        @(Get-DatabaseBackup -Path $repo).Count | Should -Be 0
    }

    It 'exits 1 with DbMigration.Backup.SourceBusy when a writer holds the SQLite file past -ConnectTimeout, leaving no backup' {
        $repo = Join-Path $work 'nightly-busy'
        $busy = Join-Path $work 'busy.db'
        Copy-Item $db $busy
        & sqlite3 $busy 'PRAGMA journal_mode = DELETE;' | Out-Null
        # Another program's long write: sqlite3 holds an exclusive lock for 15 s.
        $hold = Join-Path $work 'hold-lock.sh'
        Set-Content $hold "(echo 'BEGIN EXCLUSIVE; DELETE FROM events WHERE id = 1;'; sleep 15) | sqlite3 '$busy'"
        $holder = Start-Process bash -ArgumentList $hold -PassThru
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(10)
            while (-not (Test-Path "$busy-journal") -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            Test-Path "$busy-journal" | Should -BeTrue -Because 'the writer holds its transaction open'
            $started = [DateTime]::UtcNow
            Invoke-Example 'nightly-backup' @('-Database', $busy, '-Path', $repo, '-ConnectTimeout', '1') | Should -Be 1
            ([DateTime]::UtcNow - $started).TotalSeconds | Should -BeLessThan 14 -Because 'it gave up after -ConnectTimeout, not when the writer let go'
            Get-Content (Get-ChildItem (Join-Path $repo 'logs') -Filter 'nightly-*.log').FullName -Raw | Should -Match 'FAILED: DbMigration\.Backup\.SourceBusy'
            @(Get-DatabaseBackup -Path $repo).Count | Should -Be 0
        }
        finally {
            $holder.WaitForExit(20000) | Out-Null
        }
    }

    It 'backs up a PostgreSQL database with the password from DBMIGRATION_PASSWORD' -Skip:(-not $env:DBMIGRATION_TEST_POSTGRES) {
        $database = New-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES 'dbm_nightly_'
        try {
            Invoke-DatabaseQuery $database 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50)' -Confirm:$false | Out-Null
            # The runbook gets the URI without the password, and the password from the environment.
            $uri = [uri]$database
            $user, $password = $uri.UserInfo.Split(':', 2)
            $target = '{0}://{1}@{2}{3}' -f $uri.Scheme, $user, $uri.Authority, $uri.AbsolutePath
            $env:DBMIGRATION_PASSWORD = $password
            try { Invoke-Example 'nightly-backup' @('-Database', $target, '-Path', (Join-Path $work 'nightly-pg')) | Should -Be 0 }
            finally { Remove-Item Env:DBMIGRATION_PASSWORD }
            $backup = Get-DatabaseBackup -Path (Join-Path $work 'nightly-pg') -Latest
            $backup.Verification.Status | Should -Be 'Passed'
            ($backup.Tables | Measure-Object Rows -Sum).Sum | Should -Be 50
        }
        finally {
            Remove-ServerDatabase $env:DBMIGRATION_TEST_POSTGRES $database
        }
    }
}

Describe 'examples/deploy.ps1' {
    It 'migrates a SQLite database and exits 0' {
        $target = Join-Path $work 'deploy.db'
        Copy-Item $db $target
        Invoke-Example 'deploy' @('-Database', $target, '-BackupPath', (Join-Path $work 'deploy-backups')) | Should -Be 0
        (Get-MigrationStatus $target (Join-Path $root 'examples' 'migrations')).State | Sort-Object -Unique | Should -Be 'Applied'
    }

    It 'rolls a MariaDB database back to its backup when a migration fails part-way, and exits 1' -Skip:(-not $env:DBMIGRATION_TEST_MARIADB) {
        $target = New-ServerDatabase $env:DBMIGRATION_TEST_MARIADB 'dbm_deploy_'
        try {
            Invoke-DatabaseQuery $target 'CREATE TABLE keep_me (id INT PRIMARY KEY); INSERT INTO keep_me VALUES (1), (2)' -Confirm:$false | Out-Null
            Invoke-Example 'deploy' @('-Database', $target, '-BackupPath', (Join-Path $work 'deploy-my'), '-Migrations', (New-BrokenMigrationSet)) | Should -Be 1
            Get-Content (Join-Path $work 'deploy.out') -Raw | Should -Match 'PARTIALLY APPLIED'
            (Invoke-DatabaseQuery $target 'SHOW TABLES' | ForEach-Object { $_.PSObject.Properties.Value }) | Should -Be @('keep_me')
            (Invoke-DatabaseQuery $target 'SELECT COUNT(*) AS n FROM keep_me').n | Should -Be 2
        }
        finally {
            Remove-ServerDatabase $env:DBMIGRATION_TEST_MARIADB $target
        }
    }
}
