-- Revision 0009, step 2 of 3 (PostgreSQL): the time columns of uploads, in PostgreSQL's type, between the
-- columns of step 1 (sql/common/0009_upload_batches.1.sql, which describes the revision) and the
-- back-fill and indexes of step 3 (sql/common/0009_upload_batches.3.sql).
-- Run by loyalty_pipeline/migrations/versions/0009_upload_batches.py.

ALTER TABLE uploads ADD COLUMN arrived_at timestamptz;
ALTER TABLE uploads ADD COLUMN started_at timestamptz;
ALTER TABLE uploads ADD COLUMN finished_at timestamptz;
