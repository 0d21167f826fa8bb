"""The `uploads` table as the record of every file: what the sensor has seen and requested, and each
file's latest result (see migration 0009 for the columns). The sensor decides what is new from here,
so its cursor never lists files; runs record each file's outcome here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from loyalty_pipeline.db import db_time
from loyalty_pipeline.names import file_kind, split_upload_key

# The `status` of a file (migration 0009 holds the same list in its CHECK constraint).
STATUSES = ("queued", "running", "succeeded", "failed")
# Keys per statement when looking rows up by key (SQLite allows 32,766 bound values).
_KEYS_PER_STATEMENT = 5000
# A request still queued or running after this long lost its run (the daemon or the run's process
# died before the file's result was recorded): the sensor requests it again.
STALE_AFTER = timedelta(hours=1)

# How the sensor packs new files into runs. A run costs ~7 s before its first file (a process
# starting and loading the code) and a 50-row file ~0.05 s, so a burst is packed into few runs; a
# large file gets a run of its own so it never holds small ones back (bytes estimate rows: a text
# row is ~80 bytes; a workbook is compressed, about 8x).
MAX_FILES_PER_RUN = 200
MAX_BYTES_PER_RUN = 16 * 1024 * 1024
RUN_ALONE_BYTES = 8 * 1024 * 1024  # ~100,000 rows
_COMPRESSED_KINDS = {"xlsx", "xls", "ods"}


@dataclass(frozen=True)
class Known:
    change_marker: str | None
    sha256: str
    status: str
    arrived_at: datetime | str | None
    stale: bool  # queued or running for longer than STALE_AFTER


@dataclass(frozen=True)
class Request:
    """A file version to ingest, as the sensor (or the CLI) records it before its run starts."""

    key: str
    sha256: str
    change_marker: str
    size: int


def _chunks(items: Sequence, size: int = _KEYS_PER_STATEMENT) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def known(conn: Connection, keys: Sequence[str], now: datetime) -> dict[str, Known]:
    """The recorded state of these keys (absent: never seen)."""
    stale_before = db_time(conn, now - STALE_AFTER)
    query = text(
        "SELECT key, change_marker, sha256, status, arrived_at, "
        "status IN ('queued', 'running') AND COALESCE(started_at, arrived_at) < :stale_before AS stale "
        "FROM uploads WHERE key IN :keys"
    ).bindparams(bindparam("keys", expanding=True))
    found = {}
    for chunk in _chunks(list(keys)):
        for key, marker, sha, status, arrived, stale in conn.execute(
            query, {"keys": list(chunk), "stale_before": stale_before}
        ):
            found[key] = Known(marker, sha, status, arrived, bool(stale))
    return found


def program_ids(conn: Connection, slugs: Iterable[str]) -> dict[str, str]:
    query = text("SELECT slug, id FROM programs WHERE slug IN :slugs").bindparams(bindparam("slugs", expanding=True))
    ids = {}
    for chunk in _chunks(sorted(set(slugs))):
        ids.update({slug: str(pid) for slug, pid in conn.execute(query, {"slugs": list(chunk)})})
    return ids


def record_marker(conn: Connection, changes: Sequence[tuple[str, str]]) -> None:
    """Files touched without a change of content (same sha256): remember the new marker only."""
    if changes:
        conn.execute(
            text("UPDATE uploads SET change_marker = :marker WHERE key = :key"),
            [{"key": key, "marker": marker} for key, marker in changes],
        )


def queue(conn: Connection, requests: Sequence[Request], programs: dict[str, str], now: datetime) -> None:
    """Record `requests` as queued. A version whose content is new arrives now; the same content
    requested again (a lost run) keeps its arrival."""
    if not requests:
        return
    ts = db_time(conn, now)
    conn.execute(
        text("""
            INSERT INTO uploads (key, program_id, file_name, sha256, change_marker, status, arrived_at, processed_at)
            VALUES (:key, :program_id, :file_name, :sha256, :marker, 'queued', :now, :now)
            ON CONFLICT (key) DO UPDATE SET
                arrived_at = CASE WHEN uploads.sha256 = EXCLUDED.sha256 THEN uploads.arrived_at ELSE :now END,
                sha256 = EXCLUDED.sha256, change_marker = EXCLUDED.change_marker,
                status = 'queued', error = NULL, started_at = NULL
        """),
        [
            {
                "key": r.key,
                "program_id": programs[split_upload_key(r.key)[0]],
                "file_name": split_upload_key(r.key)[1],
                "sha256": r.sha256,
                "marker": r.change_marker,
                "now": ts,
            }
            for r in requests
        ],
    )


def mark_running(conn: Connection, keys: Sequence[str], run_id: str, now: datetime) -> None:
    query = text(
        "UPDATE uploads SET status = 'running', run_id = :run_id, started_at = :now "
        "WHERE key IN :keys AND status <> 'running'"
    ).bindparams(bindparam("keys", expanding=True))
    for chunk in _chunks(list(keys)):
        conn.execute(query, {"keys": list(chunk), "run_id": run_id, "now": db_time(conn, now)})


def record_failure(
    conn: Connection,
    *,
    key: str,
    program_id: str,
    sha256: str | None,
    change_marker: str | None,
    error: str,
    run_id: str,
    now: datetime,
) -> None:
    """The file's latest attempt failed; what an earlier version wrote stays (ingested_sha256)."""
    ts = db_time(conn, now)
    conn.execute(
        text("""
            INSERT INTO uploads (key, program_id, file_name, sha256, change_marker, status, error, run_id,
                                 arrived_at, started_at, finished_at, processed_at)
            VALUES (:key, :program_id, :file_name, COALESCE(:sha256, ''), :marker, 'failed', :error, :run_id,
                    :now, :now, :now, :now)
            ON CONFLICT (key) DO UPDATE SET
                sha256 = COALESCE(:sha256, uploads.sha256),
                change_marker = COALESCE(:marker, uploads.change_marker),
                status = 'failed', error = EXCLUDED.error, run_id = EXCLUDED.run_id, finished_at = EXCLUDED.finished_at
        """),
        {
            "key": key,
            "program_id": program_id,
            "file_name": split_upload_key(key)[1],
            "sha256": sha256,
            "marker": change_marker,
            "error": error,
            "run_id": run_id,
            "now": ts,
        },
    )


