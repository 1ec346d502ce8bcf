#Requires -Version 7.4
<#
.SYNOPSIS
    The restore-session workload in a real pwsh: Restore-MigrationBackup in one session after Import-Module, beside
    a baseline command started from that same session. Called by bench/run-restore-session.sh.
.DESCRIPTION
    One untimed warm-up pair (ours first: it verifies the backup in full and records it, so every timed restore is
    of a verified backup), then -Runs pairs taking turns to go first, each after -Settle. Prints "hand <s>" and
    "ours <s>" per timed pair, as the bench host's restore-session workload does.
#>
param(
    [Parameter(Mandatory)] [string] $Target,
    [Parameter(Mandatory)] [string] $BackupPath,
    [Parameter(Mandatory)] [int] $Runs,
    [Parameter(Mandatory)] [string] $Settle,
    # The baseline command line, split at spaces (its arguments hold none); one string, so pwsh does not take
    # pg_restore's -p or -d for its own parameters.
    [Parameter(Mandatory)] [string] $Baseline
)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'DbMigration.psd1')
$database = [DbMigration.Targets.DatabaseTarget]::Parse($Target)

function Invoke-Settled([scriptblock] $Work) {
    # Idle pooled connections would keep the database from being dropped by pg_restore --clean.
    [DbMigration.Providers.DatabaseProviders]::For($database).ReleasePooledConnections($database)
    & $Settle
    if ($LASTEXITCODE) { throw "settle failed ($LASTEXITCODE)" }
    $clock = [Diagnostics.Stopwatch]::StartNew()
    & $Work
    $clock.Elapsed.TotalSeconds
}

$ours = { Restore-MigrationBackup -Database $Target -BackupPath $BackupPath -SkipSafetyBackup -Confirm:$false | Out-Null }
$command, $arguments = $Baseline -split ' +'
$hand = {
    & $command @arguments 2>&1 | Out-Null
    if ($LASTEXITCODE) { throw "$command exited with $LASTEXITCODE" }
}

for ($run = 0; $run -le $Runs; $run++) {
    $handFirst = $run % 2 -eq 1
    if ($handFirst) { $h = Invoke-Settled $hand; $o = Invoke-Settled $ours } else { $o = Invoke-Settled $ours; $h = Invoke-Settled $hand }
    $prefix = if ($run -eq 0) { 'warm-up ' } else { '' }
    $lines = [string]::Format([cultureinfo]::InvariantCulture, "{0}hand {1:0.000}`n{0}ours {2:0.000}", $prefix, $h, $o)
    if ($run -eq 0) { [Console]::Error.WriteLine($lines) } else { $lines }
}
