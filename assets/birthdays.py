"""The birthday bot: per (day, program) partitions of the birthday log and its notifications."""


from collections import defaultdict
from datetime import date

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    TableColumn,
    TableSchema,
    asset,
    define_asset_job,
)
from sqlalchemy import text

from assets.metadata import OWNERS, markdown_table
from assets.partitions import birthday_partitions
from assets.resources import (
    DATABASE_RETRY,
    Clock,
    LoyaltyDatabase,
    LoyaltySettings,
    NotificationSender,
    only_transient_errors_retry,
)
from loyalty_pipeline.outbox import deliver_pending
from loyalty_pipeline.programs import InvalidProgramConfig, ProgramNotFound
from loyalty_pipeline.rewards import RewardResult, award_birthdays

# Both assets: one partition per (day, program); a backfill is one run per program for its whole
# date range, which the reward SQL handles in a few statements.
BIRTHDAY_PARTITIONED = dict(
    partitions_def=birthday_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="birthdays",
    owners=OWNERS,
    retry_policy=DATABASE_RETRY,
)

BIRTHDAY_LOGS_SCHEMA = TableSchema(columns=[
    TableColumn("pass_id", "uuid"),
    TableColumn("program_id", "uuid"),
    TableColumn("year", "integer", description="unique with pass_id: once per pass per year"),
    TableColumn("reward_date", "date"),
    TableColumn("points", "integer"),
    TableColumn("batch_id", "text", description="the reward transaction that wrote the row"),
])
NOTIFICATIONS_SCHEMA = TableSchema(columns=[
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
])


def dates_by_program(context: AssetExecutionContext) -> dict[str, list[date]]:
    """The run's partitions grouped by program: one key for a scheduled run, a date range per
    program for a single-run backfill."""
    grouped: dict[str, list[date]] = defaultdict(list)
    for key in context.partition_keys:
        if not isinstance(key, MultiPartitionKey):
            key = birthday_partitions.get_partition_key_from_str(key)
        dims = key.keys_by_dimension
        grouped[dims["program"]].append(date.fromisoformat(dims["date"]))
    return {program: sorted(days) for program, days in sorted(grouped.items())}


def _checks(engine, program_slug: str, days: list[date]) -> list[tuple[str, int]]:
    """Invariant violations among this partition's log rows (each count must be 0)."""
    params = {"slug": program_slug, "first": min(days), "last": max(days)}
    scope = ("FROM birthday_logs b JOIN programs pr ON pr.id = b.program_id "
             "WHERE pr.slug = :slug AND b.reward_date BETWEEN :first AND :last")
    queries = {
        "no_pass_twice_a_year": f"""SELECT count(*) FROM (SELECT b.pass_id, b.year {scope}
                                     GROUP BY b.pass_id, b.year HAVING count(*) > 1) t""",
        "pass_in_logged_program": f"""SELECT count(*) {scope} AND NOT EXISTS (
                                      SELECT 1 FROM passes_master p WHERE p.id = b.pass_id AND p.program_id = b.program_id)""",
        "one_notification_per_log": f"""SELECT count(*) {scope} AND (
                                        SELECT count(*) FROM notifications n WHERE n.birthday_log_id = b.id) <> 1""",
    }
    with engine.connect() as conn:
        return [(name, conn.execute(text(sql), params).scalar_one()) for name, sql in queries.items()]


def _metadata(result: RewardResult) -> dict:
    per_date = pl.DataFrame(
        {"date": [d.isoformat() for d in result.dates],
         "rewarded_now": [result.per_date.get(d.isoformat(), 0) for d in result.dates],
         "note": [result.skipped.get(d.isoformat(), "") for d in result.dates]}
    )
    return {
        "enabled": result.enabled,
        "eligible_passes": result.eligible,
        "rewarded_now": result.rewarded_now,
        "already_rewarded_this_year": result.already_rewarded,
        "points_awarded": result.points_awarded,
        "skipped": MetadataValue.md(
            "\n".join(f"- {day}: {why}" for day, why in result.skipped.items()) or "_nothing skipped_"),
        "per_date": MetadataValue.md(markdown_table(per_date.filter(
            (pl.col("rewarded_now") > 0) | (pl.col("note") != "")), limit=400)),
        "sample_messages": MetadataValue.md("\n".join(f"- {m}" for m in result.sample_messages) or "_none_"),
        "program_config": MetadataValue.json(result.program),
        "batch_id": result.batch_id,
    }


