-- Revision 0006 (SQLite): users stays consistent whoever writes it, as sql/postgresql/0006_users_consistency.sql
-- describes. SQLite triggers cannot change NEW, and ALTER TABLE cannot add a CHECK, so AFTER
-- triggers rewrite the row and RAISE(ABORT) where PostgreSQL has CHECKs. A unique index on the
-- normalised email makes a second person for one address impossible on every path; a partial index
-- finds the rare row left with another spelling (an ON CONFLICT DO NOTHING that matched that way),
-- which the pipeline normalises before it merges. A writer with its own clock declares it stamps
-- updated_at and birth_date_set_at itself with a row in loyalty_own_timestamps, deleted before
-- its transaction commits (db.own_timestamps). Each trigger's WHEN is false for the pipeline's own rows.
-- Run by loyalty_pipeline/migrations/versions/0006_users_consistency.py, which first refuses (and
-- lists) two users that are one address and birth_date values that are not YYYY-MM-DD dates.

-- Rows other writers left inconsistent, fixed in place (see the PostgreSQL file).
UPDATE users SET email = lower(trim(email, ' ' || char(9, 10, 11, 12, 13))) WHERE email <> lower(trim(email, ' ' || char(9, 10, 11, 12, 13)));

UPDATE users SET birth_month = NULL, birth_day = NULL WHERE birth_date IS NULL AND (birth_month IS NULL) <> (birth_day IS NULL);

UPDATE users SET birth_month = CAST(strftime('%m', birth_date) AS INTEGER), birth_day = CAST(strftime('%d', birth_date) AS INTEGER), birth_date_set_at = updated_at
WHERE birth_date IS NOT NULL AND NOT COALESCE(birth_month = CAST(strftime('%m', birth_date) AS INTEGER) AND birth_day = CAST(strftime('%d', birth_date) AS INTEGER), 0);

CREATE TABLE loyalty_own_timestamps (writer text NOT NULL);
CREATE UNIQUE INDEX users_email_normalised_key ON users (lower(trim(email, ' ' || char(9, 10, 11, 12, 13))));
CREATE INDEX users_email_unnormalised_idx ON users (email) WHERE email <> lower(trim(email, ' ' || char(9, 10, 11, 12, 13)));

-- ON CONFLICT (email) finds the person an email typed differently belongs to: the existing row
-- takes the incoming spelling for the length of the statement (users_after_update stores the
-- normalised one again).
CREATE TRIGGER users_email_finds_person BEFORE INSERT ON users
WHEN NEW.email <> lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13)))
BEGIN
    UPDATE users SET email = NEW.email WHERE lower(trim(email, ' ' || char(9, 10, 11, 12, 13))) = lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13))) AND email <> NEW.email;
END;

CREATE TRIGGER users_after_insert AFTER INSERT ON users
WHEN NEW.email <> lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13)))
     OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL)
     OR (NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL)
BEGIN
    UPDATE users SET
        email = lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13))),
        birth_month = COALESCE(NEW.birth_month, CASE WHEN NEW.birth_day IS NULL THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) END),
        birth_day = COALESCE(NEW.birth_day, CASE WHEN NEW.birth_month IS NULL THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) END),
        birth_date_set_at = CASE
            WHEN NEW.birth_date_set_at IS NULL AND COALESCE(NEW.birth_month, NEW.birth_date) IS NOT NULL THEN strftime('%Y-%m-%d %H:%M:%f', 'now')
            ELSE NEW.birth_date_set_at END
    WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER users_check_insert AFTER INSERT ON users
WHEN (NEW.birth_month IS NULL) <> (NEW.birth_day IS NULL)
     OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NOT NULL
         AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0))
     OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND CAST(strftime('%m', NEW.birth_date) AS INTEGER) IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'users: birth_date must agree with birth_month/birth_day (and be a YYYY-MM-DD date), and a birthday needs both month and day');
END;

