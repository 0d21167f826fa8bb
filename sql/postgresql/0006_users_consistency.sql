-- Revision 0006 (PostgreSQL): users stays consistent whoever writes it (the pipeline, the Supabase
-- front end, staff with SQL): email stored trimmed and lower-cased (and checked unique in that
-- form); birth_month/birth_day derived from a birth_date written alone; a stored year dropped when
-- month/day alone move to a day it disagrees with; birth_date_set_at and updated_at moved to now
-- unless the statement set them (or declared `loyalty.own_timestamps` for its transaction); an
-- inconsistent birthday refused. One BEFORE trigger function (it runs before ON CONFLICT's arbiter
-- check, so the normalised email is the one checked) plus CHECK constraints. Each trigger's WHEN
-- is false for the pipeline's own rows, so its bulk merge does not run them.
-- Run by loyalty_pipeline/migrations/versions/0006_users_consistency.py, which first refuses (and
-- lists) two users that are one address: they need a person to merge them. By hand, such rows make
-- the first UPDATE fail on users_email_key.

-- Rows other writers left inconsistent, fixed in place: emails normalised; a month without a day
-- carries no usable date; a birth_date the month/day do not follow is the newer fact (the pipeline
-- always writes all three). When it changed is unknown; the row's last change is the latest it can
-- have been, the safe side of the minimum-notice rule.
UPDATE users SET email = lower(btrim(email, E' \t\n\r\f\x0B')) WHERE email <> lower(btrim(email, E' \t\n\r\f\x0B'));

UPDATE users SET birth_month = NULL, birth_day = NULL WHERE birth_date IS NULL AND (birth_month IS NULL) <> (birth_day IS NULL);

UPDATE users SET birth_month = extract(month FROM birth_date), birth_day = extract(day FROM birth_date),
                 birth_date_set_at = updated_at
WHERE birth_date IS NOT NULL AND (birth_month IS DISTINCT FROM extract(month FROM birth_date)
                                  OR birth_day IS DISTINCT FROM extract(day FROM birth_date));

CREATE OR REPLACE FUNCTION loyalty_users_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := lower(btrim(NEW.email, E' \t\n\r\f\x0B'));
    IF TG_OP = 'INSERT' THEN
        IF NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL THEN
            NEW.birth_month := extract(month FROM NEW.birth_date);
            NEW.birth_day := extract(day FROM NEW.birth_date);
        END IF;
        IF NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL THEN
            NEW.birth_date_set_at := now();
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.birth_date IS DISTINCT FROM OLD.birth_date
       AND NEW.birth_month IS NOT DISTINCT FROM OLD.birth_month
       AND NEW.birth_day IS NOT DISTINCT FROM OLD.birth_day THEN
        NEW.birth_month := extract(month FROM NEW.birth_date);
        NEW.birth_day := extract(day FROM NEW.birth_date);
    ELSIF NEW.birth_date IS NOT NULL AND NEW.birth_date IS NOT DISTINCT FROM OLD.birth_date
       AND (NEW.birth_month IS DISTINCT FROM OLD.birth_month OR NEW.birth_day IS DISTINCT FROM OLD.birth_day)
       AND (NEW.birth_month IS DISTINCT FROM extract(month FROM NEW.birth_date)
            OR NEW.birth_day IS DISTINCT FROM extract(day FROM NEW.birth_date)) THEN
        NEW.birth_date := NULL;
    END IF;

    IF NEW.birth_month IS NULL THEN
        NEW.birth_date_set_at := NULL;
    ELSIF (NEW.birth_month IS DISTINCT FROM OLD.birth_month OR NEW.birth_day IS DISTINCT FROM OLD.birth_day
           OR NEW.birth_date <> OLD.birth_date)
          AND NEW.birth_date_set_at IS NOT DISTINCT FROM OLD.birth_date_set_at
          AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on' THEN
        NEW.birth_date_set_at := now();
    END IF;

    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at AND NEW IS DISTINCT FROM OLD
       AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_before_insert BEFORE INSERT ON users FOR EACH ROW
WHEN (NEW.email IS DISTINCT FROM lower(btrim(NEW.email, E' \t\n\r\f\x0B'))
      OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL)
      OR (NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL))
EXECUTE FUNCTION loyalty_users_before_write();

CREATE TRIGGER users_before_update BEFORE UPDATE ON users FOR EACH ROW
WHEN (NEW.email IS DISTINCT FROM OLD.email
      OR NEW.birth_date IS DISTINCT FROM OLD.birth_date
      OR NEW.birth_month IS DISTINCT FROM OLD.birth_month
      OR NEW.birth_day IS DISTINCT FROM OLD.birth_day
      OR (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
          AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on'))
EXECUTE FUNCTION loyalty_users_before_write();

ALTER TABLE users
    ADD CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email, E' \t\n\r\f\x0B'))),
    ADD CONSTRAINT users_birthday_complete CHECK ((birth_month IS NULL) = (birth_day IS NULL)),
    ADD CONSTRAINT users_birth_date_agrees CHECK (birth_date IS NULL OR (birth_month = extract(month FROM birth_date) AND birth_day = extract(day FROM birth_date)));
