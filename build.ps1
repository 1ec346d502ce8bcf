#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests or cleans DbMigration.
.DESCRIPTION
    ./build.ps1            builds the solution; the importable module is laid out under module/bin.
    ./build.ps1 -Test      builds, runs the xUnit suites (real SQLite, PostgreSQL and MariaDB), then Pester.
    ./build.ps1 -Pester    builds and runs only the Pester tests (server contexts need DBMIGRATION_TEST_POSTGRES
                           and DBMIGRATION_TEST_MARIADB; .ci/run-pester starts such servers).
    ./build.ps1 -Clean     removes build output, module/bin and TestResults.
.EXAMPLE
    ./build.ps1 -Test -Configuration Release
#>
[CmdletBinding(DefaultParameterSetName = 'Build')]
param(
    # Run the xUnit suites and then the Pester tests.
    [Parameter(Mandatory, ParameterSetName = 'Test')]
    [switch] $Test,

    # With -Test: skip Pester even where it is installed.
    [Parameter(ParameterSetName = 'Test')]
    [switch] $SkipPester,

    # Build and run only the Pester tests.
    [Parameter(Mandatory, ParameterSetName = 'Pester')]
    [switch] $Pester,

    # Fail when any Pester test was skipped (CI: every engine context must run).
    [Parameter(ParameterSetName = 'Test')]
    [Parameter(ParameterSetName = 'Pester')]
    [switch] $FailOnSkipped,

    # Remove build output instead of building.
    [Parameter(Mandatory, ParameterSetName = 'Clean')]
    [switch] $Clean,

    [Parameter(ParameterSetName = 'Build')]
    [Parameter(ParameterSetName = 'Test')]
    [Parameter(ParameterSetName = 'Pester')]
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot
$solution = Join-Path $root 'DbMigration.sln'

function Invoke-Native {
    param([Parameter(Mandatory)][string] $FilePath, [string[]] $ArgumentList)
    Write-Host "> $FilePath $($ArgumentList -join ' ')" -ForegroundColor DarkGray
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE."
    }
}

function Invoke-PesterSuite {
    $module = Get-Module -ListAvailable Pester | Where-Object Version -GE ([version]'5.0') | Sort-Object Version -Descending | Select-Object -First 1
    if (-not $module) {
        throw 'Pester 5 is not installed. Install it (Install-Module Pester -MinimumVersion 5.0) or pass -SkipPester.'
    }
    Import-Module $module
    $config = New-PesterConfiguration
    $config.Run.Path = Join-Path $root 'tests/pester'
    $config.Run.Exit = $false
    $config.Run.PassThru = $true
    $config.Output.Verbosity = 'Detailed'
    $config.TestResult.Enabled = $true
    $config.TestResult.OutputPath = Join-Path $root 'TestResults/pester.xml'
    $result = Invoke-Pester -Configuration $config
    if ($result.FailedCount -gt 0 -or $result.PassedCount -eq 0 -or $result.FailedContainersCount -gt 0) {
        throw "Pester: $($result.FailedCount) failed, $($result.PassedCount) passed."
    }
    if ($FailOnSkipped -and $result.SkippedCount -gt 0) {
        throw "Pester: $($result.SkippedCount) test(s) skipped; set DBMIGRATION_TEST_POSTGRES and DBMIGRATION_TEST_MARIADB so every engine runs."
    }
}

switch ($PSCmdlet.ParameterSetName) {
    'Clean' {
        Invoke-Native dotnet @('clean', $solution, '--nologo', '-v', 'quiet')
        foreach ($path in @('module/bin', 'TestResults')) {
            $full = Join-Path $root $path
            if (Test-Path $full) { Remove-Item -Recurse -Force $full }
        }
        Get-ChildItem $root -Recurse -Directory -Include bin, obj |
            Where-Object FullName -NotLike (Join-Path $root 'module*') |
            Remove-Item -Recurse -Force
        return
    }
    'Build' {
        Invoke-Native dotnet @('build', $solution, '-c', $Configuration, '--nologo')
        Write-Host "Module ready: Import-Module $(Join-Path $root 'DbMigration.psd1')" -ForegroundColor Green
    }
    'Pester' {
        Invoke-Native dotnet @('build', $solution, '-c', $Configuration, '--nologo')
        Invoke-PesterSuite
    }
    'Test' {
        Invoke-Native dotnet @('build', $solution, '-c', $Configuration, '--nologo')
        Invoke-Native dotnet @('test', $solution, '-c', $Configuration, '--no-build', '--nologo')
        Invoke-Native bash @((Join-Path $root '.ci/check-engine-suites'), (Join-Path $root 'TestResults/DbMigration.Tests.trx'))

        if ($SkipPester) { return }
        Invoke-PesterSuite
    }
}
