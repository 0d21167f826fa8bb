"""Sensors: new upload files become partitions and runs."""

import hashlib
import json
import time
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.ingestion import ingest_upload_job
from assets.partitions import uploads_partitions
from assets.resources import LoyaltySettings
from loyalty_pipeline.names import UPLOAD_SUFFIXES, InvalidName, upload_key

# A file still being written changes size or mtime; one left alone this long is complete.
SETTLE_SECONDS = 5


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_uploads(uploads_dir: Path, cursor: dict, now: float) -> tuple[list[tuple[str, str]], list[str], dict]:
    """Complete upload files that are new or changed since `cursor`: ([(key, sha256)], problems, new cursor).
    The cursor remembers size, mtime and sha256 per key so unchanged files are not hashed again."""
    found, problems, seen = [], [], {}
    if not uploads_dir.is_dir():
        return found, problems, cursor
    root = uploads_dir.resolve()
    for program_dir in sorted(p for p in uploads_dir.iterdir() if p.is_dir()):
        if program_dir.resolve().parent != root:
            problems.append(f"{program_dir.name}: links outside the uploads directory")
            continue
        for path in sorted(f for f in program_dir.iterdir() if f.suffix.lower() in UPLOAD_SUFFIXES):
            try:
                key = upload_key(program_dir.name, path.name)
            except InvalidName as exc:
                problems.append(str(exc))
                continue
            # A symlink could make the pipeline read (or hang on) any file the process can open.
            real = path.resolve()
            if real.parent != program_dir.resolve() or not real.is_file():
                problems.append(f"{key}: links outside the uploads directory or is not a regular file")
                continue
            stat = path.stat()
            if now - stat.st_mtime < SETTLE_SECONDS:
                if key in cursor:
                    seen[key] = cursor[key]
                continue  # still being written; look again next tick
            previous = cursor.get(key)
            if previous and previous[0] == stat.st_size and previous[1] == stat.st_mtime_ns:
                seen[key] = previous
                continue
            sha = _sha256(path)
            seen[key] = [stat.st_size, stat.st_mtime_ns, sha]
            if not previous or previous[2] != sha:
                found.append((key, sha))
    return found, problems, seen


@sensor(
    job=ingest_upload_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Watches LOYALTY_UPLOADS_DIR/<program_slug>/ for .csv, .tsv, .txt and .xlsx files (a legacy "
    ".xls gets a run that says to save it as .xlsx or CSV); each new or changed complete file becomes an "
    "`uploads` partition and an ingestion run.",
)
def upload_sensor(context: SensorEvaluationContext, settings: LoyaltySettings):
    cursor = json.loads(context.cursor) if context.cursor else {}
    found, problems, new_cursor = scan_uploads(settings.uploads_path, cursor, time.time())
    for problem in problems:
        context.log.warning(f"ignored upload: {problem}")
    context.update_cursor(json.dumps(new_cursor))
    if not found:
        return SkipReason(f"no new or changed uploads ({len(problems)} ignored)")
    existing = set(context.instance.get_dynamic_partitions("uploads"))
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=key, run_key=f"{key}@{sha}", tags={"program": key.split("/", 1)[0]})
            for key, sha in found
        ],
        dynamic_partitions_requests=[uploads_partitions.build_add_request(sorted({k for k, _ in found} - existing))],
    )
