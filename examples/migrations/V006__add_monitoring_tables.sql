-- FossaWork V2 v006: system monitoring.
-- migrate:up
CREATE TABLE system_metrics (
    id INTEGER PRIMARY KEY,
    metric VARCHAR(100) NOT NULL,
    value DECIMAL(18,4) NOT NULL,
    recorded_at VARCHAR(32) NOT NULL
);
-- migrate:down
DROP TABLE system_metrics;
