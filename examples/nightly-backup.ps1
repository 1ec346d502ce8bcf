#Requires -Version 7.4
<#
.SYNOPSIS
    Nightly backup runbook: back up, prove the backup restores, apply retention, log, and exit non-zero on failure.
.DESCRIPTION
    Meant for cron, a systemd timer or Windows Task Scheduler (see README.md, "Scheduled backups"). Everything it
    does is written to a dated log file under -LogPath; the exit code is 0 only when the backup was taken and
    verified and retention ran.
.EXAMPLE
    pwsh -NoProfile -File ./examples/nightly-backup.ps1 -Database /var/lib/vtrack/events.db -Path /srv/backups -SecondaryPath /mnt/offsite
.EXAMPLE
    $env:DBMIGRATION_PASSWORD = '...'; pwsh -File ./examples/nightly-backup.ps1 -Database postgres://backup@db1/shop -Path /srv/backups -Compress Fast
#>
[CmdletBinding()]
param(
    # The database to back up: a SQLite path or a postgres:// / mariadb:// URI (password from DBMIGRATION_PASSWORD).
    [Parameter(Mandatory)] [string] $Database,
    # The backup repository.
    [Parameter(Mandatory)] [string] $Path,
    # A second, independent repository (another disk or mount).
    [string] $SecondaryPath,
    [ValidateSet('None', 'Fast', 'Small')] [string] $Compress = 'Fast',
    # Where run logs go (default: <Path>/logs).
    [string] $LogPath,
    [int] $KeepDaily = 7,
    [int] $KeepWeekly = 4,
    [int] $KeepMonthly = 12,
    # Seconds to wait for the server, or for a SQLite file's writer to finish a write, before giving up.
    [ValidateRange(1, 600)] [int] $ConnectTimeout = 120
)

$ErrorActionPreference = 'Stop'
$LogPath = if ($LogPath) { $LogPath } else { Join-Path $Path 'logs' }
New-Item -ItemType Directory -Force -Path $LogPath | Out-Null
$log = Join-Path $LogPath ("nightly-{0:yyyyMMdd-HHmmss}Z.log" -f [DateTime]::UtcNow)

function Write-Log([string] $Message) {
    $line = '{0:yyyy-MM-ddTHH:mm:ss.fffZ} {1}' -f [DateTime]::UtcNow, $Message
    Add-Content -Path $log -Value $line
    Write-Host $line
}

try {
    Import-Module (Join-Path $PSScriptRoot '..' 'DbMigration.psd1') -Force
    Write-Log "Backing up $Database to $Path"
    $backupArgs = @{ Database = $Database; Path = $Path; Category = 'Daily'; Compress = $Compress; ConnectTimeout = $ConnectTimeout }
    if ($SecondaryPath) { $backupArgs.SecondaryPath = $SecondaryPath }
    $backup = Backup-Database @backupArgs
    Write-Log "Backup $($backup.Id): $($backup.Tables.Count) table(s), $($backup.TotalSize) bytes"

    # A failed verification is a result plus a non-terminating error: log both, then decide.
    $verification = $backup | Test-DatabaseBackup -ErrorAction Continue -ErrorVariable verifyErrors
    foreach ($verifyError in $verifyErrors) { Write-Log "Verification error: $($verifyError.FullyQualifiedErrorId): $($verifyError.Exception.Message)" }
    Write-Log "Verification: $($verification.Status) - $($verification.Message)"
    if ($verification.Status -ne 'Passed') { throw "Backup $($backup.Id) failed verification." }

    # Only the scheduled backups: PreMigration and Manual ones are kept for a rollback until pruned on purpose.
    $retentionArgs = @{ Path = $Path; Category = 'Daily', 'Weekly', 'Monthly'; KeepDaily = $KeepDaily; KeepWeekly = $KeepWeekly; KeepMonthly = $KeepMonthly; Confirm = $false }
    if ($SecondaryPath) { $retentionArgs.SecondaryPath = $SecondaryPath }
    $removed = @(Invoke-BackupRetention @retentionArgs)
    Write-Log "Retention removed $($removed.Count) backup(s): $($removed.BackupId -join ', ')"
    Write-Log 'Nightly backup succeeded.'
    exit 0
}
catch {
    Write-Log "FAILED: $($_.FullyQualifiedErrorId): $($_.Exception.Message)"
    exit 1
}
