"""A batch of uploads, one file at a time: read, validate and load each in its own transaction, so one
bad file (unreadable, invalid program config, a crash in the middle) fails alone and the others of
its batch land. Each file's outcome is recorded in `uploads` and returned for the run's metadata."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from loyalty_pipeline import uploads
from loyalty_pipeline.csv_reader import CsvFileError, RawCsv, read_upload
from loyalty_pipeline.db import is_transient
from loyalty_pipeline.errors import one_line
from loyalty_pipeline.ingest import IngestResult, load_upload
from loyalty_pipeline.names import InvalidName, split_upload_key
from loyalty_pipeline.programs import InvalidProgramConfig, csv_column_mapping, get_programs
from loyalty_pipeline.reports import write_issue_report
from loyalty_pipeline.upload_store import UploadFileMissing, UploadStore, UploadStoreError
from loyalty_pipeline.validation import validate_upload

log = logging.getLogger(__name__)

_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


# Sample issue rows a file's outcome keeps for the run's metadata (the rest are in upload_issues).
SAMPLE_ISSUES = 20


@dataclass
class FileOutcome:
    """One file's result in a run: `succeeded`, `failed` (with `error`) or `unchanged` (the sensor
    requested a version another run had already ingested). Holds a summary, never the file's rows."""

    key: str
    status: str
    error: str | None = None
    sha256: str | None = None
    seconds: float = 0.0
    result: IngestResult | None = None
    layout: str = ""
    columns_fed: str = ""
    column_mapping: str = ""
    unknown_columns: list[str] = field(default_factory=list)
    nul_bytes_stripped: int = 0
    unique_emails: bool = True
    first_rejects: pl.DataFrame | None = None
    first_warnings: pl.DataFrame | None = None
    issues_report: Path | None = None

    @property
    def program(self) -> str:
        return self.key.partition("/")[0]

    @property
    def reject_rate(self) -> float:
        if self.result is None or not self.result.rows_read:
            return 0.0
        return self.result.rows_rejected / self.result.rows_read


def layout(raw: RawCsv) -> str:
    if raw.sheet is not None:
        return f"{raw.file_kind}, sheet {raw.sheet!r}"
    return f"{raw.file_kind}, {_DELIMITER_NAMES.get(raw.delimiter, raw.delimiter)}, {raw.encoding}"


def columns_fed(raw: RawCsv) -> str:
    """One line per field: which header fed it (email ← "E-mail 1 - Value"), most preferred first."""
    lines = [f"{name} ← " + ", ".join(f'"{header}"' for header in headers) for name, headers in raw.sources.items()]
    return "\n".join(lines) or "none"


def ingest_batch(
    engine: Engine,
    store: UploadStore,
    keys: Sequence[str],
    *,
    reports_dir: Path,
    default_timezone: str,
    now: Callable[[], datetime],
    run_id: str,
    skip_unchanged: bool = False,
) -> Iterator[FileOutcome]:
    """Each file's outcome, in order. Only a transient database error (lost connection, deadlock)
    escapes, for the step's retry policy, and an UploadStoreError (the store refused the run's
    credentials, its bucket is gone): no file is failed for what is not its fault, the rest of the
    batch stays `running` until the sensor requests it again (uploads.STALE_AFTER). The files
    finished before either are not read again."""
    slugs = {}
    for key in keys:
        try:
            slugs[key] = split_upload_key(key)[0]
        except InvalidName:
            pass
    with engine.begin() as conn:
        programs = get_programs(conn, slugs.values())
        done = uploads.succeeded_in_run(conn, run_id)
        recorded = uploads.known(conn, list(slugs), now())
        uploads.mark_running(conn, [k for k in slugs if k not in done and slugs[k] in programs], run_id, now())
    for key in keys:
        if key in done:
            continue
        started = time.perf_counter()
        outcome = _ingest_one(
            engine,
            store,
            key,
            programs.get(slugs.get(key)),
            recorded.get(key),
            reports_dir,
            default_timezone,
            now,
            run_id,
            skip_unchanged,
        )
        outcome.seconds = round(time.perf_counter() - started, 3)
        yield outcome


def _ingest_one(engine, store, key, program, recorded, reports_dir, default_timezone, now, run_id, skip_unchanged):
    marker = sha = None
    try:
        slug, file_name = split_upload_key(key)
        stored = store.stat(key)  # refuses a key that resolves outside the store before anything else
        if program is None:
            return FileOutcome(key, "failed", error=f"{key}: program {slug!r} does not exist in the programs table")
        marker = stored.change_marker
        if skip_unchanged and recorded and recorded.status == "succeeded" and recorded.change_marker == marker:
            return FileOutcome(key, "unchanged", sha256=recorded.sha256)
        columns = csv_column_mapping(program)
        with store.local_copy(key) as local:  # a bucket's object is streamed to a temporary file
            raw = read_upload(local, file_label=key, columns=columns)
        sha = raw.sha256
        today = now().astimezone(program.zone(default_timezone)).date()
        validated = validate_upload(
            raw, date_order=program.date_order, phone_region=program.default_phone_region, today=today
        )
        report = write_issue_report(validated.issues, reports_dir / f"{key}.issues.csv")
        result = load_upload(
            engine,
            key=key,
            file_name=file_name,
            sha256=sha,
            program=program,
            validated=validated,
            now=now(),
            run_id=run_id,
            change_marker=marker,
        )
        issues = validated.issues.select("line", "column", "value", "severity", "reason")
        return FileOutcome(
            key,
            "succeeded",
            sha256=sha,
            result=result,
            layout=layout(raw),
            columns_fed=columns_fed(raw),
            column_mapping="programs.csv_columns" if columns else "detected (field table)",
            unknown_columns=list(raw.unknown_columns),
            nul_bytes_stripped=raw.nul_bytes_stripped,
            unique_emails=bool(validated.users["email"].is_unique().all()),
            first_rejects=issues.filter(pl.col("severity") == "error").head(SAMPLE_ISSUES),
            first_warnings=issues.filter(pl.col("severity") == "warning").head(SAMPLE_ISSUES),
            issues_report=report,
        )
    except UploadStoreError:
        raise  # the store's fault, not the file's: the run fails with it (see ingest_batch)
    except (InvalidName, CsvFileError, UploadFileMissing) as exc:
        error = str(exc)
    except InvalidProgramConfig as exc:
        error = f"{key}: {exc}"
    except DBAPIError as exc:
        if is_transient(exc):
            raise
        error = f"{key}: {one_line(exc.orig)}"
    except Exception as exc:  # a crash in the middle of one file must not take the batch down
        log.exception("%s: unexpected error", key)
        error = f"{key}: {one_line(exc)}"
    if program is None:
        return FileOutcome(key, "failed", error=error, sha256=sha)
    if sha is None and marker is not None:  # the reader failed before hashing: the row names this version
        try:
            sha = store.sha256(key)
        except FileNotFoundError:
            pass
    with engine.begin() as conn:
        uploads.record_failure(
            conn,
            key=key,
            program_id=program.id,
            sha256=sha,
            change_marker=marker,
            error=error,
            run_id=run_id,
            now=now(),
        )
    return FileOutcome(key, "failed", error=error, sha256=sha)
