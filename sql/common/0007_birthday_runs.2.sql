-- Revision 0007, step 2 of 2 (both databases): birthday_runs, each program's birthday result per day
-- (the days are the partitions; the programs of a day are a batch inside the run), written in the
-- same transaction as that program's rewards. `rewarded` and `points` are the day's totals over
-- every attempt; the other columns describe the latest attempt (`run_id`), and `rewarded_by_run` is
-- what it added.
-- birthday_enabled_since: when each program's bot was (last) seen enabled (catch-up never reaches
-- back before it). birthday_late_alerts: one late alert per (program, day) the freshness sensor
-- delivered. (0008 replaces both.)
-- A database with history gets a `succeeded` row per program and day that already has rewards in
-- birthday_logs (`eligible` is the rewarded count: earlier runs did not record it), and the programs
-- enabled today count as enabled since they were created. Every statement is idempotent.
-- Step 1 (sql/postgresql/0007_birthday_runs.1.sql or sql/sqlite/0007_birthday_runs.1.sql) creates
-- the tables. Run by loyalty_pipeline/migrations/versions/0007_birthday_runs.py.

CREATE INDEX IF NOT EXISTS birthday_runs_date_idx ON birthday_runs (run_date, status);
CREATE INDEX IF NOT EXISTS birthday_runs_run_idx ON birthday_runs (run_id);

-- (WHERE true: SQLite reads `ON` after a bare FROM as a join constraint, not as ON CONFLICT.)
INSERT INTO birthday_runs (program_id, run_date, status, eligible, rewarded, points, note, started_at, finished_at)
SELECT program_id, reward_date, 'succeeded', count(*), count(*), sum(points),
       'migrated from birthday_logs', min(created_at), max(created_at)
FROM birthday_logs
WHERE true
GROUP BY program_id, reward_date
ON CONFLICT (program_id, run_date) DO NOTHING;

INSERT INTO birthday_enabled_since (program_id, since)
SELECT id, created_at FROM programs WHERE birthday_bot_enabled
ON CONFLICT (program_id) DO NOTHING;
