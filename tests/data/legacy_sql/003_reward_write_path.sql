-- The birthday bot's write path at scale (issue 5's 365-day x 10-program backfill).
--
-- notifications is an outbox: each row belongs to its birthday_logs row (birthday_log_id, which
-- cascades from passes, users and programs), and pass_id, program_id and user_id are copies taken
-- from that reward in the same statement. Checking them again as foreign keys cost three index
-- probes and row locks per message (1.2 s of a 46k-message backfill run, most of it dirtying
-- users' pages for a KEY SHARE lock); the reward itself stays checked.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_pass_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_program_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_user_id_fkey;
ALTER TABLE notifications ALTER COLUMN birthday_log_id SET NOT NULL;
