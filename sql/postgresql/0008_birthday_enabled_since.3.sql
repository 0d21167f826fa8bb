-- Revision 0008, step 3 of 3 (PostgreSQL): the triggers that keep programs.birthday_enabled_since
-- (see sql/common/0008_birthday_enabled_since.2.sql), created once step 2 has filled the column.
-- Run by loyalty_pipeline/migrations/versions/0008_birthday_enabled_since.py.

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
