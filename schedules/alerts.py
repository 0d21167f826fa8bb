"""Alerting: when a run fails, POST a JSON alert to the `alert_webhook` resource's URL
(LOYALTY_ALERT_WEBHOOK_URL, if set; delivery and retries are loyalty_pipeline.alerts).

The payload carries what an on-call data engineer needs before opening the UI: the run id, the
job, the asset(s) and partition it was materializing, which step failed with a short error
summary, and a link to the run in the Dagster UI (LOYALTY_UI_URL, default http://localhost:3000).
It also has a `text` field, so a Slack or Teams "incoming webhook" URL works as it is."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from assets.birthdays import ALERTED_PER_PROGRAM
from assets.resources import AlertWebhook
from loyalty_pipeline import config
from loyalty_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
)
from loyalty_pipeline.run_results import innermost_cause

ERROR_SUMMARY_CHARS = 500


def _summary(message: str | None) -> str:
    """The first meaningful line of an error message (not a traceback header), kept short."""
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    text = (
        lines[0]
        if len(lines) == 1
        else next(
            (line for line in lines if not line.startswith(("Traceback", "File ", "The above exception"))), lines[0]
        )
    )
    return text[:ERROR_SUMMARY_CHARS]


def _step_error(event) -> str:
    """The one-line reason of a STEP_FAILURE event: a `Failure`'s description when the asset
    raised one (those are written for people), else the innermost exception's message."""
    data = event.step_failure_data
    if data is None:
        return _summary(event.message)
    if data.user_failure_data and data.user_failure_data.description:
        return _summary(data.user_failure_data.description)
    error = innermost_cause(data.error)
    return _summary(error.message if error else event.message)


def _partition(tags: dict) -> str | None:
    if tags.get(PARTITION_NAME_TAG):
        return tags[PARTITION_NAME_TAG]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def _program(tags: dict, partition: str | None) -> str | None:
    """The tenant: the run's `program` tag, else read from the partition key (`<program>/<file>`
    for uploads, `<date>|<program>` for birthday partitions and their ranges)."""
    if tags.get("program"):
        return tags["program"]
    key = (partition or "").split("...")[0]
    if "|" in key:
        return key.split("|", 1)[1] or None
    if "/" in key:
        return key.split("/", 1)[0] or None
    return None


def _assets(context: RunFailureSensorContext) -> tuple[list[str], list[str]]:
    """(assets the run was materializing, assets of the steps that failed)."""
    run = context.dagster_run
    failed_steps = {event.step_key for event in context.get_step_failure_events() if event.step_key}
    planned: set[str] = {key.to_user_string() for key in (run.asset_selection or ())}
    if not planned:
        records = context.instance.get_records_for_run(
            run_id=run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event and event.asset_key:
                planned.add(event.asset_key.to_user_string())
    failed: set[str] = set()
    repository = context.repository_def
    if repository is not None:
        for key, assets_def in repository.assets_defs_by_key.items():
            if assets_def.is_executable and assets_def.node_def.name in failed_steps:
                failed.add(key.to_user_string())
    if not failed:  # an asset's step key is its name unless it is one step of a multi-asset
        failed = {step for step in failed_steps if not planned or step in planned}
    return sorted(planned), sorted(failed)


def _ended_at(context: RunFailureSensorContext) -> str:
    record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    ended = record.end_time if record and record.end_time else time.time()
    return datetime.fromtimestamp(ended, tz=timezone.utc).isoformat()


def build_alert(context: RunFailureSensorContext, ui_url: str = config.UI_URL.default) -> dict:
    """The JSON alert for the failed run in `context`, linking to the Dagster UI at `ui_url`."""
    if not isinstance(context, RunFailureSensorContext):  # e.g. from build_run_status_sensor_context
        context = context.for_run_failure()
    run = context.dagster_run
    tags = dict(run.tags)
    base = ui_url.rstrip("/")
    step_failures = context.get_step_failure_events()
    errors = [{"step": event.step_key, "error": _step_error(event)} for event in step_failures]
    error = errors[0]["error"] if errors else _summary(context.failure_event.message)
    assets, failed_assets = _assets(context)
    partition = _partition(tags)
    run_url = f"{base}/runs/{run.run_id}"
    what = ", ".join(failed_assets or assets) or run.job_name
    text = f"Dagster run failed: {what}" + (f" [{partition}]" if partition else "") + f": {error} <{run_url}>"
    return {
        "event": "run_failure",
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "assets": assets,
        "failed_assets": failed_assets,
        "partition": partition,
        "program": _program(tags, partition),
        "backfill_id": tags.get(BACKFILL_ID_TAG),
        "error": error,
        "errors": errors,
        "run_url": run_url,
        "failed_at": _ended_at(context),
        "text": text,
    }


def _alerted_per_program(context: RunFailureSensorContext) -> bool:
    """A birthday run whose every failed step says its failures are alerted per (program, day)."""
    failures = context.get_step_failure_events()
    for event in failures:
        data = event.step_failure_data
        flag = (
            (data.user_failure_data.metadata or {}).get(ALERTED_PER_PROGRAM)
            if data and data.user_failure_data
            else None
        )
        if not getattr(flag, "value", flag):
            return False
    return bool(failures)


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="When a run of this code location fails and LOYALTY_ALERT_WEBHOOK_URL is set, POSTs a JSON "
    "alert (run id, asset(s), partition, error summary, link to the run in the UI at LOYALTY_UI_URL); a birthday "
    "run whose programs all failed is alerted per (program, day) by birthday_late_sensor instead.",
)
def run_failure_alert_sensor(context: RunFailureSensorContext, alert_webhook: AlertWebhook):
    if _alerted_per_program(context):
        context.log.info(
            f"run {context.dagster_run.run_id} failed; each program's failed day is alerted by birthday_late_sensor"
        )
        return
    sender = alert_webhook.sender()
    if sender is None:
        context.log.info(
            f"run {context.dagster_run.run_id} failed; {config.ALERT_WEBHOOK_URL.name} is not set, no alert sent"
        )
        return  # returning nothing lets the sensor go on to the next failed run in the same tick
    alert = build_alert(context, alert_webhook.ui_url)
    status = sender.send(alert)
    context.log.info(f"alert for run {alert['run_id']} delivered (HTTP {status})")
