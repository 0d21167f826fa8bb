-- Revision 0002 (both databases): per-program birthday bot settings. A NULL timezone means "the
-- deployment's LOYALTY_TIMEZONE", which a column default cannot read.
-- Run by loyalty_pipeline/migrations/versions/0002_birthday_bot.py.

ALTER TABLE programs ADD COLUMN timezone text;
ALTER TABLE programs ADD COLUMN birthday_min_notice_days integer NOT NULL DEFAULT 0 CHECK (birthday_min_notice_days >= 0);
ALTER TABLE programs ADD COLUMN birthday_max_delay_days integer NOT NULL DEFAULT 30 CHECK (birthday_max_delay_days >= 0);
ALTER TABLE programs ADD COLUMN birthday_send_hour integer NOT NULL DEFAULT 9 CHECK (birthday_send_hour BETWEEN 0 AND 23);
