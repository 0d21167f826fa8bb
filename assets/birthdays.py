"""The birthday bot: day partitions of the birthday log and its notifications. A run covers a batch
of programs (run config `programs`, default: every enabled program whose send time has passed on
the day); each program's result per day is a `birthday_runs` row, shown here as metadata and checks."""

from datetime import date

from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    define_asset_job,
)
from pydantic import Field
from sqlalchemy import text

from assets.metadata import OWNERS
from assets.partitions import birthday_partitions
from assets.resources import (
    DATABASE_RETRY,
    Clock,
    LoyaltyDatabase,
    LoyaltySettings,
    NotificationSender,
    only_transient_errors_retry,
)
from loyalty_pipeline import birthday_runs
from loyalty_pipeline.outbox import deliver_pending
from loyalty_pipeline.programs import InvalidProgramConfig, ProgramNotFound
from loyalty_pipeline.rewards import award_birthdays

# Both assets: one partition per day; a backfill of any length is one run (its days in one transaction
# per program, which the reward SQL handles in a few statements).
BIRTHDAY_PARTITIONED = dict(
    partitions_def=birthday_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="birthdays",
    owners=OWNERS,
    retry_policy=DATABASE_RETRY,
)
# Rows of the per-program table in a materialization's metadata (failures first); the full list is
# the birthday_runs table.
METADATA_PROGRAMS = 300

BIRTHDAY_LOGS_SCHEMA = TableSchema(
    columns=[
        TableColumn("pass_id", "uuid"),
        TableColumn("program_id", "uuid"),
        TableColumn("year", "integer", description="unique with pass_id: once per pass per year"),
        TableColumn("reward_date", "date"),
        TableColumn("points", "integer"),
        TableColumn("batch_id", "text", description="the reward transaction that wrote the row"),
    ]
)
NOTIFICATIONS_SCHEMA = TableSchema(
    columns=[
        TableColumn("pass_id", "uuid"),
        TableColumn("program_id", "uuid"),
        TableColumn("user_id", "uuid"),
        TableColumn("birthday_log_id", "uuid", description="the reward this message announces (one each)"),
        TableColumn("kind", "text", description="birthday"),
        TableColumn("message", "text", description="rendered from programs.birthday_message"),
        TableColumn("status", "text", description="pending | sent | failed (after 5 attempts)"),
        TableColumn("attempts", "integer"),
        TableColumn("last_error", "text"),
        TableColumn("sent_at", "timestamptz"),
    ]
)
PROGRAMS_TABLE = TableSchema(
    columns=[
        TableColumn("program", "text"),
        TableColumn("status", "text", description="succeeded | skipped | failed (the worst of the run's days)"),
        TableColumn("days", "integer"),
        TableColumn("eligible", "integer"),
        TableColumn("rewarded_now", "integer"),
        TableColumn("rewarded_total", "integer", description="rewarded on these days over every attempt"),
        TableColumn("points_total", "integer"),
        TableColumn("note", "text", description="why days were skipped, or the error"),
    ]
)
# Set on the failure of a run whose every program's failure is recorded in birthday_runs (so alerted
# per program by birthday_late_sensor): run_failure_alert_sensor does not alert it a second time.
ALERTED_PER_PROGRAM = "loyalty/alerted_per_program"
INVARIANT_CHECKS = ("no_pass_twice_a_year", "pass_in_logged_program", "one_notification_per_log")


class BirthdayBatch(Config):
    """Which programs a birthday run covers (the launchpad's config; the schedule and catch-up set it)."""

    programs: list[str] = Field(
        default_factory=list,
        description="Program slugs to reward on the run's days. Empty: every enabled program whose "
        "birthday_send_hour has passed on the day in its time zone.",
    )
    ignore_send_hour: bool = Field(
        default=False,
        description="With no programs named: every enabled program, also those whose birthday_send_hour has "
        "not passed yet on the day (what `loyalty rewards` does: an operator asking for a day means it).",
    )


def partition_days(context: AssetExecutionContext) -> list[date]:
    return sorted(date.fromisoformat(key) for key in context.partition_keys)


def _invariant_violations(engine, days: list[date]) -> dict[str, int]:
    """Invariant violations among the partition days' log rows, every program (each must be 0)."""
    params = {"first": min(days), "last": max(days)}
    scope = "FROM birthday_logs b WHERE b.reward_date BETWEEN :first AND :last"
    queries = {
        "no_pass_twice_a_year": f"""SELECT count(*) FROM (SELECT b.pass_id, b.year {scope}
                                     GROUP BY b.pass_id, b.year HAVING count(*) > 1) t""",
        "pass_in_logged_program": f"""SELECT count(*) {scope} AND NOT EXISTS (
                                      SELECT 1 FROM passes_master p WHERE p.id = b.pass_id AND p.program_id = b.program_id)""",
        "one_notification_per_log": f"""SELECT count(*) {scope} AND (
                                        SELECT count(*) FROM notifications n WHERE n.birthday_log_id = b.id) <> 1""",
    }
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            params = {k: v.isoformat() for k, v in params.items()}
        return {name: conn.execute(text(sql), params).scalar_one() for name, sql in queries.items()}


