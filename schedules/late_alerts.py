"""Freshness alert: a program's birthday day not rewarded by its send hour + LOYALTY_LATE_ALERT_HOURS
raises one `birthday_late` alert per (program, day), in the run-failure alert's JSON shape."""


import os
from datetime import timedelta

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from assets.resources import Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import birthday_runs
from loyalty_pipeline.birthday_runs import LateDay
from schedules import alerts
from schedules.schedules import BIRTHDAY_JOB, evaluation_time

# A mass outage must not turn one tick into thousands of POSTs: the rest go on the next ticks.
MAX_ALERTS_PER_TICK = 100
STATUS = {"failed": "FAILURE", "missing": "NOT_RUN"}


def late_alert(late: LateDay, ui_url: str | None = None) -> dict:
    """The JSON alert for a late (program, day): the fields of schedules.alerts.build_alert."""
    base = (ui_url or os.environ.get(alerts.UI_URL_ENV) or alerts.DEFAULT_UI_URL).rstrip("/")
    program, partition = late.program, late.day.isoformat()
    run_url = f"{base}/runs/{late.run_id}" if late.run_id else f"{base}/assets/birthday_log?partition={partition}"
    zone = program.timezone or "the default time zone"
    reason = late.error or ("its last run failed" if late.status == "failed" else "no run has rewarded it yet")
    error = (f"{program.slug}: birthday rewards of {partition} not done by {late.deadline.isoformat()} "
             f"(birthday_send_hour {program.birthday_send_hour} in {zone} + late hours): {reason}")
    error = error[:alerts.ERROR_SUMMARY_CHARS]
    return {
        "event": "birthday_late",
        "run_id": late.run_id,
        "job": BIRTHDAY_JOB,
        "status": STATUS.get(late.status, late.status.upper()),
        "assets": ["birthday_log", "birthday_notifications"],
        "failed_assets": ["birthday_log"],
        "partition": partition,
        "program": program.slug,
        "backfill_id": None,
        "error": error,
        "errors": [{"step": "birthday_log", "error": error}],
        "run_url": run_url,
        "failed_at": late.deadline.isoformat(),
        "text": f"Birthday rewards late: {program.slug} [{partition}]: {reason} <{run_url}>",
    }


def send_alert(url: str, payload: dict) -> None:
    """The one place this module delivers an alert (the run-failure alert's webhook client)."""
    alerts.post_json(url, payload, idempotency_key=f"birthday-late:{payload['program']}:{payload['partition']}")


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="When an enabled program's local day is not rewarded by birthday_send_hour + "
    "LOYALTY_LATE_ALERT_HOURS, POSTs one `birthday_late` alert per (program, day) to "
    "LOYALTY_ALERT_WEBHOOK_URL (and logs it on the tick).",
)
def birthday_late_sensor(context: SensorEvaluationContext, database: LoyaltyDatabase, settings: LoyaltySettings,
                         clock: Clock):
    now = evaluation_time(None, clock)
    span = (23 + settings.late_alert_hours) // 24 + 1
    engine = database.engine()
    with engine.connect() as conn:
        snap = birthday_runs.snapshot(conn, now, settings.timezone, history_days=span)
        alerted = birthday_runs.alerted_days(conn, now.date() - timedelta(days=span + 2))
    late = birthday_runs.late_days(snap, now, settings.late_alert_hours, alerted)
    if not late:
        return SkipReason(f"no late birthday day among {len(snap.programs)} enabled program(s)")
    url = os.environ.get(alerts.WEBHOOK_ENV)
    for item in late[:MAX_ALERTS_PER_TICK]:
        payload = late_alert(item)
        context.log.warning(payload["text"])
        if url:
            send_alert(url, payload)
        birthday_runs.record_alert(engine, item.program.id, item.day, now)
    more = len(late) - MAX_ALERTS_PER_TICK
    return SkipReason(f"{min(len(late), MAX_ALERTS_PER_TICK)} late day(s) alerted"
                      + (f" ({more} more on the next ticks)" if more > 0 else "")
                      + ("" if url else f"; {alerts.WEBHOOK_ENV} is not set, logged only"))
