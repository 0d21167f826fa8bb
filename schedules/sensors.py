"""The upload sensor: new or changed files in the store become batched ingestion runs.

What it has already handled is the `uploads` table (key, change marker, sha256, status), not its
cursor: the cursor only holds the store's scan position and the folders to look at again, a few
kilobytes whatever the number of files."""

import json
import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, sensor

from assets.ingestion import batch_config, ingest_upload_job
from assets.partitions import OBSOLETE_UPLOADS_PARTITIONS, arrival_day
from assets.resources import Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import uploads
from schedules.obsolete_partitions import retire

# Dagster keeps every cursor in its tick history: far under its limits, whatever the store holds.
MAX_CURSOR_BYTES = 60_000
MAX_PROBLEMS_LOGGED = 50


def _cursor(scan_state: dict, revisit: set[str]) -> str:
    cursor = json.dumps({"store": scan_state, "revisit": sorted(revisit)})
    if len(cursor) > MAX_CURSOR_BYTES:  # too many folders to remember: list every folder next tick
        cursor = json.dumps({"store": {**scan_state, "since": None}, "revisit": []})
    return cursor


@sensor(
    job=ingest_upload_job,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.STOPPED,
    description="Watches LOYALTY_UPLOADS_DIR/<program_slug>/ (or the bucket of LOYALTY_UPLOADS_URL) for .csv, .tsv, "
    ".txt and .xlsx files; new or changed "
    "complete files (the uploads table says which it has seen) become queued rows of `uploads` and batched "
    "ingestion runs of today's arrival partition. A file waits while it is being written or while its program "
    "does not exist; links and unsafe names are refused with the reason.",
)
def upload_sensor(context: SensorEvaluationContext, settings: LoyaltySettings, database: LoyaltyDatabase, clock: Clock):
    state = json.loads(context.cursor) if context.cursor else {}
    store = settings.store()
    scan = store.scan(state.get("store"), set(state.get("revisit", [])))
    for problem in scan.problems[:MAX_PROBLEMS_LOGGED]:
        context.log.warning(f"ignored upload: {problem}")
    now = clock.now()
    with database.engine().begin() as conn:
        found = uploads.discover(conn, store, scan.files, wall_now=time.time(), now=now)
        batches = uploads.plan_batches(found.requests)
        uploads.queue(conn, found.requests, found.programs, now)
        uploads.record_marker(conn, found.touched)
    for slug, count in sorted(found.waiting.items())[:MAX_PROBLEMS_LOGGED]:
        context.log.warning(f"{slug}: {count} file(s) wait for program {slug!r} to exist in the programs table")
    context.update_cursor(_cursor(scan.state, found.revisit))
    day = arrival_day(now)
    requests = []
    for batch in batches:
        programs = sorted({r.key.partition("/")[0] for r in batch})
        tags = {"loyalty/trigger": "upload_sensor", "loyalty/files": str(len(batch))}
        if len(programs) == 1:
            tags["program"] = programs[0]
        requests.append(
            RunRequest(
                run_key=uploads.batch_key(batch),
                partition_key=day,
                run_config=batch_config([r.key for r in batch], skip_unchanged=True),
                tags=tags,
            )
        )
    summary = (
        f"{len(scan.files)} file(s) listed{' (every folder)' if scan.full else ''}, {len(found.requests)} new or "
        f"changed, {len(scan.problems)} refused, {sum(found.waiting.values())} waiting for their program"
    )
    context.log.info(summary)
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=retire(context, OBSOLETE_UPLOADS_PARTITIONS),
        skip_reason=None if requests else summary,
    )