@asset(
    **BIRTHDAY_PARTITIONED,
    # Every (day, program) partition reads all passes, whichever upload wrote them. Without this mapping
    # Dagster maps partition keys one to one and refuses a UI backfill ("depends on non-existent partitions").
    deps=[AssetDep("passes", partition_mapping=AllPartitionMapping())],
    description="birthday_logs: the birthday reward of each pass whose user's birthday is the partition's "
    "day, once per pass per year, with points credited and a message queued in the same transaction.",
    metadata={"dagster/column_schema": BIRTHDAY_LOGS_SCHEMA},
    check_specs=[
        AssetCheckSpec("no_pass_twice_a_year", asset="birthday_log"),
        AssetCheckSpec("pass_in_logged_program", asset="birthday_log"),
        AssetCheckSpec("one_notification_per_log", asset="birthday_log"),
    ],
)
def birthday_log(context: AssetExecutionContext, database: LoyaltyDatabase, settings: LoyaltySettings, clock: Clock):
    engine = database.engine()
    now = clock.now()
    failures, results = [], []
    for program_slug, days in dates_by_program(context).items():
        try:
            with only_transient_errors_retry(program_slug):
                result = award_birthdays(engine, program_slug=program_slug, dates=days, now=now,
                                         default_timezone=settings.timezone, batch_id=context.run.run_id)
        except (ProgramNotFound, InvalidProgramConfig, Failure) as exc:
            failures.append(getattr(exc, "description", None) or str(exc))
            continue
        results.append(result)
        context.log.info(
            f"{program_slug}: {result.rewarded_now} rewarded, {result.already_rewarded} already rewarded, "
            f"{len(result.skipped)} day(s) skipped"
        )
    if failures:
        raise Failure(description="; ".join(failures), allow_retries=False)
    merged = results[0] if len(results) == 1 else _combine(results)
    yield MaterializeResult(metadata=_metadata(merged))
    checks = defaultdict(int)
    for result in results:
        if result.dates:
            for name, violations in _checks(engine, result.program_slug, result.dates):
                checks[name] += violations
    for name in ("no_pass_twice_a_year", "pass_in_logged_program", "one_notification_per_log"):
        yield AssetCheckResult(check_name=name, passed=checks[name] == 0, metadata={"violations": checks[name]})


def _combine(results: list[RewardResult]) -> RewardResult:
    combined = RewardResult(program_slug=",".join(r.program_slug for r in results),
                            enabled=any(r.enabled for r in results), dates=[])
    for r in results:
        combined.dates = sorted(set(combined.dates) | set(r.dates))
        combined.skipped.update({f"{d} ({r.program_slug})": why for d, why in r.skipped.items()})
        combined.eligible += r.eligible
        combined.already_rewarded += r.already_rewarded
        combined.rewarded_now += r.rewarded_now
        combined.points_awarded += r.points_awarded
        for d, n in r.per_date.items():
            combined.per_date[d] = combined.per_date.get(d, 0) + n
        combined.sample_messages.extend(r.sample_messages[:2])
    return combined


@asset(
    **BIRTHDAY_PARTITIONED,
    deps=["birthday_log"],
    description="Delivery of the partition's pending birthday notifications through the configured sender "
    "(at-least-once; a row is marked failed after 5 attempts).",
    metadata={"dagster/column_schema": NOTIFICATIONS_SCHEMA},
)
def birthday_notifications(context: AssetExecutionContext, database: LoyaltyDatabase,
                           notification_sender: NotificationSender, clock: Clock):
    sender = notification_sender.sender()
    totals = defaultdict(int)
    last_error = None
    for program_slug, days in dates_by_program(context).items():
        result = deliver_pending(database.engine(), program_slug=program_slug, dates=days, sender=sender,
                                 now=clock.now())
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
    return MaterializeResult(metadata={**totals, "last_error": last_error or "none", "sender": notification_sender.kind})


birthday_job = define_asset_job(
    "birthday_job",
    selection=["birthday_log", "birthday_notifications"],
    description="Award and deliver the birthday rewards of (day, program) partitions.",
)
