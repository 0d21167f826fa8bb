-- Revision 0001, step 2 of 2 (both databases): the indexes of the foundation tables that step 1
-- (sql/postgresql/0001_foundation.1.sql or sql/sqlite/0001_foundation.1.sql) creates.
-- Run by loyalty_pipeline/migrations/versions/0001_foundation.py.

CREATE INDEX users_birth_month_day_idx ON users (birth_month, birth_day);
CREATE INDEX passes_master_user_idx ON passes_master (user_id);
CREATE INDEX birthday_logs_pass_date_idx ON birthday_logs (pass_id, reward_date);
CREATE INDEX birthday_logs_batch_idx ON birthday_logs (batch_id);
CREATE INDEX birthday_logs_program_date_idx ON birthday_logs (program_id, reward_date);
CREATE INDEX notifications_program_status_idx ON notifications (program_id, status);
