-- FossaWork V2 v003: performance indexes.
-- requires: 1, 2
-- No down section: DROP INDEX is spelt differently on every engine. Undo it with
--   Undo-DatabaseMigration -Version 3 -UseBackup -BackupPath <repository>
-- which restores the backup taken before this migration.
CREATE INDEX ix_work_orders_user ON work_orders (user_id);
CREATE INDEX ix_work_orders_status ON work_orders (status, scheduled_date);
CREATE INDEX ix_security_events_user ON security_events (user_id, occurred_at);
