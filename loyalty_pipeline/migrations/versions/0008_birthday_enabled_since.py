"""programs.birthday_enabled_since, kept by the database; birthday_alerts per (program, day, status)

`programs.birthday_enabled_since`: the moment the program's birthday bot was switched on, set by
the database whoever writes the row (the pipeline, the front end's plain SQL, staff): when a row is
inserted enabled, or `birthday_bot_enabled` turns true, it becomes the transaction's `now` unless
the statement set it itself (a writer with its own clock - a replay, a test - stamps it); when the
bot is switched off it is cleared. Catch-up covers the days from then on (within its limits), so a
program created or enabled while the daemon was down is not rewarded from the daemon's return only.
It replaces the table `birthday_enabled_since` (0007), whose value was the daemon's clock when it
first saw the program enabled.

Existing rows: an enabled program takes the daemon's sighting when there is one (the best record of
its last switch-on: exact while the daemon was running), else its `created_at` (it was created
enabled, or enabled before the daemon ever saw it; it cannot have been enabled earlier).

`birthday_alerts` replaces `birthday_late_alerts`: one row per (program, day, status) the alert
sensor dealt with - `FAILURE` (the day failed), `NOT_RUN` (late with no result), `EXPIRED` (lost
for good: recorded `skipped` by catch-up). `noticed_at` is when it was first seen, `alerted_at`
when its alert was delivered (NULL: waiting - a late day whose run is requested or in flight, or a
lost day's alert not delivered yet). Existing late alerts are carried over as delivered, `FAILURE`
when the day's result is `failed`, else `NOT_RUN`.

PostgreSQL: a BEFORE trigger. SQLite: triggers cannot change NEW, so AFTER triggers rewrite the row
(SQLite does not run triggers from a trigger's own statements). Both fire only when there is
something to set, so the pipeline's own writes of other columns do not run them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from loyalty_pipeline.migrations import execute, execute_for

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
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
$$
"""
_PG_TRIGGERS = [
    """
    CREATE TRIGGER programs_enabled_since_insert BEFORE INSERT ON programs FOR EACH ROW
    WHEN (NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL))
    EXECUTE FUNCTION loyalty_programs_enabled_since()
    """,
    """
    CREATE TRIGGER programs_enabled_since_update BEFORE UPDATE ON programs FOR EACH ROW
    WHEN (NEW.birthday_bot_enabled IS DISTINCT FROM OLD.birthday_bot_enabled
          OR NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL))
    EXECUTE FUNCTION loyalty_programs_enabled_since()
    """,
]

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER programs_enabled_since_insert AFTER INSERT ON programs
    WHEN NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL)
    BEGIN
        UPDATE programs SET birthday_enabled_since = CASE WHEN NEW.birthday_bot_enabled THEN {_SQLITE_NOW} END
        WHERE rowid = NEW.rowid;
    END
    """,
    f"""
    CREATE TRIGGER programs_enabled_since_update AFTER UPDATE ON programs
    WHEN NEW.birthday_bot_enabled IS NOT OLD.birthday_bot_enabled
         OR NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL)
    BEGIN
        UPDATE programs SET birthday_enabled_since = CASE
            WHEN NOT NEW.birthday_bot_enabled THEN NULL
            WHEN NOT OLD.birthday_bot_enabled
                 AND (NEW.birthday_enabled_since IS NULL OR NEW.birthday_enabled_since IS OLD.birthday_enabled_since)
                THEN {_SQLITE_NOW}
            ELSE COALESCE(NEW.birthday_enabled_since, OLD.birthday_enabled_since, {_SQLITE_NOW}) END
        WHERE rowid = NEW.rowid;
    END
    """,
]


def upgrade() -> None:
    execute(
        "ALTER TABLE programs ADD COLUMN birthday_enabled_since {timestamptz}",
        """UPDATE programs SET birthday_enabled_since = COALESCE(
               (SELECT e.since FROM birthday_enabled_since e WHERE e.program_id = programs.id), created_at)
           WHERE birthday_bot_enabled""",
        "DROP TABLE birthday_enabled_since",
        """CREATE TABLE birthday_alerts (
            program_id {uuid} NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
            run_date date NOT NULL,
            status text NOT NULL CHECK (status IN ('FAILURE', 'NOT_RUN', 'EXPIRED')),
            reason text,
            noticed_at {timestamptz} NOT NULL,
            alerted_at {timestamptz},
            PRIMARY KEY (program_id, run_date, status)
        )""",
        "CREATE INDEX birthday_alerts_date_idx ON birthday_alerts (run_date)",
        """INSERT INTO birthday_alerts (program_id, run_date, status, noticed_at, alerted_at)
           SELECT a.program_id, a.run_date,
                  CASE WHEN EXISTS (SELECT 1 FROM birthday_runs r WHERE r.program_id = a.program_id
                                    AND r.run_date = a.run_date AND r.status = 'failed')
                       THEN 'FAILURE' ELSE 'NOT_RUN' END,
                  a.alerted_at, a.alerted_at
           FROM birthday_late_alerts a""",
        "DROP TABLE birthday_late_alerts",
    )
    execute_for(postgresql=[_PG_FUNCTION, *_PG_TRIGGERS], sqlite=_SQLITE_TRIGGERS)


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
