"""Birthday alerts: what on-call is told about a program's day, one alert per (program, day, status),
in the run-failure alert's JSON shape, through the `alert_webhook` resource (delivery:
loyalty_pipeline.alerts):

- `FAILURE` (event `birthday_late`): the day failed - at once, with its error and the run's link,
  also when the run's other programs succeeded (the run is then green and raises no run-failure
  alert), and also after the day was first alerted NOT_RUN;
- `NOT_RUN` (event `birthday_late`): no result by its send hour + LOYALTY_LATE_ALERT_HOURS, unless a
  run for it is requested or in flight, which it waits for (bounded: birthday_runs.late_days);
- `EXPIRED` (event `birthday_expired`): a day catch-up could no longer reach, recorded as `skipped`
  with the reason (schedules/catchup.py), so the data team can backfill it if it wants.

Each is recorded in `birthday_alerts` once delivered, so it is sent once; at most 100 per tick."""

from datetime import timedelta

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from assets.birthdays import BIRTHDAY_JOB
from assets.resources import AlertWebhook, Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import birthday_runs, config
from loyalty_pipeline.birthday_runs import EXPIRED, FAILURE, NOT_RUN, DayAlert
from schedules.alerts import ERROR_SUMMARY_CHARS
from schedules.schedules import birthdays_in_flight, evaluation_time

# A mass outage must not turn one tick into thousands of POSTs: the rest go on the next ticks.
MAX_ALERTS_PER_TICK = 100
EVENTS = {FAILURE: "birthday_late", NOT_RUN: "birthday_late", EXPIRED: "birthday_expired"}
_WHAT = {
    FAILURE: ("failed", "Birthday rewards failed"),
    NOT_RUN: ("not done by {deadline}", "Birthday rewards late"),
    EXPIRED: ("lost", "Birthday rewards lost"),
}


def late_alert(item: DayAlert, ui_url: str = config.UI_URL.default) -> dict:
    """The JSON alert for a program's day: the fields of schedules.alerts.build_alert."""
    base = ui_url.rstrip("/")
    program, partition = item.program, item.day.isoformat()
    run_url = f"{base}/runs/{item.run_id}" if item.run_id else f"{base}/assets/birthday_log?partition={partition}"
    zone = program.timezone or "the default time zone"
    reason = item.reason or ("its run failed" if item.status == FAILURE else "no run has rewarded it yet")
    what, title = _WHAT[item.status]
    error = (
        f"{program.slug}: birthday rewards of {partition} {what.format(deadline=item.at.isoformat())} "
        f"(birthday_send_hour {program.birthday_send_hour} in {zone}): {reason}"
    )[:ERROR_SUMMARY_CHARS]
    return {
        "event": EVENTS[item.status],
        "run_id": item.run_id,
        "job": BIRTHDAY_JOB,
        "status": item.status,
        "assets": ["birthday_log", "birthday_notifications"],
        "failed_assets": ["birthday_log"],
        "partition": partition,
        "program": program.slug,
        "backfill_id": None,
        "error": error,
        "errors": [{"step": "birthday_log", "error": error}],
        "run_url": run_url,
        "failed_at": item.at.isoformat(),
        "text": f"{title}: {program.slug} [{partition}]: {reason} <{run_url}>",
    }


def idempotency_key(alert: dict) -> str:
    """Stable per (program, day, status): a receiver that dedupes drops a resent alert, not the
    day's next status (NOT_RUN, then FAILURE)."""
    return f"birthday-late:{alert['program']}:{alert['partition']}:{alert['status']}"


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="POSTs one alert per (program, day, status) to LOYALTY_ALERT_WEBHOOK_URL (and logs it on the "
    "tick): FAILURE at once with the error and the run's link; NOT_RUN when a day has no result by "
    "birthday_send_hour + LOYALTY_LATE_ALERT_HOURS (after waiting for a requested or running run); EXPIRED "
    "for a day catch-up could no longer reach.",
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
    in_flight = birthdays_in_flight(context.instance)
    with engine.begin() as conn:
        snap = birthday_runs.snapshot(conn, now, settings.timezone, history_days=span)
        book = birthday_runs.alert_rows(conn, now.date() - timedelta(days=span + 2))
        failed = birthday_runs.failures_to_alert(conn, now.date() - timedelta(days=settings.catchup_days + 2), now)
        expired = birthday_runs.expired_to_alert(conn, now)
        late, waiting = birthday_runs.late_days(
            snap, now, settings.late_alert_hours, settings.catchup_days, in_flight, book
        )
        birthday_runs.record_waiting(conn, waiting, now)
    alerts = failed + expired + late
    waits = f"; {len(waiting)} late day(s) wait for their requested or running run" if waiting else ""
    if not alerts:
        return SkipReason(f"no birthday day to alert among {len(snap.programs)} enabled program(s){waits}")
    sender = alert_webhook.sender()
    delivered: list[DayAlert] = []
    try:
        for item in alerts[:MAX_ALERTS_PER_TICK]:
            alert = late_alert(item, alert_webhook.ui_url)
            context.log.warning(alert["text"])
            if sender is not None:
                sender.send(alert, idempotency_key=idempotency_key(alert))
            delivered.append(item)
    finally:  # what was delivered is not sent again, even when a later one fails the tick
        birthday_runs.record_alerts(engine, delivered, now)
    more = len(alerts) - MAX_ALERTS_PER_TICK
    counts = ", ".join(f"{sum(a.status == s for a in delivered)} {s}" for s in (FAILURE, NOT_RUN, EXPIRED))
    return SkipReason(
        f"{len(delivered)} birthday day(s) alerted ({counts})"
        + (f" ({more} more on the next ticks)" if more > 0 else "")
        + waits
        + ("" if sender else f"; {config.ALERT_WEBHOOK_URL.name} is not set, logged only")
    )
