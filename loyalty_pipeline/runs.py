"""Launching the pipeline's jobs in process on a Dagster instance (loyalty_pipeline.instance), as
the CLI and the demo do: the runs are recorded there and show in the UI like scheduled ones."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

from loyalty_pipeline.config import Settings
from loyalty_pipeline.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.names import InvalidName, check_slug, upload_key, upload_path
from loyalty_pipeline.programs import ProgramNotFound, get_program, valid_program_slugs
from loyalty_pipeline.run_results import failure_reason, materialization_metadata

# The CLI prints its own summary; the run's step logs stay in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _engine(settings: Settings):
    return make_engine(settings.database_url)


class RunError(Exception):
    """A one-line reason the run could not start or failed."""


def ingest_file(instance, settings: Settings, file: Path, slug: str):
    """Copy `file` into the uploads folder and run its ingestion; returns (key, run result)."""
    from loyalty_pipeline.definitions import defs

    if not file.is_file():
        raise RunError(f"{file}: no such file")
    try:
        key = upload_key(slug, file.name)
    except InvalidName as exc:
        raise RunError(str(exc)) from exc
    with _engine(settings).connect() as conn:
        try:
            get_program(conn, slug)
        except ProgramNotFound as exc:
            raise RunError(str(exc)) from exc
    target = upload_path(settings.uploads_dir, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")  # the sensor only picks up *.csv
    shutil.copyfile(file, partial)
    os.replace(partial, target)
    instance.add_dynamic_partitions("uploads", [key])
    job = defs.resolve_job_def("ingest_upload_job")
    result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False,
                                    tags={"program": slug}, run_config=QUIET)
    return key, result


def sync_program_partitions(instance, settings: Settings) -> list[str]:
    with _engine(settings).connect() as conn:
        slugs = valid_program_slugs(conn)
    missing = sorted(set(slugs) - set(instance.get_dynamic_partitions("programs")))
    if missing:
        instance.add_dynamic_partitions("programs", missing)
    return slugs


def run_birthdays(instance, settings: Settings, start: date, end: date, program: str | None,
                  resources: dict | None = None) -> list[tuple[str, bool, str]]:
    """One run per program over [start, end] (the single-run backfill shape); (slug, ok, summary).
    `resources` replaces the definitions' resources for the runs (tests pin the clock and database)."""
    from dagster import MultiPartitionKey

    from loyalty_pipeline.definitions import defs

    if end < start:
        raise RunError(f"--end {end} is before --start {start}")
    slugs = sync_program_partitions(instance, settings)
    if program:
        check_slug(program)
        if program not in slugs:
            raise RunError(f"program {program!r} does not exist in the programs table")
        slugs = [program]
    job = defs.resolve_job_def("birthday_job")
    outcomes = []
    for slug in slugs:
        first = MultiPartitionKey({"date": start.isoformat(), "program": slug})
        last = MultiPartitionKey({"date": end.isoformat(), "program": slug})
        tags = {"program": slug, ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(last)}
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config=QUIET,
                                        resources=resources)
        if not result.success:
            outcomes.append((slug, False, failure_reason(result)))
            continue
        metadata = materialization_metadata(result, "birthday_log")
        outcomes.append((slug, True, (
            f"{metadata.get('rewarded_now', 0)} rewarded now, {metadata.get('already_rewarded_this_year', 0)} "
            f"already rewarded, {metadata.get('points_awarded', 0)} points"
            + (f"; skipped: {metadata['skipped']}" if metadata.get("skipped", "").startswith("-") else "")
        )))
    return outcomes
