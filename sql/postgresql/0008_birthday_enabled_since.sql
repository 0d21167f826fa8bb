-- Revision 0008 (PostgreSQL): programs.birthday_enabled_since, the moment the program's birthday bot
-- was switched on, kept by the database whoever writes the row: when a row is inserted enabled, or
-- birthday_bot_enabled turns true, it becomes the transaction's now unless the statement set it
-- itself (a writer with its own clock - a replay, a test - stamps it); switching the bot off clears
-- it. It replaces the table birthday_enabled_since (0007): an enabled program takes the daemon's
-- sighting when there is one, else its created_at.
-- birthday_alerts replaces birthday_late_alerts: one row per (program, day, status) the alert sensor
-- dealt with - FAILURE, NOT_RUN (late with no result), EXPIRED (lost for good); noticed_at is when it
-- was first seen, alerted_at when its alert was delivered (NULL: waiting). Existing late alerts are
-- carried over as delivered, FAILURE when the day's result is `failed`, else NOT_RUN.
-- Run by loyalty_pipeline/migrations/versions/0008_birthday_enabled_since.py.

ALTER TABLE programs ADD COLUMN birthday_enabled_since timestamptz;
UPDATE programs SET birthday_enabled_since = COALESCE(
    (SELECT e.since FROM birthday_enabled_since e WHERE e.program_id = programs.id), created_at)
WHERE birthday_bot_enabled;
DROP TABLE birthday_enabled_since;

CREATE TABLE birthday_alerts (
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    run_date date NOT NULL,
    status text NOT NULL CHECK (status IN ('FAILURE', 'NOT_RUN', 'EXPIRED')),
    reason text,
    noticed_at timestamptz NOT NULL,
    alerted_at timestamptz,
    PRIMARY KEY (program_id, run_date, status)
);
CREATE INDEX birthday_alerts_date_idx ON birthday_alerts (run_date);
INSERT INTO birthday_alerts (program_id, run_date, status, noticed_at, alerted_at)
SELECT a.program_id, a.run_date,
       CASE WHEN EXISTS (SELECT 1 FROM birthday_runs r WHERE r.program_id = a.program_id
                         AND r.run_date = a.run_date AND r.status = 'failed')
            THEN 'FAILURE' ELSE 'NOT_RUN' END,
       a.alerted_at, a.alerted_at
FROM birthday_late_alerts a;
DROP TABLE birthday_late_alerts;

-- Both triggers fire only when there is something to set, so the pipeline's own writes of other
-- columns do not run them.
CREATE OR REPLACE FUNCTION loyalty_programs_enabled_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.birthday_bot_enabled THEN
        NEW.birthday_enabled_since := NULL;
    ELSIF TG_OP = 'INSERT' OR NOT OLD.birthday_bot_enabled THEN
        -- switched on now, unless the statement stamped the moment itself
        IF NEW.birthday_enabled_since IS NULL
           OR (TG_OP = 'UPDATE' AND NEW.birthday_enabled_since IS NOT DISTINCT FROM OLD.birthday_enabled_since) THEN
            NEW.birthday_enabled_since := now();
        END IF;
    ELSIF NEW.birthday_enabled_since IS NULL THEN
        NEW.birthday_enabled_since := COALESCE(OLD.birthday_enabled_since, now());
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER programs_enabled_since_insert BEFORE INSERT ON programs FOR EACH ROW
WHEN (NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL))
EXECUTE FUNCTION loyalty_programs_enabled_since();

CREATE TRIGGER programs_enabled_since_update BEFORE UPDATE ON programs FOR EACH ROW
WHEN (NEW.birthday_bot_enabled IS DISTINCT FROM OLD.birthday_bot_enabled
      OR NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL))
EXECUTE FUNCTION loyalty_programs_enabled_since();
