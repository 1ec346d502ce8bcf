-- FossaWork V2 v004: API rate limiting.
-- requires: 1
-- migrate:up
CREATE TABLE rate_limits (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    endpoint VARCHAR(200) NOT NULL,
    window_start VARCHAR(32) NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (user_id) REFERENCES users (id)
);
-- migrate:down
DROP TABLE rate_limits;