_SEVERITY = {"succeeded": 0, "skipped": 1, "failed": 2}


def _program_rows(rows: list[birthday_runs.RunRow], failed_unrecorded: dict[str, str]) -> list[dict]:
    """One summary per program over the run's days, failures first."""
    by_program: dict[str, dict] = {}
    for row in rows:
        entry = by_program.setdefault(
            row.slug,
            {
                "program": row.slug,
                "status": row.status,
                "days": 0,
                "eligible": 0,
                "rewarded_now": 0,
                "rewarded_total": 0,
                "points_total": 0,
                "note": "",
            },
        )
        if _SEVERITY[row.status] > _SEVERITY[entry["status"]]:
            entry["status"] = row.status
        entry["days"] += 1
        entry["eligible"] += row.eligible
        entry["rewarded_now"] += row.rewarded_by_run
        entry["rewarded_total"] += row.rewarded
        entry["points_total"] += row.points
        detail = row.error or (f"{row.day}: {row.note}" if row.note else "")
        if detail and not entry["note"]:
            entry["note"] = detail
    for slug, error in failed_unrecorded.items():
        by_program[slug] = {
            "program": slug,
            "status": "failed",
            "days": 0,
            "eligible": 0,
            "rewarded_now": 0,
            "rewarded_total": 0,
            "points_total": 0,
            "note": error,
        }
    return sorted(by_program.values(), key=lambda e: (-_SEVERITY[e["status"]], e["program"]))


def _failures(failed: list[dict]) -> MetadataValue:
    return MetadataValue.md("\n".join(f"- {p['program']}: {p['note']}" for p in failed[:METADATA_PROGRAMS]) or "_none_")


def _metadata(programs: list[dict], samples: list[str], config: BirthdayBatch) -> dict:
    failed = [p for p in programs if p["status"] == "failed"]
    return {
        "programs": len(programs),
        "programs_failed": len(failed),
        "programs_requested": MetadataValue.text(
            ", ".join(config.programs)
            if config.programs
            else "every enabled program"
            if config.ignore_send_hour
            else "every program past its send hour"
        ),
        "eligible_passes": sum(p["eligible"] for p in programs),
        "rewarded_now": sum(p["rewarded_now"] for p in programs),
        "points_total": sum(p["points_total"] for p in programs),
        "per_program": MetadataValue.table(
            records=[TableRecord(p) for p in programs[:METADATA_PROGRAMS]], schema=PROGRAMS_TABLE
        ),
        "failures": _failures(failed),
        "sample_messages": MetadataValue.md("\n".join(f"- {m}" for m in samples[:5]) or "_none_"),
    }


