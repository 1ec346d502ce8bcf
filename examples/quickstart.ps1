#Requires -Version 7.4
<#
.SYNOPSIS
    DbMigration quickstart: make a small V_Track-style events.db, run the pre-flight, and look at the data.
.DESCRIPTION
    Mirrors the first steps of the V_Track timezone guide ("Run Pre-flight Checks", "Verify Database Access")
    with DbMigration cmdlets instead of migration_pre_flight_check.py and the sqlite3 CLI.
    Run `dotnet build` in the repository first. Exits 1 when a pre-flight check failed.
.EXAMPLE
    ./examples/quickstart.ps1
.EXAMPLE
    ./examples/quickstart.ps1 -WorkPath /tmp/vtrack -Rows 5000
#>
[CmdletBinding()]
param(
    # Where events.db and the backup folder go.
    [string] $WorkPath = (Join-Path ([IO.Path]::GetTempPath()) 'dbmigration-quickstart'),

    # How many events rows to generate (0.1% of them sit on DST edges).
    [ValidateRange(1, 10000000)]
    [int] $Rows = 1000
)

$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '..')
Import-Module (Join-Path $root 'DbMigration.psd1') -Force

New-Item -ItemType Directory -Force -Path $WorkPath | Out-Null
$database = Join-Path $WorkPath 'events.db'
$backups = Join-Path $WorkPath 'migration_backups'

if (-not (Test-Path $database)) {
    Write-Host "Creating $database with $Rows events rows..."
    & dotnet run --project (Join-Path $root 'bench/DbMigration.DataGen') -- --engine sqlite --target $database --rows $Rows
    if ($LASTEXITCODE -ne 0) { throw "The data generator failed with exit code $LASTEXITCODE." }
}

Write-Host "`nPre-flight checks" -ForegroundColor Cyan
$checks = Test-MigrationPreflight -Database $database -BackupPath $backups
$checks | Format-Table Code, Name, Status, Message -AutoSize -Wrap | Out-Host

Write-Host 'Integrity (the guide: sqlite3 events.db "PRAGMA integrity_check;")' -ForegroundColor Cyan
Invoke-DatabaseQuery -Database $database -Query 'PRAGMA integrity_check;' | Format-Table -AutoSize | Out-Host

Write-Host 'Sample data (the guide: SELECT created_at FROM events LIMIT 5;)' -ForegroundColor Cyan
Invoke-DatabaseQuery -Database $database -Query 'SELECT id, event_type, created_at, updated_at FROM events ORDER BY id LIMIT 5;' | Format-Table -AutoSize | Out-Host

$failed = @($checks | Where-Object Status -EQ 'Failed')
if ($failed.Count -gt 0) {
    Write-Error "Pre-flight failed: $($failed.Code -join ', ')" -ErrorAction Continue
    exit 1
}
Write-Host 'Pre-flight passed: the database is ready for a backup and migration.' -ForegroundColor Green
