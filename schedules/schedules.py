"""The birthday schedule: every program is rewarded on its own local birthday morning, in batches
of programs per local date (runs per day follow time zones, not programs)."""

from datetime import date, datetime, timedelta

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.birthdays import BIRTHDAY_JOB, batch_config, birthday_job
from assets.resources import Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import birthday_runs
from loyalty_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

BIRTHDAY_LOG = AssetKey("birthday_log")
TRIGGER_TAG = "loyalty/trigger"
IN_FLIGHT_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def _run_days(tags: dict) -> list[date]:
    if tags.get(PARTITION_NAME_TAG):
        return [date.fromisoformat(tags[PARTITION_NAME_TAG])]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if not (start and end):
        return []
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def birthdays_in_flight(instance: DagsterInstance) -> dict[date, set[str] | None]:
    """Days with a birthday run queued or running, and that run's programs (None: every due program).
    One query over the queue, whatever the number of programs."""
    in_flight: dict[date, set[str] | None] = {}
    for record in instance.get_run_records(RunsFilter(statuses=IN_FLIGHT_STATUSES)):
        run = record.dagster_run
        if run.job_name != BIRTHDAY_JOB and BIRTHDAY_LOG not in (run.asset_selection or ()):
            continue
        try:
            days = _run_days(dict(run.tags))
        except ValueError:
            continue  # a partition key from the former (date|program) shape
        config = ((run.run_config or {}).get("ops", {}).get("birthday_log", {}) or {}).get("config") or {}
        programs = set(config.get("programs") or ())
        for day in days:
            if not programs or in_flight.get(day, set()) is None:
                in_flight[day] = None
            else:
                in_flight[day] = in_flight.get(day, set()) | programs
    return in_flight


def run_requests(due: dict[date, list[str]], trigger: str, key_prefix: str) -> list[RunRequest]:
    """One run per day and batch of programs."""
    requests = []
    for index, (day, slugs) in enumerate(birthday_runs.batches(due)):
        tags = {TRIGGER_TAG: trigger}
        if len(slugs) == 1:
            tags["program"] = slugs[0]
        requests.append(
            RunRequest(
                run_key=f"{key_prefix}:{day.isoformat()}:{index}",
                partition_key=day.isoformat(),
                run_config=batch_config(slugs),
                tags=tags,
            )
        )
    return requests


def evaluation_time(context_time: datetime | None, clock: Clock) -> datetime:
    """A pinned clock (LOYALTY_FROZEN_NOW) wins over the tick's time, so replays and tests decide
    exactly as production would have at that moment."""
    return clock.now() if clock.frozen_now or context_time is None else context_time


@schedule(
    job=birthday_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: one run per local date (and batch of up to 500 programs) for the enabled "
    "programs whose birthday_send_hour has passed on their local date and that have no result for it yet "
    "(birthday_runs) nor a run in flight; earlier missed days are birthday_catchup_sensor's.",
)
def birthday_schedule(
    context: ScheduleEvaluationContext, database: LoyaltyDatabase, settings: LoyaltySettings, clock: Clock
):
    now = evaluation_time(context.scheduled_execution_time, clock)
    with database.engine().connect() as conn:
        snap = birthday_runs.snapshot(conn, now, settings.timezone, history_days=1)
    for slug, why in snap.unusable.items():
        context.log.warning(f"{slug}: {why}; scheduled on {settings.timezone} time, its run will fail and say why")
    due = birthday_runs.due_today(snap, now, birthdays_in_flight(context.instance))
    requests = run_requests(due, "schedule", f"birthday:{now.strftime('%Y-%m-%dT%H:%M')}")
    if not requests:
        return SkipReason(
            f"no program is due: {len(snap.programs)} enabled program(s) done, in flight or not yet at their send hour"
        )
    context.log.info(", ".join(f"{day}: {len(slugs)} program(s)" for day, slugs in sorted(due.items())))
    return requests
