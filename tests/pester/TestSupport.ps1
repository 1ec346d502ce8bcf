# Shared by the Pester files, dot-sourced in their BeforeAll: a workspace with an events database, and the helpers
# of the server contexts. Server contexts read DBMIGRATION_TEST_POSTGRES and DBMIGRATION_TEST_MARIADB: the URI of a
# user who may create databases and logs in with a password (.ci/run-pester starts such servers).

# Imports the module and makes a temp folder holding events.db with -Rows generated rows; returns both paths.
function New-PesterWorkspace([string] $Root, [string] $Prefix, [int] $Rows) {
    Import-Module (Join-Path $Root 'DbMigration.psd1') -Force
    $work = Join-Path ([IO.Path]::GetTempPath()) ($Prefix + [guid]::NewGuid().ToString('N').Substring(0, 8))
    New-Item -ItemType Directory -Path $work | Out-Null
    $db = Join-Path $work 'events.db'
    & dotnet run --project (Join-Path $Root 'bench/DbMigration.DataGen') -- --engine sqlite --target $db --rows $Rows | Out-Null
    if ($LASTEXITCODE -ne 0) { throw 'could not generate the events database' }
    $work, $db
}

function Remove-PesterWorkspace([string] $Work) {
    Remove-Module DbMigration -ErrorAction SilentlyContinue
    Remove-Item -Recurse -Force $Work -ErrorAction SilentlyContinue
}

# A new database on the server, as a target URI with the server's credentials.
function New-ServerDatabase([string] $ServerUri, [string] $Prefix) {
    $server = [uri]$ServerUri
    $name = $Prefix + [guid]::NewGuid().ToString('N').Substring(0, 8)
    Invoke-DatabaseQuery $ServerUri "CREATE DATABASE $name" -Confirm:$false | Out-Null
    '{0}://{1}@{2}/{3}' -f $server.Scheme, $server.UserInfo, $server.Authority, $name
}

function Remove-ServerDatabase([string] $ServerUri, [string] $Database) {
    $name = ([uri]$Database).AbsolutePath.Trim('/')
    $force = if (([uri]$ServerUri).Scheme -like 'postgres*') { ' WITH (FORCE)' } else { '' }
    Invoke-DatabaseQuery $ServerUri "DROP DATABASE IF EXISTS $name$force" -Confirm:$false -ErrorAction SilentlyContinue | Out-Null
}

# Every row of a query as one string, for before/after comparisons.
function Get-Rows([string] $Database, [string] $Sql) {
    (Invoke-DatabaseQuery $Database $Sql | ForEach-Object { ($_.PSObject.Properties.Value | ForEach-Object { "$_" }) -join '|' }) -join "`n"
}

function Assert-WrongPasswordRefused([string] $Database) {
    $user = ([uri]$Database).UserInfo.Split(':')[0]
    $bad = [pscredential]::new($user, (ConvertTo-SecureString 'Definitely-Wrong-7' -AsPlainText -Force))
    $check = Test-MigrationPreflight $Database -Credential $bad | Where-Object Code -EQ 'PF001'
    $check.Status | Should -Be 'Failed'
    $check.ErrorId | Should -Be 'DbMigration.Connection.AuthenticationFailed'
    ($check | ConvertTo-Json -Depth 5) | Should -Not -Match 'Definitely-Wrong-7'
}

# Backup-Database | Test-DatabaseBackup, then a loss of rows undone by Restore-MigrationBackup -Latest.
function Assert-BackupRollsBackALoss([string] $Database, [string] $Repository, [string] $Original) {
    $backup = Backup-Database -Database $Database -Path $Repository -Category PreMigration -Compress Fast
    $backup | Should -BeOfType ([DbMigration.Backups.BackupInfo])
    ($backup | Test-DatabaseBackup).Status | Should -Be 'Passed'

    Invoke-DatabaseQuery $Database 'DELETE FROM events WHERE id >= 100' -Confirm:$false | Out-Null
    $restore = Restore-MigrationBackup -Database $Database -Path $Repository -Latest -Category PreMigration -Force -Confirm:$false
    $restore | Should -BeOfType ([DbMigration.Backups.RestoreResult])
    $restore.RowCountsMatch | Should -BeTrue
    Get-Rows $Database 'SELECT id, created_at, note FROM events ORDER BY id' | Should -Be $Original
}

# A New York run over every minute of 2024-03-10 (02:00-02:59 does not exist there), checked, then undone exactly.
# -AfterConversion holds engine-specific checks made before the undo.
function Assert-TimezoneRoundTrip([string] $Database, [string] $ReportPath, [string] $FirstUtcSql, [string] $Original, [scriptblock] $AfterConversion) {
    $run = Invoke-TimezoneMigration $Database -SourceTimeZone 'America/New_York' -Ambiguous Earlier -Nonexistent ShiftForward -SkipBackup -ReportPath $ReportPath -Confirm:$false
    $run.Validation.Passed | Should -BeTrue
    $column = $run.Columns | Where-Object Column -EQ 'created_at'
    $column.Converted | Should -Be 1440
    $column.Nonexistent | Should -Be 60
    (Invoke-DatabaseQuery $Database $FirstUtcSql).utc | Should -Be '2024-03-10 05:00'
    if ($AfterConversion) { & $AfterConversion }

    (Undo-TimezoneMigration $Database -Id $run.RunId -Confirm:$false).ValuesRestored | Should -BeGreaterThan 0
    Get-Rows $Database 'SELECT id, created_at, note FROM events ORDER BY id' | Should -Be $Original
}
