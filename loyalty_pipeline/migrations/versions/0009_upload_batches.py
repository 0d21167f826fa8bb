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

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from loyalty_pipeline.migrations import execute

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPLOAD_STATUSES = ("queued", "running", "succeeded", "failed")


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in UPLOAD_STATUSES)
    execute(
        f"ALTER TABLE uploads ADD COLUMN status text NOT NULL DEFAULT 'succeeded' CHECK (status IN ({statuses}))",
        "ALTER TABLE uploads ADD COLUMN error text",
        "ALTER TABLE uploads ADD COLUMN ingested_sha256 text",
        "ALTER TABLE uploads ADD COLUMN change_marker text",
        "ALTER TABLE uploads ADD COLUMN run_id text",
        "ALTER TABLE uploads ADD COLUMN arrived_at {timestamptz}",
        "ALTER TABLE uploads ADD COLUMN started_at {timestamptz}",
        "ALTER TABLE uploads ADD COLUMN finished_at {timestamptz}",
        "UPDATE uploads SET ingested_sha256 = sha256, arrived_at = processed_at, finished_at = processed_at",
        "CREATE INDEX uploads_arrived_idx ON uploads (arrived_at)",
        "CREATE INDEX uploads_run_idx ON uploads (run_id)",
        # The sensor looks for requests that never ran; there are few of them at any time.
        "CREATE INDEX uploads_pending_idx ON uploads (status) WHERE status IN ('queued', 'running')",
        "CREATE INDEX uploads_program_idx ON uploads (program_id, status)",
    )


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
