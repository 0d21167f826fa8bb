-- Revision 0009, step 3 of 3 (both databases): the existing rows of uploads filled in, and the
-- indexes on the columns steps 1 and 2 added (sql/common/0009_upload_batches.1.sql describes them).
-- Run by loyalty_pipeline/migrations/versions/0009_upload_batches.py.

UPDATE uploads SET ingested_sha256 = sha256, arrived_at = processed_at, finished_at = processed_at;

CREATE INDEX uploads_arrived_idx ON uploads (arrived_at);
CREATE INDEX uploads_run_idx ON uploads (run_id);
-- The sensor looks for requests that never ran; there are few of them at any time.
CREATE INDEX uploads_pending_idx ON uploads (status) WHERE status IN ('queued', 'running');
CREATE INDEX uploads_program_idx ON uploads (program_id, status);
