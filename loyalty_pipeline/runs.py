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
from loyalty_pipeline.names import InvalidName, upload_key, upload_path
from loyalty_pipeline import birthday_runs
from loyalty_pipeline.programs import ProgramNotFound, get_program


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


# --- birthday runs (the `rewards` and `backfill` commands) ------------------------------------------

def run_birthdays(instance, settings: Settings, start: date, end: date, program: str | None,
                  resources: dict | None = None) -> list[tuple[str, bool, str]]:
    """One run of the day partitions [start, end] for `program`, or for every enabled program whose
    send hour has passed on those days; (slug, ok, summary) per program, from birthday_runs.
    `resources` replaces the definitions' resources for the run (tests pin the clock and database)."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from loyalty_pipeline.definitions import defs
    from schedules.schedules import batch_config

    if end < start:
        raise RunError(f"--end {end} is before --start {start}")
    engine = _engine(settings)
    if program:
        with engine.connect() as conn:
            try:
                get_program(conn, program)
            except ProgramNotFound as exc:
                raise RunError(str(exc)) from exc
    tags = {"loyalty/trigger": "cli"} | ({"program": program} if program else {})
    partition_key = None
    if start == end:
        partition_key = start.isoformat()
    else:
        tags |= {ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()}
    job = defs.resolve_job_def("birthday_job")
    run_config = {**QUIET, **batch_config([program] if program else [], ignore_send_hour=True)}
    result = job.execute_in_process(instance=instance, partition_key=partition_key, tags=tags, raise_on_error=False,
                                    run_config=run_config, resources=resources)
    with engine.connect() as conn:
        rows = birthday_runs.rows_for_run(conn, result.run_id)
    outcomes = _outcomes(rows)
    if not result.success and not any(not ok for _, ok, _ in outcomes):
        outcomes.append((program or "birthday_job", False, failure_reason(result)))
    if not outcomes:
        outcomes.append((program or "every program", True, "nothing to do: no day of the range has come yet in "
                         "the program's time zone (or no program is enabled)"))
    return outcomes


def _outcomes(rows: list[birthday_runs.RunRow]) -> list[tuple[str, bool, str]]:
    """One line per program over the run's days."""
    by_program: dict[str, list[birthday_runs.RunRow]] = {}
    for row in rows:
        by_program.setdefault(row.slug, []).append(row)
    outcomes = []
    for slug, days in by_program.items():
        failed = [r for r in days if r.status == "failed"]
        if failed:
            outcomes.append((slug, False, f"{len(failed)} day(s) failed: {failed[0].error}"))
            continue
        now = sum(r.rewarded_by_run for r in days)
        eligible = sum(r.eligible for r in days)
        skipped = [f"{r.day}: {r.note}" for r in days if r.status == "skipped"]
        outcomes.append((slug, True, f"{now} rewarded now, {eligible - now} already rewarded, "
                                     f"{sum(r.points for r in days)} points on the day(s)"
                                     + (f"; skipped: {'; '.join(skipped[:3])}" if skipped else "")))
    return outcomes


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


