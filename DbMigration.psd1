@{
    RootModule           = 'module/bin/DbMigration.PowerShell.dll'
    # Imported before the root module: it installs the private load context the cmdlet assembly needs to load.
    NestedModules        = @('module/bin/DbMigration.ModuleLoader.dll')
    ModuleVersion        = '0.1.0'
    GUID                 = '5d0b6c2e-8f4a-4c3e-9a57-2f1d6b7e4c10'
    Author               = 'DbMigration contributors'
    CompanyName          = 'DbMigration'
    Copyright            = '(c) DbMigration contributors'
    Description          = 'Pre-flight checks, queries, backups and migrations for SQLite, PostgreSQL and MySQL/MariaDB databases, without losing a row.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('module/DbMigration.Format.ps1xml')
    CmdletsToExport      = @(
        'Backup-Database'
        'Get-DatabaseBackup'
        'Get-MigrationLock'
        'Get-MigrationStatus'
        'Invoke-BackupRetention'
        'Invoke-DatabaseMigration'
        'Invoke-DatabaseQuery'
        'Invoke-TimezoneMigration'
        'New-Migration'
        'Remove-TimezoneMigrationRecord'
        'Repair-MigrationHistory'
        'Restore-MigrationBackup'
        'Set-MigrationBaseline'
        'Test-DatabaseBackup'
        'Test-MigrationDrift'
        'Test-MigrationPreflight'
        'Undo-DatabaseMigration'
        'Undo-TimezoneMigration'
        'Unlock-Migration'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('Database', 'Migration', 'Backup', 'SQLite', 'PostgreSQL', 'MySQL', 'MariaDB')
            ProjectUri = ''
        }
    }
}