-- The names the next two triggers' comments use (SQLite has no way to name an expression, so each
-- is written out where it is used):
--   date alone:      the statement changed birth_date and not birth_month/birth_day
--   month-day alone: it changed birth_month/birth_day, to a day the stored birth_date disagrees with
--   final month/day/date: the row as the trigger leaves it (date alone: month and day from the date;
--                    month-day alone: no date)
--   moved:           the final birthday differs from the old one (month, day, or a year both know)
--   set_at kept:     the writer set birth_date_set_at itself (or declared its own timestamps)
--   changed:         a real change to any column but updated_at (email compared normalised)
--   spelling only:   only the email's spelling changed (users_email_finds_person's hand-over)
CREATE TRIGGER users_after_update AFTER UPDATE ON users
WHEN NOT -- spelling only
         (NEW.email IS NOT OLD.email AND NOT (NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name OR NEW.birth_date IS NOT OLD.birth_date OR NEW.birth_month IS NOT OLD.birth_month
          OR NEW.birth_day IS NOT OLD.birth_day OR NEW.birth_date_set_at IS NOT OLD.birth_date_set_at OR NEW.phone_number IS NOT OLD.phone_number
          OR lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13))) IS NOT lower(trim(OLD.email, ' ' || char(9, 10, 11, 12, 13)))))
     AND (NEW.email <> lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13)))
          -- date alone
          OR (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day)
          -- month-day alone
          OR (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0))
          -- moved and not set_at kept
          OR (((CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END) IS NOT OLD.birth_month
             OR (CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) ELSE NEW.birth_day END) IS NOT OLD.birth_day
             OR COALESCE((CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END) <> OLD.birth_date, 0))
              AND NOT (EXISTS (SELECT 1 FROM loyalty_own_timestamps) OR NEW.birth_date_set_at IS NOT OLD.birth_date_set_at OR (OLD.birth_month IS NULL AND NEW.birth_date_set_at IS NOT NULL)))
          OR (NEW.birth_month IS NULL AND NEW.birth_date_set_at IS NOT NULL)
          -- updated_at not stamped by the statement, the row changed, no own timestamps
          OR (NEW.updated_at IS OLD.updated_at
              AND (NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name OR NEW.birth_date IS NOT OLD.birth_date OR NEW.birth_month IS NOT OLD.birth_month
                   OR NEW.birth_day IS NOT OLD.birth_day OR NEW.birth_date_set_at IS NOT OLD.birth_date_set_at OR NEW.phone_number IS NOT OLD.phone_number
                   OR lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13))) IS NOT lower(trim(OLD.email, ' ' || char(9, 10, 11, 12, 13))))
              AND NOT EXISTS (SELECT 1 FROM loyalty_own_timestamps)))
BEGIN
    UPDATE users SET
        email = lower(trim(NEW.email, ' ' || char(9, 10, 11, 12, 13))),
        birth_date = CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END,
        birth_month = CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END,
        birth_day = CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) ELSE NEW.birth_day END,
        birth_date_set_at = CASE
            WHEN (CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END) IS NULL THEN NULL
            WHEN ((CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END) IS NOT OLD.birth_month
                  OR (CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) ELSE NEW.birth_day END) IS NOT OLD.birth_day
                  OR COALESCE((CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END) <> OLD.birth_date, 0))
                 AND NOT (EXISTS (SELECT 1 FROM loyalty_own_timestamps) OR NEW.birth_date_set_at IS NOT OLD.birth_date_set_at OR (OLD.birth_month IS NULL AND NEW.birth_date_set_at IS NOT NULL)) THEN strftime('%Y-%m-%d %H:%M:%f', 'now')
            ELSE NEW.birth_date_set_at END,
        updated_at = CASE WHEN NEW.updated_at IS OLD.updated_at AND NOT EXISTS (SELECT 1 FROM loyalty_own_timestamps) THEN strftime('%Y-%m-%d %H:%M:%f', 'now')
                          ELSE NEW.updated_at END
    WHERE rowid = NEW.rowid;
END;

-- What PostgreSQL's CHECKs refuse, on the final row.
CREATE TRIGGER users_check_update AFTER UPDATE ON users
WHEN ((CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END) IS NULL) <> ((CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) ELSE NEW.birth_day END) IS NULL)
     OR ((CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END) IS NOT NULL
         AND NOT COALESCE((CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%m', NEW.birth_date) AS INTEGER) ELSE NEW.birth_month END) = CAST(strftime('%m', (CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END)) AS INTEGER) AND (CASE WHEN (NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day) THEN CAST(strftime('%d', NEW.birth_date) AS INTEGER) ELSE NEW.birth_day END) = CAST(strftime('%d', (CASE WHEN (NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day) AND NOT COALESCE(NEW.birth_month = CAST(strftime('%m', NEW.birth_date) AS INTEGER) AND NEW.birth_day = CAST(strftime('%d', NEW.birth_date) AS INTEGER), 0)) THEN NULL ELSE NEW.birth_date END)) AS INTEGER), 0))
BEGIN
    SELECT RAISE(ABORT, 'users: birth_date must agree with birth_month/birth_day (and be a YYYY-MM-DD date), and a birthday needs both month and day');
END;
