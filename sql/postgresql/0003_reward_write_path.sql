-- Revision 0003 (PostgreSQL): notifications is an outbox whose rows belong to their birthday_logs
-- row; pass_id, program_id and user_id are copies taken from that reward, so they are not checked
-- again as foreign keys (three index probes and row locks per message). The reward stays checked.
-- Run by loyalty_pipeline/migrations/versions/0003_reward_write_path.py.

ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_pass_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_program_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_user_id_fkey;
ALTER TABLE notifications ALTER COLUMN birthday_log_id SET NOT NULL;
