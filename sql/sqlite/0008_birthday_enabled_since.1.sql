-- Revision 0008, step 1 of 3 (SQLite): the column programs.birthday_enabled_since and the table
-- birthday_alerts. Step 2 (sql/common/0008_birthday_enabled_since.2.sql, which describes the
-- revision) fills them and drops the tables they replace; step 3
-- (sql/sqlite/0008_birthday_enabled_since.3.sql) creates the triggers that keep the column.
-- Run by loyalty_pipeline/migrations/versions/0008_birthday_enabled_since.py.

ALTER TABLE programs ADD COLUMN birthday_enabled_since timestamp;

CREATE TABLE birthday_alerts (
    program_id text NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    run_date date NOT NULL,
    status text NOT NULL CHECK (status IN ('FAILURE', 'NOT_RUN', 'EXPIRED')),
    reason text,
    noticed_at timestamp NOT NULL,
    alerted_at timestamp,
    PRIMARY KEY (program_id, run_date, status)
);
