"""Launching the pipeline's jobs in process on a Dagster instance (loyalty_pipeline.instance), as
the CLI and the demo do: the runs are recorded there and show in the UI like scheduled ones."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from loyalty_pipeline import birthday_runs
from loyalty_pipeline.clock import now_utc
from loyalty_pipeline.config import Settings
from loyalty_pipeline.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.names import InvalidName, upload_key
from loyalty_pipeline.programs import ProgramNotFound, get_program
from loyalty_pipeline.run_results import birthday_outcomes, failure_reason
from loyalty_pipeline.upload_store import UploadStoreError, configured_store
from loyalty_pipeline.uploads import MAX_FILES_PER_RUN

# The CLI prints its own summary; the run's step logs stay in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _engine(settings: Settings):
    return make_engine(settings.database_url)


class RunError(Exception):
    """A one-line reason the run could not start or failed."""


def _require_program(engine, slug: str) -> None:
    with engine.connect() as conn:
        try:
            get_program(conn, slug)
        except ProgramNotFound as exc:
            raise RunError(str(exc)) from exc


def _launch(instance, job_name: str, *, partition_key: str | None, tags: dict, run_config: dict, resources=None):
    """One run of the definitions' job `job_name` in this process, recorded on `instance`; a failed
    run is returned, not raised (its outcomes are in the database)."""
    from loyalty_pipeline.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        raise_on_error=False,
        run_config={**QUIET, **run_config},
        resources=resources,
    )


def ingest_file(instance, settings: Settings, file: Path, slug: str):
    """Put `file` into the upload store (LOYALTY_UPLOADS_URL's bucket, or the folder) as an upload
    of `slug` and run its ingestion; returns (key, run result)."""
    if not file.is_file():
        raise RunError(f"{file}: no such file")
    try:
        key = upload_key(slug, file.name)
    except InvalidName as exc:
        raise RunError(str(exc)) from exc
    _require_program(_engine(settings), slug)
    try:
        configured_store(settings).put(file, key)  # the folder or the bucket the sensor watches
    except UploadStoreError as exc:
        raise RunError(str(exc)) from None
    return key, ingest_keys(instance, settings, [key], trigger="cli")[0]


def ingest_keys(instance, settings: Settings, keys: list[str], *, trigger: str = "cli", resources=None) -> list:
    """Ingest these uploads again (already in the store), in runs of at most MAX_FILES_PER_RUN files;
    the run results. Each file's outcome is its `uploads` row."""
    from assets.ingestion import batch_config
    from assets.partitions import arrival_day

    day = arrival_day(now_utc(settings.frozen_now))
    results = []
    for start in range(0, len(keys), MAX_FILES_PER_RUN):
        batch = keys[start : start + MAX_FILES_PER_RUN]
        tags = {"loyalty/trigger": trigger, "loyalty/files": str(len(batch))}
        programs = {k.partition("/")[0] for k in batch}
        if len(programs) == 1:
            tags["program"] = programs.pop()
        results.append(
            _launch(
                instance,
                "ingest_upload_job",
                partition_key=day,
                tags=tags,
                run_config=batch_config(batch),
                resources=resources,
            )
        )
    return results


# --- birthday runs (the `rewards` and `backfill` commands) ------------------------------------------


def run_birthdays(
    instance, settings: Settings, start: date, end: date, program: str | None, resources: dict | None = None
) -> list[tuple[str, bool, str]]:
    """One run of the day partitions [start, end] for `program`, or for every enabled program whose
    send hour has passed on those days; (slug, ok, summary) per program, from birthday_runs.
    `resources` replaces the definitions' resources for the run (tests pin the clock and database)."""
    from assets.birthdays import batch_config

    if end < start:
        raise RunError(f"--end {end} is before --start {start}")
    engine = _engine(settings)
    if program:
        _require_program(engine, program)
    tags = {"loyalty/trigger": "cli"} | ({"program": program} if program else {})
    partition_key = None
    if start == end:
        partition_key = start.isoformat()
    else:
        tags |= {ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()}
    run_config = batch_config([program] if program else [], ignore_send_hour=True)
    result = _launch(
        instance, "birthday_job", partition_key=partition_key, tags=tags, run_config=run_config, resources=resources
    )
    with engine.connect() as conn:
        rows = birthday_runs.rows_for_run(conn, result.run_id)
    outcomes = birthday_outcomes(rows)
    if not result.success and not any(not ok for _, ok, _ in outcomes):
        outcomes.append((program or "birthday_job", False, failure_reason(result)))
    if not outcomes:
        outcomes.append(
            (
                program or "every program",
                True,
                "nothing to do: no day of the range has come yet in the program's time zone (or no program is enabled)",
            )
        )
    return outcomes
