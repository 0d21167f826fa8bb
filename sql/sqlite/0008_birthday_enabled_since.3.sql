-- Revision 0008, step 3 of 3 (SQLite): the triggers that keep programs.birthday_enabled_since
-- (see sql/common/0008_birthday_enabled_since.2.sql), created once step 2 has filled the column.
-- Run by loyalty_pipeline/migrations/versions/0008_birthday_enabled_since.py.

-- SQLite triggers cannot change NEW, so AFTER triggers rewrite the row (SQLite does not run
-- triggers from a trigger's own statements). Both fire only when there is something to set, so
-- the pipeline's own writes of other columns do not run them.
CREATE TRIGGER programs_enabled_since_insert AFTER INSERT ON programs
WHEN NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL)
BEGIN
    UPDATE programs SET birthday_enabled_since = CASE WHEN NEW.birthday_bot_enabled THEN strftime('%Y-%m-%d %H:%M:%f', 'now') END
    WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER programs_enabled_since_update AFTER UPDATE ON programs
WHEN NEW.birthday_bot_enabled IS NOT OLD.birthday_bot_enabled
     OR NEW.birthday_bot_enabled = (NEW.birthday_enabled_since IS NULL)
BEGIN
    UPDATE programs SET birthday_enabled_since = CASE
        WHEN NOT NEW.birthday_bot_enabled THEN NULL
        WHEN NOT OLD.birthday_bot_enabled
             AND (NEW.birthday_enabled_since IS NULL OR NEW.birthday_enabled_since IS OLD.birthday_enabled_since)
            THEN strftime('%Y-%m-%d %H:%M:%f', 'now')
        ELSE COALESCE(NEW.birthday_enabled_since, OLD.birthday_enabled_since, strftime('%Y-%m-%d %H:%M:%f', 'now')) END
    WHERE rowid = NEW.rowid;
END;
