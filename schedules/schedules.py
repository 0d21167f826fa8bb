"""The birthday schedule: every program is rewarded on its own local birthday morning."""


from dagster import (
    DefaultScheduleStatus,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.birthdays import birthday_job
from assets.partitions import DEFAULT_TIMEZONE
from assets.resources import LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline.programs import config_problems, list_programs


def due_partitions(programs, now, default_timezone: str) -> list[tuple[str, str]]:
    """(date, slug) for each enabled program whose local clock has passed its send hour today."""
    due = []
    for program in programs:
        if not program.birthday_bot_enabled or config_problems(program, default_timezone):
            continue
        local = now.astimezone(program.zone(default_timezone))
        if local.hour >= program.birthday_send_hour:
            due.append((local.date().isoformat(), program.slug))
    return due


@schedule(
    job=birthday_job,
    cron_schedule="0 * * * *",
    execution_timezone=DEFAULT_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly: requests each enabled program's birthday partition for its local date once "
    "its local time passes birthday_send_hour (a run key per partition, so each runs once).",
)
def birthday_schedule(context: ScheduleEvaluationContext, database: LoyaltyDatabase, settings: LoyaltySettings):
    with database.engine().connect() as conn:
        programs = list_programs(conn)
    known = set(context.instance.get_dynamic_partitions("programs"))
    requests = []
    for day, slug in due_partitions(programs, context.scheduled_execution_time, settings.timezone):
        if slug not in known:
            context.log.warning(f"{slug}: no programs partition yet (program_partitions_sensor adds it)")
            continue
        key = MultiPartitionKey({"date": day, "program": slug})
        requests.append(RunRequest(run_key=f"birthday:{key}", partition_key=key, tags={"program": slug}))
    return requests or SkipReason("no program is due for its birthday run this hour")
