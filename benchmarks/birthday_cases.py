"""The birthday cases: one partition of award_birthdays on 5,000,000 passes (x scale) in 100 programs,
its rerun, and the 365-day x 10-program backfill through Dagster; the module docstring of
benchmarks/run.py says how each is measured.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks import harness

FULL_PASSES = 5_000_000
PASSES_PER_USER = 5
PROGRAMS = 100
BACKFILL_DAYS = 365
BACKFILL_PROGRAMS = 10
PARTITION_SAMPLES = 5


def child_backfill(task: dict) -> dict:
    """The backfill a data team launches (`loyalty backfill --start --end`, or a UI backfill of the
    day partitions): with day partitions and `BackfillPolicy.single_run()` it is one in-process run of
    `birthday_log` over the whole date range with the programs in its config."""
    from dagster import Definitions, define_asset_job, in_process_executor

    from assets.birthdays import batch_config, birthday_log, birthday_notifications
    from loyalty_pipeline.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from loyalty_pipeline.definitions import build_resources

    settings = harness.bench_settings(task)
    instance = harness.bench_instance(task)
    selection = task["selection"]
    job = define_asset_job("bench_birthday_backfill", selection=selection)
    defs = Definitions(
        assets=[birthday_log, birthday_notifications],
        jobs=[job],
        resources=build_resources(settings, frozen_now=task["now"]),
        executor=in_process_executor,
    )
    resolved = defs.resolve_job_def("bench_birthday_backfill")
    slugs = task["programs"]
    tags = {ASSET_PARTITION_RANGE_START_TAG: task["start"], ASSET_PARTITION_RANGE_END_TAG: task["end"]}
    started = time.perf_counter()
    result = resolved.execute_in_process(
        instance=instance, tags=tags, raise_on_error=False, run_config={**harness.QUIET, **batch_config(slugs)}
    )
    if not result.success:
        from loyalty_pipeline.run_results import failure_reason

        raise RuntimeError(f"backfill run failed: {failure_reason(result)}")
    metadata = harness.run_metadata(result)
    seconds = time.perf_counter() - started
    run = {
        "programs": slugs,
        "seconds": round(seconds, 3),
        "rewarded_now": metadata.get("birthday_log.rewarded_now"),
        "sent": metadata.get("birthday_notifications.sent"),
    }
    return {"seconds": seconds, "runs": [run]}


def load_birthday_data(url: str, passes: int) -> dict:
    """Programs, users and passes straight in SQL: 100 programs, passes/5 users with 5 passes each."""
    users = passes // PASSES_PER_USER
    started = time.perf_counter()
    with harness.psycopg_conn(url) as conn:
        conn.execute(f"""
            INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points, birthday_message,
                                  timezone, birthday_max_delay_days, created_at)
            SELECT 'p' || lpad(g::text, 3, '0'), 'Program ' || g, true, 10 + g % 5,
                   'Happy birthday {{first_name}}! {{points}} points from {{program_name}}.', 'UTC', 400,
                   '2020-01-01'
            FROM generate_series(0, {PROGRAMS - 1}) g
        """)
        # Foreign-key triggers off for the bulk load only (the generated keys are valid by construction).
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        # ~8% of users give no birthday, ~10% of the rest no year; everyone joined before the range.
        conn.execute(f"""
            INSERT INTO users (email, first_name, last_name, birth_date, birth_month, birth_day,
                               birth_date_set_at, phone_number, created_at, updated_at)
            SELECT 'user' || g || '@example' || g % 10 || '.com', 'First' || g % 997, 'Last' || g % 991,
                   CASE WHEN g % 10 <> 3 THEN d END,
                   CASE WHEN g % 13 <> 0 THEN extract(month FROM d)::smallint END,
                   CASE WHEN g % 13 <> 0 THEN extract(day FROM d)::smallint END,
                   CASE WHEN g % 13 <> 0 THEN timestamptz '2024-01-01' END,
                   '+1212' || lpad((g % 10000000)::text, 7, '0'), timestamptz '2024-01-01', timestamptz '2024-01-01'
            FROM (SELECT g, date '1950-01-01' + ((g::bigint * 7919) % 20000)::int AS d
                  FROM generate_series(1, {users}) g) s
        """)
        conn.execute(f"""
            INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
            SELECT pr.id, u.id, CASE WHEN (u.n + k) % 50 = 0 THEN 'inactive' ELSE 'active' END, 0,
                   timestamptz '2024-06-01'
            FROM (SELECT id, row_number() OVER () AS n FROM users) u
            CROSS JOIN generate_series(0, {PASSES_PER_USER - 1}) k
            JOIN (SELECT id, row_number() OVER (ORDER BY slug) - 1 AS idx FROM programs) pr
              ON pr.idx = (u.n * 7 + k * 20) % {PROGRAMS}
        """)
        conn.execute("SET session_replication_role = origin")
        conn.execute("VACUUM ANALYZE")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("users", "passes_master")}
    return {**counts, "seconds": round(time.perf_counter() - started, 2)}


def birthday_cases(scale: float, work: Path, bench_id: str, measurements: dict) -> dict:
    from loyalty_pipeline.db import make_engine, migrate
    from loyalty_pipeline.rewards import award_birthdays

    passes = int(FULL_PASSES * scale)
    name = f"loyalty_bench_{bench_id}_birthday"
    url = harness.create_database(name)
    try:
        engine = make_engine(url)
        migrate(engine)
        harness.log(f"loading {passes:,} passes in {PROGRAMS} programs with generate_series")
        measurements["birthday_data"] = load_birthday_data(url, passes)

        now = datetime.fromisoformat(harness.FROZEN_NOW)
        today = now.date()
        with engine.connect() as conn:  # warm the pool
            conn.exec_driver_sql("SELECT 1")
        harness.checkpoint(url)
        firsts, reruns, rewarded = [], [], []
        for i in range(PARTITION_SAMPLES):
            slug, day = f"p{50 + i:03d}", today - timedelta(days=1 + 3 * i)
            started = time.perf_counter()
            result = award_birthdays(engine, program_slug=slug, dates=[day], now=now)
            firsts.append(time.perf_counter() - started)
            rewarded.append(result.rewarded_now)
            started = time.perf_counter()
            again = award_birthdays(engine, program_slug=slug, dates=[day], now=now)
            reruns.append(time.perf_counter() - started)
            assert again.rewarded_now == 0, "a rerun must award nothing"
        measurements["birthday_partition"] = {"seconds": firsts, "rerun_seconds": reruns, "rewarded": rewarded}

        # One day of all programs (issue 3's second figure), informational.
        day = today
        started = time.perf_counter()
        total = 0
        for p in range(PROGRAMS):
            total += award_birthdays(engine, program_slug=f"p{p:03d}", dates=[day], now=now).rewarded_now
        measurements["birthday_one_day_all_programs"] = {"seconds": time.perf_counter() - started, "rewarded": total}
        engine.dispose()

        harness.checkpoint(url)
        # A run's Dagster cost does not shrink with the data, so a quick run backfills fewer programs
        # (one at --scale 0.1) and scales the time to ten; the full run measures all ten.
        runs = max(1, round(BACKFILL_PROGRAMS * scale))
        harness.log(f"backfill {BACKFILL_DAYS} days x {runs} program(s) through Dagster")
        programs = [f"p{p:03d}" for p in range(runs)]
        task = {
            "kind": "backfill",
            "db_url": url,
            "work_dir": str(work),
            "programs": programs,
            **harness.CHILD_EXTRA,
            "start": (today - timedelta(days=BACKFILL_DAYS - 1)).isoformat(),
            "end": today.isoformat(),
            "now": harness.FROZEN_NOW,
            "selection": ["birthday_log"],
        }
        backfill = harness.run_child(task)
        backfill["programs"] = runs
        backfill["scaled_to_programs"] = BACKFILL_PROGRAMS
        measurements["birthday_backfill"] = backfill
        with harness.psycopg_conn(url) as conn:
            logged = conn.execute("SELECT count(*), count(DISTINCT (pass_id, year)) FROM birthday_logs").fetchone()
            notes = conn.execute("SELECT count(*) FROM notifications").fetchone()[0]
        measurements["birthday_after"] = {"logs": logged[0], "distinct_pass_year": logged[1], "notifications": notes}
        if logged[0] != logged[1] or notes != logged[0]:
            raise AssertionError(f"birthday invariants broken: {measurements['birthday_after']}")
        return {
            "birthday_partition_sql": statistics.median(firsts),
            "birthday_partition_rerun_sql": statistics.median(reruns),
            "birthday_backfill": backfill["seconds"] * BACKFILL_PROGRAMS / runs,
        }
    finally:
        harness.drop_database(name)
