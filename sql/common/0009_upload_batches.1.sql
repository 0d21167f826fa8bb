-- Revision 0009, step 1 of 3 (both databases): uploads records each file's status, change marker and
-- run, and is the upload sensor's memory of the files it has handled (instead of a cursor listing
-- every file ever seen).
-- status: queued (the sensor or the CLI requested its ingestion), running, succeeded, failed (error
-- says why; the rows of the last successful version stay in place). sha256 is the version the row
-- describes, ingested_sha256 the version whose users, passes and issue rows are in the database.
-- change_marker: how the store tells a file changed without reading it (<size>:<mtime_ns> in a
-- folder, <size>:<etag> in a bucket). arrived_at: when this version was first seen (the ingestion
-- assets' day partitions are days of arrival); run_id, started_at, finished_at: the latest attempt.
-- Existing rows were ingested successfully (a failed file never had a row): succeeded, with
-- ingested_sha256 = sha256; their change marker is unknown, so the sensor hashes each file once and,
-- finding the same sha256, records the marker without ingesting it again.
-- Step 1 adds the text columns; step 2 (sql/postgresql/ or sql/sqlite/0009_upload_batches.2.sql)
-- the time columns, in each database's type; step 3 (sql/common/0009_upload_batches.3.sql) fills
-- them and creates the indexes.
-- Run by loyalty_pipeline/migrations/versions/0009_upload_batches.py.

ALTER TABLE uploads ADD COLUMN status text NOT NULL DEFAULT 'succeeded' CHECK (status IN ('queued', 'running', 'succeeded', 'failed'));
ALTER TABLE uploads ADD COLUMN error text;
ALTER TABLE uploads ADD COLUMN ingested_sha256 text;
ALTER TABLE uploads ADD COLUMN change_marker text;
ALTER TABLE uploads ADD COLUMN run_id text;
