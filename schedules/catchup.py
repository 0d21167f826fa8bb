"""Automatic catch-up: days missed while the daemon or the database was down are requested as soon
as the sensor ticks again (schedules do not catch up missed ticks); the days it can no longer
reach are recorded as lost (`skipped` with the reason) and alerted once by birthday_late_sensor."""

import hashlib

from dagster import (
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets.birthdays import birthday_job
from assets.partitions import OBSOLETE_PROGRAMS_PARTITIONS
from assets.resources import Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import birthday_runs
from schedules.obsolete_partitions import retire
from schedules.schedules import birthdays_in_flight, evaluation_time, run_requests


@sensor(
    job=birthday_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests every enabled program's missed birthday days (no birthday_runs result) since its bot "
    "was switched on (programs.birthday_enabled_since), within birthday_max_delay_days and LOYALTY_CATCHUP_DAYS, "
    "once each; one run per day and batch of programs. Older missed days are lost: recorded as skipped with "
    "the reason, and alerted once.",
)
def birthday_catchup_sensor(
    context: SensorEvaluationContext, database: LoyaltyDatabase, settings: LoyaltySettings, clock: Clock
):
    now = evaluation_time(None, clock)
    in_flight = birthdays_in_flight(context.instance)
    with database.engine().begin() as conn:
        snap = birthday_runs.snapshot(conn, now, settings.timezone, history_days=settings.catchup_days)
        lost = birthday_runs.lost_days(snap, now, in_flight, settings.catchup_days)
        birthday_runs.record_lost(conn, lost, now)
    missed = birthday_runs.missed_days(snap, now, in_flight, settings.catchup_days)
    if lost:
        context.log.warning(
            f"{len(lost)} day(s) lost (recorded as skipped, alerted once): "
            + ", ".join(f"{item.program.slug} {item.day}" for item in lost[:20])
            + (" ..." if len(lost) > 20 else "")
        )
    # The same missed set gives the same run key, so a batch whose run failed before recording
    # anything is not requested again and again.
    requests = []
    for day, slugs in missed.items():
        digest = hashlib.sha256(",".join(sorted(slugs)).encode()).hexdigest()[:16]
        requests.extend(run_requests({day: slugs}, "catchup", f"catchup:{digest}"))
    if missed:
        summary = ", ".join(f"{day}: {len(slugs)} program(s)" for day, slugs in sorted(missed.items()))
        context.log.info(f"missed: {summary}")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=retire(context, OBSOLETE_PROGRAMS_PARTITIONS),
        skip_reason=None if requests else f"no missed days among {len(snap.programs)} enabled program(s)",
    )