@asset(
    **BIRTHDAY_PARTITIONED,
    # Every day reads all passes, whichever upload wrote them. Without this mapping Dagster maps
    # partition keys one to one and refuses a UI backfill ("depends on non-existent partitions").
    deps=[AssetDep("passes", partition_mapping=AllPartitionMapping())],
    description="birthday_logs: the birthday reward of each pass whose user's birthday is the partition's "
    "day, once per pass per year, with points credited and a message queued in the same transaction. "
    "A run covers the programs in its config (default: every enabled program whose send hour has passed "
    "on the day); each program's result per day is a birthday_runs row.",
    metadata={"dagster/column_schema": BIRTHDAY_LOGS_SCHEMA},
    check_specs=[
        *(AssetCheckSpec(name, asset="birthday_log") for name in INVARIANT_CHECKS),
        AssetCheckSpec(
            "programs_succeeded",
            asset="birthday_log",
            description="Every program of the run rewarded its days (failing programs listed).",
        ),
    ],
)
def birthday_log(
    context: AssetExecutionContext,
    config: BirthdayBatch,
    database: LoyaltyDatabase,
    settings: LoyaltySettings,
    clock: Clock,
):
    engine = database.engine()
    days = partition_days(context)
    started = clock.now()
    run_id = context.run.run_id
    with only_transient_errors_retry("choosing the run's programs"), engine.connect() as conn:
        batch, unknown = birthday_runs.programs_for_run(
            conn, days, config.programs, started, settings.timezone, config.ignore_send_hour
        )
        # A retry of this step (a lost connection) skips the programs an earlier attempt committed.
        committed = {row.slug for row in birthday_runs.rows_for_run(conn, run_id) if row.status != "failed"}
    failed_unrecorded = {slug: f"program {slug!r} does not exist in the programs table" for slug in unknown}
    samples: list[str] = []
    for slug, program_days in batch.items():
        if slug in committed:
            continue
        try:
            with only_transient_errors_retry(slug):
                result = award_birthdays(
                    engine,
                    program_slug=slug,
                    dates=program_days,
                    now=clock.now(),
                    default_timezone=settings.timezone,
                    batch_id=run_id,
                    run_id=run_id,
                    started_at=started,
                )
        except (ProgramNotFound, InvalidProgramConfig, Failure) as exc:
            error = getattr(exc, "description", None) or str(exc)
            context.log.error(f"{slug}: {error}")
            with only_transient_errors_retry(slug):
                if not birthday_runs.record_failure(engine, slug, program_days, error, run_id, started, clock.now()):
                    failed_unrecorded[slug] = error
            continue
        samples.extend(result.sample_messages[:1])
    with engine.connect() as conn:
        rows = birthday_runs.rows_for_run(conn, run_id)
    programs = _program_rows([r for r in rows if r.day in set(days)], failed_unrecorded)
    failed = [p for p in programs if p["status"] == "failed"]
    context.log.info(
        f"{len(programs)} program(s), {len(failed)} failed, {sum(p['rewarded_now'] for p in programs)} rewarded now"
    )
    if failed and len(failed) == len(programs):
        # Nothing succeeded: fail the run, so it shows red. Each recorded failure reaches on-call once,
        # per (program, day), from birthday_late_sensor; the run-failure alert is for what it cannot see
        # (a program that does not exist has no birthday_runs row).
        raise Failure(
            description="; ".join(f"{p['program']}: {p['note']}" for p in failed),
            allow_retries=False,
            metadata={ALERTED_PER_PROGRAM: not failed_unrecorded},
        )
    yield MaterializeResult(metadata=_metadata(programs, samples, config))
    violations = _invariant_violations(engine, days)
    for name in INVARIANT_CHECKS:
        yield AssetCheckResult(check_name=name, passed=violations[name] == 0, metadata={"violations": violations[name]})
    yield AssetCheckResult(
        check_name="programs_succeeded",
        passed=not failed,
        metadata={"failed": len(failed), "failures": _failures(failed)},
    )


@asset(
    **BIRTHDAY_PARTITIONED,
    deps=["birthday_log"],
    description="Delivery of the day's pending birthday notifications through the configured sender "
    "(at-least-once; a row is marked failed after 5 attempts): the programs birthday_log handled in the "
    "same run, or every program with pending messages on the day when materialized alone.",
    metadata={"dagster/column_schema": NOTIFICATIONS_SCHEMA},
)
def birthday_notifications(
    context: AssetExecutionContext, database: LoyaltyDatabase, notification_sender: NotificationSender, clock: Clock
):
    engine = database.engine()
    days = partition_days(context)
    sender = notification_sender.sender()
    with engine.connect() as conn:
        pending = birthday_runs.programs_with_pending(conn, days)
        in_run = {row.slug for row in birthday_runs.rows_for_run(conn, context.run.run_id)}
    slugs = [slug for slug in pending if slug in in_run] if in_run else pending
    totals = {"sent": 0, "failed_attempts": 0, "given_up": 0}
    last_error = None
    for slug in slugs:
        result = deliver_pending(engine, program_slug=slug, dates=days, sender=sender, now=clock.now())
        totals["sent"] += result.sent
        totals["failed_attempts"] += result.failed_attempts
        totals["given_up"] += result.given_up
        last_error = result.last_error or last_error
    retry_later = totals["failed_attempts"] - totals["given_up"]
    if retry_later:
        # Failing the step makes the retry policy run the delivery again; rows stay pending until then.
        raise Failure(
            description=f"{retry_later} notification(s) not delivered yet ({last_error}); they stay pending",
            metadata={**totals},
        )
    return MaterializeResult(
        metadata={
            **totals,
            "programs": len(slugs),
            "last_error": last_error or "none",
            "sender": notification_sender.kind,
        }
    )


BIRTHDAY_JOB = "birthday_job"

birthday_job = define_asset_job(
    BIRTHDAY_JOB,
    selection=["birthday_log", "birthday_notifications"],
    description="Award and deliver the birthday rewards of a day for a batch of programs "
    "(config `programs`; default every enabled program whose send hour has passed on the day).",
)


def batch_config(programs: list[str], ignore_send_hour: bool = False) -> dict:
    """The run config of birthday_job that names a run's programs (BirthdayBatch; the launchpad takes
    the same shape)."""
    config = {"programs": list(programs)} | ({"ignore_send_hour": True} if ignore_send_hour else {})
    return {"ops": {"birthday_log": {"config": config}}}
