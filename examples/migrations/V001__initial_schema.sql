-- FossaWork V2 v001: users, work orders and dispensers.
-- Portable SQL: runs unchanged on SQLite, PostgreSQL and MariaDB.
-- migrate:up
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    display_name VARCHAR(100) NOT NULL,
    created_at VARCHAR(32) NOT NULL
);
CREATE UNIQUE INDEX ux_users_email ON users (email);
CREATE TABLE work_orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    store_number VARCHAR(20) NOT NULL,
    status VARCHAR(20) NOT NULL,
    scheduled_date VARCHAR(32),
    FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE TABLE dispensers (
    id INTEGER PRIMARY KEY,
    work_order_id INTEGER NOT NULL,
    dispenser_number VARCHAR(20) NOT NULL,
    fuel_grades VARCHAR(200),
    FOREIGN KEY (work_order_id) REFERENCES work_orders (id)
);
-- migrate:down
DROP TABLE dispensers;
DROP TABLE work_orders;
DROP TABLE users;
