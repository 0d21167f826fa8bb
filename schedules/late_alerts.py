"""Freshness alert: a program's birthday day not rewarded by its send hour + LOYALTY_LATE_ALERT_HOURS
raises one `birthday_late` alert per (program, day), in the run-failure alert's JSON shape, through
the `alert_webhook` resource (delivery: loyalty_pipeline.alerts)."""

from datetime import timedelta

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from assets.birthdays import BIRTHDAY_JOB
from assets.resources import AlertWebhook, Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import birthday_runs, config
from loyalty_pipeline.birthday_runs import LateDay
from schedules.alerts import ERROR_SUMMARY_CHARS
from schedules.schedules import evaluation_time

# A mass outage must not turn one tick into thousands of POSTs: the rest go on the next ticks.
MAX_ALERTS_PER_TICK = 100
STATUS = {"failed": "FAILURE", "missing": "NOT_RUN"}


def late_alert(late: LateDay, ui_url: str = config.UI_URL.default) -> dict:
    """The JSON alert for a late (program, day): the fields of schedules.alerts.build_alert."""
    base = ui_url.rstrip("/")
    program, partition = late.program, late.day.isoformat()
    run_url = f"{base}/runs/{late.run_id}" if late.run_id else f"{base}/assets/birthday_log?partition={partition}"
    zone = program.timezone or "the default time zone"
    reason = late.error or ("its last run failed" if late.status == "failed" else "no run has rewarded it yet")
    error = (
        f"{program.slug}: birthday rewards of {partition} not done by {late.deadline.isoformat()} "
        f"(birthday_send_hour {program.birthday_send_hour} in {zone} + late hours): {reason}"
    )
    error = error[:ERROR_SUMMARY_CHARS]
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


def idempotency_key(alert: dict) -> str:
    return f"birthday-late:{alert['program']}:{alert['partition']}"


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="When an enabled program's local day is not rewarded by birthday_send_hour + "
    "LOYALTY_LATE_ALERT_HOURS, POSTs one `birthday_late` alert per (program, day) to "
    "LOYALTY_ALERT_WEBHOOK_URL (and logs it on the tick).",
)
def birthday_late_sensor(
    context: SensorEvaluationContext,
    database: LoyaltyDatabase,
    settings: LoyaltySettings,
    clock: Clock,
    alert_webhook: AlertWebhook,
):
    now = evaluation_time(None, clock)
    span = (23 + settings.late_alert_hours) // 24 + 1
    engine = database.engine()
    with engine.connect() as conn:
        snap = birthday_runs.snapshot(conn, now, settings.timezone, history_days=span)
        alerted = birthday_runs.alerted_days(conn, now.date() - timedelta(days=span + 2))
    late = birthday_runs.late_days(snap, now, settings.late_alert_hours, alerted)
    if not late:
        return SkipReason(f"no late birthday day among {len(snap.programs)} enabled program(s)")
    sender = alert_webhook.sender()
    for item in late[:MAX_ALERTS_PER_TICK]:
        alert = late_alert(item, alert_webhook.ui_url)
        context.log.warning(alert["text"])
        if sender is not None:
            sender.send(alert, idempotency_key=idempotency_key(alert))
        birthday_runs.record_alert(engine, item.program.id, item.day, now)
    more = len(late) - MAX_ALERTS_PER_TICK
    return SkipReason(
        f"{min(len(late), MAX_ALERTS_PER_TICK)} late day(s) alerted"
        + (f" ({more} more on the next ticks)" if more > 0 else "")
        + ("" if sender else f"; {config.ALERT_WEBHOOK_URL.name} is not set, logged only")
    )
