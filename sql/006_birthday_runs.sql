-- Issue 12: the birthday bot's partitions are days; the programs of a day are a batch inside the run.
-- Each (day, program) result is recorded here, in the same transaction as that program's rewards, so
-- a program's outcome is visible per day and the schedule, the catch-up sensor and the late alert
-- can read in one query what is done, what failed and what is missing.
-- rewarded and points are the day's totals over every attempt; the other columns describe the latest
-- attempt (run_id), and rewarded_by_run is what that attempt added.
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
CREATE INDEX IF NOT EXISTS birthday_runs_date_idx ON birthday_runs (run_date, status);
CREATE INDEX IF NOT EXISTS birthday_runs_run_idx ON birthday_runs (run_id);

-- When each program's birthday bot was (last) seen enabled: catch-up never reaches back before it,
-- so a program is not back-filled for the days before it was enabled (or while it was disabled).
CREATE TABLE IF NOT EXISTS birthday_enabled_since (
    program_id uuid PRIMARY KEY REFERENCES programs (id) ON DELETE CASCADE,
    since timestamptz NOT NULL
);

-- One late alert per (program, day): the freshness sensor records each alert it delivered.
CREATE TABLE IF NOT EXISTS birthday_late_alerts (
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    run_date date NOT NULL,
    alerted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_id, run_date)
);

-- Existing instances: the days that already have rewards count as succeeded, so catch-up knows each
-- program's last successful day (eligible is the rewarded count: the earlier runs did not record it).
INSERT INTO birthday_runs (program_id, run_date, status, eligible, rewarded, points, note, run_id, started_at, finished_at)
SELECT program_id, reward_date, 'succeeded', count(*), count(*), sum(points), 'migrated from birthday_logs', NULL,
       min(created_at), max(created_at)
FROM birthday_logs
GROUP BY program_id, reward_date
ON CONFLICT (program_id, run_date) DO NOTHING;

-- Programs enabled today are enabled since they were created, as far as the history knows.
INSERT INTO birthday_enabled_since (program_id, since)
SELECT id, created_at FROM programs WHERE birthday_bot_enabled
ON CONFLICT (program_id) DO NOTHING;
