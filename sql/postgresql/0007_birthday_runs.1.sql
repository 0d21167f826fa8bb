-- Revision 0007, step 1 of 2 (PostgreSQL): the tables birthday_runs, birthday_enabled_since and
-- birthday_late_alerts, described in step 2 (sql/common/0007_birthday_runs.2.sql), which creates
-- birthday_runs' indexes and fills the tables from a database's history.
-- Run by loyalty_pipeline/migrations/versions/0007_birthday_runs.py.

CREATE TABLE IF NOT EXISTS birthday_runs (
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    run_date date NOT NULL,
    status text NOT NULL CHECK (status IN ('succeeded', 'skipped', 'failed')),
    eligible integer NOT NULL DEFAULT 0,
    rewarded integer NOT NULL DEFAULT 0,
    points integer NOT NULL DEFAULT 0,
    rewarded_by_run integer NOT NULL DEFAULT 0,
    note text,
    error text,
    attempts integer NOT NULL DEFAULT 1,
    run_id text,
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (program_id, run_date)
);

CREATE TABLE IF NOT EXISTS birthday_enabled_since (
    program_id uuid PRIMARY KEY REFERENCES programs (id) ON DELETE CASCADE,
    since timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS birthday_late_alerts (
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    run_date date NOT NULL,
    alerted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, run_date)
);
