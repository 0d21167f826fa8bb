"""Running the pipeline's jobs in process on the Dagster instance in DAGSTER_HOME, as the CLI and
the demo do: the runs are recorded there and show in the UI like scheduled ones."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

from sqlalchemy import text

from loyalty_pipeline.config import Settings, dagster_home
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.names import InvalidName, check_slug, upload_key, upload_path
from loyalty_pipeline.programs import ProgramNotFound, get_program, valid_program_slugs


# The CLI prints its own summary; the run's step logs stay in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _engine(settings: Settings):
    return make_engine(settings.database_url)


_DEFAULT_INSTANCE_YAML = """\
# Embedded instance for `loyalty` and `dagster dev`: SQLite storage under this folder.
# deploy/dagster.yaml is the PostgreSQL-backed production instance.
telemetry:
  enabled: false
nux:
  enabled: false
"""


class RunError(Exception):
    """A one-line reason the run could not start or failed."""


def dagster_instance():
    from dagster import DagsterInstance

    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DEFAULT_INSTANCE_YAML)
    return DagsterInstance.get()


def _root_message(error) -> str:
    """The first meaningful line of the innermost cause (SQLAlchemy appends a docs link line)."""
    while error.cause is not None:
        error = error.cause
    lines = [line.strip() for line in error.message.strip().splitlines()]
    meaningful = [line for line in lines if line and not line.startswith("(Background on this error")]
    return meaningful[0] if meaningful else "run failed"


def failure_reason(result) -> str:
    """The first step failure's message, as short as the error allows."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error:
                return _root_message(data.error)
    return "run failed (see the Dagster UI for the logs)"


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
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

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
        metadata = _materialization_metadata(result, "birthday_log")
        outcomes.append((slug, True, (
            f"{metadata.get('rewarded_now', 0)} rewarded now, {metadata.get('already_rewarded_this_year', 0)} "
            f"already rewarded, {metadata.get('points_awarded', 0)} points"
            + (f"; skipped: {metadata['skipped']}" if metadata.get("skipped", "").startswith("-") else "")
        )))
    return outcomes


def _materialization_metadata(result, asset_name: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset_name:
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


def upload_summary(settings: Settings, key: str) -> str:
    with _engine(settings).connect() as conn:
        row = conn.execute(text("SELECT * FROM uploads WHERE key = :k"), {"k": key}).mappings().one()
        issues = conn.execute(
            text('SELECT line, "column", severity, reason FROM upload_issues WHERE upload_key = :k '
                 "ORDER BY line, \"column\""), {"k": key}
        ).all()
    lines = [
        f"{key}: {row['rows_read']} rows read, {row['rows_accepted']} accepted, {row['rows_rejected']} rejected, "
        f"{row['warnings']} warnings; users +{row['users_created']} created / {row['users_updated']} updated; "
        f"passes +{row['passes_created']}"
    ]
    for line, column, severity, reason in issues[:40]:
        lines.append(f"  line {line:>4} {severity:<7} {column:<12} {reason[:100]}")
    if len(issues) > 40:
        lines.append(f"  ... {len(issues) - 40} more in upload_issues")
    return "\n".join(lines)


