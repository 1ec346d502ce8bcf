-- FossaWork V2 v002: security event logging.
-- requires: 1
-- migrate:up
CREATE TABLE security_events (
    id INTEGER PRIMARY KEY,
    user_id INTEGER,
    event_type VARCHAR(50) NOT NULL,
    ip_address VARCHAR(45),
    occurred_at VARCHAR(32) NOT NULL,
    detail VARCHAR(1000),
    FOREIGN KEY (user_id) REFERENCES users (id)
);
-- migrate:down
DROP TABLE security_events;