def succeeded_in_run(conn: Connection, run_id: str) -> set[str]:
    """Files this run already finished (a retried step does not read them again)."""
    return set(
        conn.execute(
            text("SELECT key FROM uploads WHERE run_id = :run_id AND status = 'succeeded'"), {"run_id": run_id}
        ).scalars()
    )


def arrived_on(conn: Connection, days: Sequence[date], timezone: str) -> list[str]:
    """Every file whose current version arrived on these days (local days of `timezone`): what a
    partition of the ingestion assets covers when its run names no files."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(min(days), time(), zone)
    end = datetime.combine(max(days) + timedelta(days=1), time(), zone)
    return list(
        conn.execute(
            text("SELECT key FROM uploads WHERE arrived_at >= :start AND arrived_at < :end ORDER BY key"),
            {"start": db_time(conn, start), "end": db_time(conn, end)},
        ).scalars()
    )


def select(
    conn: Connection, *, keys: Sequence[str] = (), program: str | None = None, status: str | None = None, limit=None
) -> list[dict]:
    """Rows of `uploads` (newest arrival first) for the CLI: by key, program and/or status."""
    clauses, params = [], {}
    if keys:
        clauses.append("u.key IN :keys")
        params["keys"] = list(keys)
    if program:
        clauses.append("p.slug = :program")
        params["program"] = program
    if status:
        clauses.append("u.status = :status")
        params["status"] = status
    query = text(
        "SELECT u.key, p.slug AS program, u.status, u.rows_read, u.rows_accepted, u.rows_rejected, u.warnings, "
        "u.users_created, u.users_updated, u.passes_created, u.error, u.sha256, u.run_id, u.arrived_at, "
        "u.finished_at FROM uploads u JOIN programs p ON p.id = u.program_id"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY u.arrived_at DESC, u.key"
        + (" LIMIT :limit" if limit else "")
    )
    if keys:
        query = query.bindparams(bindparam("keys", expanding=True))
    if limit:
        params["limit"] = int(limit)
    return [dict(row) for row in conn.execute(query, params).mappings()]


def _weight(key: str, size: int) -> int:
    return size * 8 if file_kind(key) in _COMPRESSED_KINDS else size


def plan_batches(requests: Sequence[Request]) -> list[list[Request]]:
    """Requests packed into runs: a large file alone, the others in order (by key) up to the bounds."""
    batches: list[list[Request]] = []
    current: list[Request] = []
    weight = 0
    for request in sorted(requests, key=lambda r: r.key):
        size = _weight(request.key, request.size)
        if size >= RUN_ALONE_BYTES:
            batches.append([request])
            continue
        if current and (len(current) >= MAX_FILES_PER_RUN or weight + size > MAX_BYTES_PER_RUN):
            batches.append(current)
            current, weight = [], 0
        current.append(request)
        weight += size
    if current:
        batches.append(current)
    return batches


def batch_key(batch: Sequence[Request]) -> str:
    """The run key of a batch: the same versions give the same key, so a request is never doubled."""
    digest = hashlib.sha256("\n".join(f"{r.key}@{r.sha256}" for r in batch).encode()).hexdigest()[:24]
    return f"uploads:{digest}"


# A file modified this recently may still be being written: it is looked at again next tick (in a
# folder; a bucket lists only complete objects, store.lists_partial_files).
SETTLE_SECONDS = 5
# The sensor hashes at most this much per tick (a first look at an existing folder after migrating
# hashes every file once); what is left is looked at next tick.
HASH_BYTES_PER_TICK = 1 << 30
# New versions a tick requests at most (25 runs): a burst of 10,000 files made a 100 s tick, most of
# it the daemon creating 50 runs; the rest of a burst waits for the next tick, 15 s later.
MAX_REQUESTS_PER_TICK = 5000


@dataclass
class Discovery:
    requests: list[Request]  # new or changed versions, and lost requests, to ingest
    touched: list[tuple[str, str]]  # (key, marker): the same content with a new change marker
    revisit: set[str]  # program folders to look at again next tick, whatever their mtime
    waiting: dict[str, int]  # program folder -> files waiting for their program to exist
    programs: dict[str, str]  # slug -> program id of the requests


def discover(conn: Connection, store, files: Sequence, *, wall_now: float, now: datetime) -> Discovery:
    """Which of the files a scan listed need a run, decided from `uploads` (no memory of its own):
    a file is hashed only when its change marker differs from the recorded one."""
    found = Discovery([], [], set(), {}, {})
    settled = []
    for f in files:
        if store.lists_partial_files and wall_now - f.modified < SETTLE_SECONDS:
            found.revisit.add(f.key.partition("/")[0])
        else:
            settled.append(f)
    recorded = known(conn, [f.key for f in settled], now)
    programs = program_ids(conn, {f.key.partition("/")[0] for f in settled})
    hashed = 0
    for f in settled:
        slug = f.key.partition("/")[0]
        row = recorded.get(f.key)
        if slug not in programs:
            found.waiting[slug] = found.waiting.get(slug, 0) + 1
            found.revisit.add(slug)
            continue
        if row is not None and row.change_marker == f.change_marker:
            if row.stale:
                found.requests.append(Request(f.key, row.sha256, f.change_marker, f.size))
            continue
        if (hashed and hashed + f.size > HASH_BYTES_PER_TICK) or len(found.requests) >= MAX_REQUESTS_PER_TICK:
            found.revisit.add(slug)
            continue
        try:
            sha = store.sha256(f.key)
        except FileNotFoundError:
            continue  # deleted since the listing
        hashed += f.size
        if row is not None and row.sha256 == sha and not row.stale:
            found.touched.append((f.key, f.change_marker))
        else:
            found.requests.append(Request(f.key, sha, f.change_marker, f.size))
    found.programs = {
        slug: pid for slug, pid in programs.items() if any(r.key.startswith(slug + "/") for r in found.requests)
    }
    return found
