-- Revision 0008, step 2 of 3 (both databases): programs.birthday_enabled_since, the moment the
-- program's birthday bot was switched on, kept by the database whoever writes the row: when a row is
-- inserted enabled, or birthday_bot_enabled turns true, it becomes the transaction's now unless the
-- statement set it itself (a writer with its own clock - a replay, a test - stamps it); switching
-- the bot off clears it. It replaces the table birthday_enabled_since (0007): an enabled program takes the daemon's
-- sighting when there is one, else its created_at.
-- birthday_alerts replaces birthday_late_alerts: one row per (program, day, status) the alert sensor
-- dealt with - FAILURE, NOT_RUN (late with no result), EXPIRED (lost for good); noticed_at is when it
-- was first seen, alerted_at when its alert was delivered (NULL: waiting). Existing late alerts are
-- carried over as delivered, FAILURE when the day's result is `failed`, else NOT_RUN.
-- Step 1 (sql/postgresql/ or sql/sqlite/0008_birthday_enabled_since.1.sql) adds the column and the
-- table; step 3 (0008_birthday_enabled_since.3.sql in the same folder) creates the triggers.
-- Run by loyalty_pipeline/migrations/versions/0008_birthday_enabled_since.py.

UPDATE programs SET birthday_enabled_since = COALESCE(
    (SELECT e.since FROM birthday_enabled_since e WHERE e.program_id = programs.id), created_at)
WHERE birthday_bot_enabled;
DROP TABLE birthday_enabled_since;

CREATE INDEX birthday_alerts_date_idx ON birthday_alerts (run_date);
INSERT INTO birthday_alerts (program_id, run_date, status, noticed_at, alerted_at)
SELECT a.program_id, a.run_date,
       CASE WHEN EXISTS (SELECT 1 FROM birthday_runs r WHERE r.program_id = a.program_id
                         AND r.run_date = a.run_date AND r.status = 'failed')
            THEN 'FAILURE' ELSE 'NOT_RUN' END,
       a.alerted_at, a.alerted_at
FROM birthday_late_alerts a;
DROP TABLE birthday_late_alerts;
