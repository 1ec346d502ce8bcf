#Requires -Version 7.4
<#
.SYNOPSIS
    Deployment runbook: pre-flight, verified backup, migrate, validate, and roll back on failure.
.DESCRIPTION
    Replaces the FossaWork guide's "backup, run migration_runner.py, validate, restore on failure" steps.
    Exits 0 when the database is migrated and validated; on any failure it restores the verified pre-migration
    backup (the emergency rollback) and exits 1.
.EXAMPLE
    ./examples/deploy.ps1 -Database ./fossawork_v2.db -BackupPath ./migration_backups
.EXAMPLE
    $env:DBMIGRATION_PASSWORD = '...'; ./examples/deploy.ps1 -Database postgres://deploy@db1/fossawork -BackupPath /srv/backups -WhatIf
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $Database,
    [Parameter(Mandatory)] [string] $BackupPath,
    [string] $Migrations = (Join-Path $PSScriptRoot 'migrations')
)

$ErrorActionPreference = 'Stop'
# Tables go to the host as each step ends (Out-Host): a step that fails mid-table must not leave a half-written
# table for the next step's output to trip over.
Import-Module (Join-Path $PSScriptRoot '..' 'DbMigration.psd1') -Force

Write-Host '1/5 Pre-flight' -ForegroundColor Cyan
$checks = Test-MigrationPreflight -Database $Database -BackupPath $BackupPath
$checks | Format-Table Code, Name, Status, Message -AutoSize -Wrap | Out-Host
if ($checks.Status -contains 'Failed') { Write-Error 'Pre-flight failed; nothing was changed.' -ErrorAction Continue; exit 1 }

Write-Host '2/5 Pending migrations' -ForegroundColor Cyan
$pending = @(Get-MigrationStatus -Database $Database -Path $Migrations | Where-Object State -in 'Pending', 'OutOfOrder')
if ($pending.Count -eq 0) { Write-Host 'Nothing to deploy.'; exit 0 }
$pending | Format-Table Version, Description, State -AutoSize | Out-Host
if ($WhatIfPreference) { Invoke-DatabaseMigration -Database $Database -Path $Migrations -SkipBackup -WhatIf; exit 0 }

Write-Host '3/5 Verified backup' -ForegroundColor Cyan
$backup = Backup-Database -Database $Database -Path $BackupPath -Category PreMigration -Verify
if ($backup.Verification.Status -ne 'Passed') { Write-Error "Backup $($backup.Id) did not verify; nothing was changed." -ErrorAction Continue; exit 1 }

try {
    Write-Host '4/5 Migrate' -ForegroundColor Cyan
    Invoke-DatabaseMigration -Database $Database -Path $Migrations -SkipBackup -Confirm:$false | Format-Table Version, Description, Status, Duration -AutoSize | Out-Host

    Write-Host '5/5 Validate' -ForegroundColor Cyan
    $notApplied = @(Get-MigrationStatus -Database $Database -Path $Migrations | Where-Object State -notin 'Applied', 'Baseline')
    if ($notApplied.Count -gt 0) { throw "Not applied after migrating: $($notApplied.Version -join ', ')" }
    $drift = @(Test-MigrationDrift -Database $Database)
    if ($drift.Count -gt 0) { throw "Schema drift after migrating: $($drift -join '; ')" }
    $integrity = Test-MigrationPreflight -Database $Database | Where-Object Code -EQ 'PF002'
    if ($integrity.Status -eq 'Failed') { throw "Integrity check failed: $($integrity.Message)" }
    Write-Host "Deployed $($pending.Count) migration(s); backup $($backup.Id) stays available." -ForegroundColor Green
    exit 0
}
catch {
    Write-Warning "Deployment failed: $($_.Exception.Message). Restoring backup $($backup.Id)."
    Restore-MigrationBackup -Database $Database -InputObject $backup -SkipSafetyBackup -Force -Confirm:$false | Format-List BackupId, RowCountsMatch, Duration | Out-Host
    Write-Error 'Rolled back to the pre-deployment backup.' -ErrorAction Continue
    exit 1
}
