-- FossaWork V2 v005: audit trail, and when each user last signed in.
-- requires: 1
-- migrate:up
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    table_name VARCHAR(64) NOT NULL,
    record_id INTEGER NOT NULL,
    action VARCHAR(10) NOT NULL,
    changed_by INTEGER,
    changed_at VARCHAR(32) NOT NULL,
    old_values VARCHAR(4000),
    new_values VARCHAR(4000)
);
ALTER TABLE users ADD COLUMN last_login_at VARCHAR(32);
-- migrate:down
ALTER TABLE users DROP COLUMN last_login_at;
DROP TABLE audit_log;
