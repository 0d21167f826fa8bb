-- Revision 0009, step 2 of 3 (SQLite): the time columns of uploads, in SQLite's type, between the
-- columns of step 1 (sql/common/0009_upload_batches.1.sql, which describes the revision) and the
-- back-fill and indexes of step 3 (sql/common/0009_upload_batches.3.sql).
-- Run by loyalty_pipeline/migrations/versions/0009_upload_batches.py.

ALTER TABLE uploads ADD COLUMN arrived_at timestamp;
ALTER TABLE uploads ADD COLUMN started_at timestamp;
ALTER TABLE uploads ADD COLUMN finished_at timestamp;
