"""uploads: each file's status, change marker and run; the sensor's memory of files

Uploads are ingested in batches (one run, many files), so each file's result lives here instead of
in a Dagster partition per file, and the upload sensor learns which files it has already handled
from this table instead of a cursor listing every file ever seen.

- `status`: `queued` (the sensor or the CLI requested its ingestion), `running`, `succeeded`,
  `failed` (`error` says why; the rows of the last successful version stay in place).
- `sha256` is the version the row describes (the one queued, running, failed or succeeded);
  `ingested_sha256` is the version whose users, passes and issue rows are in the database.
- `change_marker`: how the store tells a file changed without reading it (`<size>:<mtime_ns>` in
  a folder, `<size>:<etag>` in a bucket).
- `arrived_at`: when this version was first seen; the day partitions of the ingestion assets are
  days of arrival. `run_id`, `started_at`, `finished_at`: the latest attempt.

Existing rows were ingested successfully (a failed file never had a row), so they are `succeeded`
with `ingested_sha256 = sha256`; their change marker is unknown, so the sensor hashes each file once
and, finding the same sha256, records the marker without ingesting it again.

Its SQL, in three steps: the text columns (sql/common/0009_upload_batches.1.sql), the time columns in
each database's type (sql/{postgresql,sqlite}/0009_upload_batches.2.sql), the existing rows filled in
and the indexes (sql/common/0009_upload_batches.3.sql).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0009"
down_revision = "0008"

upgrade, downgrade = sql_revision("0009_upload_batches")
