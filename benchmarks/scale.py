"""Birthday orchestration at 100 / 1,000 / 10,000 programs (issue 12), on throw-away databases.

For each N: a fresh PostgreSQL application database with N enabled programs spread over 24 time
zones and 30 days of `birthday_runs` history, and a fresh PostgreSQL-backed Dagster instance
(deploy/dagster.yaml). Measured:

- in process: the `birthday_schedule` tick (steady state: the programs due in the last 15 minutes;
  and cold: every program past its send hour today), `birthday_catchup_sensor` (nothing missed, and
  after a 3-day outage) and `birthday_late_sensor`;
- through `dagster-webserver` + `dagster-daemon` (the production processes): the same evaluations
  over the code server's gRPC API (the UI's "Test schedule/sensor", the path the daemon takes), the
  sensors' real daemon ticks, a UI backfill of 30 days x every program launched as the README says
  (GraphQL `launchPartitionBackfill`, no config), the time until the backfill daemon has created its
  run, the webserver's peak memory, and the Partitions tab / asset page queries;
- the number of `birthday_log` partitions.

Results go to benchmarks/scale_results.json, next to the issue's measurements of the former shape.

    .venv/bin/python benchmarks/scale.py                 # N = 100, 1000, 10000
    .venv/bin/python benchmarks/scale.py --sizes 100     # one size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

# Throw-away databases on the server of LOYALTY_BENCH_POSTGRES_URL, made as `make bench` makes them.
from benchmarks.harness import create_database, drop_database  # noqa: E402
from tests.dagster_processes import (  # noqa: E402
    Deployment,
    environment,
    launch_backfill,
    production_home,
    selector,
    wait_for,
    wait_for_runs,
)

RESULTS = REPO / "benchmarks" / "scale_results.json"
ZONES = [
    "Pacific/Pago_Pago",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Sao_Paulo",
    "Atlantic/South_Georgia",
    "Atlantic/Azores",
    "UTC",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
]
HISTORY_DAYS = 30
BACKFILL_DAYS = 30

# The measurements of the former (date x dynamic program) shape, same machine.
BEFORE = {
    "100": {
        "partitions": 252_900,
        "schedule_tick_in_process_s": 0.9,
        "ui_backfill_1_day_s": 3.5,
        "partitions_tab_s": 0.2,
    },
    "1000": {
        "partitions": 2_529_000,
        "schedule_tick_in_process_s": 10.7,
        "schedule_tick_daemon": "about 27 s, then 1,000 runs created over 7 min 53 s",
        "ui_backfill_1_day_s": "27 s in the webserver + 50 s daemon planning",
        "partitions_tab_s": 0.6,
    },
    "10000": {
        "partitions": 25_290_000,
        "schedule_tick_in_process_s": 160,
        "schedule_tick_daemon": "fails every hour: gRPC DEADLINE_EXCEEDED at 60 s, 0 runs",
        "ui_backfill_1_day_s": "webserver grew past 8.5 GB and was killed",
        "partitions_tab_s": 4,
    },
}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def seed(app_url: str, n: int, now: datetime, default_timezone: str = "UTC") -> dict:
    """N enabled programs over 24 zones, enabled 31 days ago, with 30 days of results up to their
    local yesterday and today's result for those due more than 15 minutes before `now`."""
    from loyalty_pipeline import birthday_runs
    from loyalty_pipeline.db import make_engine, migrate

    engine = make_engine(app_url)
    migrate(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points, timezone, created_at)
            SELECT 'program-' || lpad(g::text, 5, '0'), 'Program ' || g, true, 10,
                   (CAST(:zones AS text[]))[1 + g % 24], now() - interval '400 days'
            FROM generate_series(1, :n) g
        """),
            {"n": n, "zones": ZONES},
        )
        conn.execute(  # (the programs trigger stamps the database's clock; the benchmark has its own)
            text("UPDATE programs SET birthday_enabled_since = :since"),
            {"since": now - timedelta(days=HISTORY_DAYS + 1)},
        )
        conn.execute(
            text("""
            INSERT INTO birthday_runs (program_id, run_date, status, started_at, finished_at, run_id)
            SELECT p.id, (timezone(p.timezone, CAST(:now AS timestamptz)))::date - d, 'succeeded', :now, :now, 'seed'
            FROM programs p CROSS JOIN generate_series(1, :days) d
        """),
            {"now": now, "days": HISTORY_DAYS},
        )
        snap = birthday_runs.snapshot(conn, now, default_timezone, history_days=2)
        done_today = birthday_runs.due_today(snap, now - timedelta(minutes=15), {})
        rows = [{"slug": slug, "day": day} for day, slugs in done_today.items() for slug in slugs]
        if rows:
            conn.execute(
                text("""
                INSERT INTO birthday_runs (program_id, run_date, status, run_id)
                SELECT id, :day, 'succeeded', 'seed' FROM programs WHERE slug = :slug
            """),
                rows,
            )
        history = conn.execute(text("SELECT count(*) FROM birthday_runs")).scalar_one()
    engine.dispose()
    return {"seconds": round(time.perf_counter() - started, 2), "birthday_runs_rows": history}


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return round(time.perf_counter() - started, 3), value


def in_process(env: dict, now: datetime) -> dict:
    """The schedule and sensors evaluated in this process on the Postgres-backed instance."""
    from dagster import DagsterInstance, build_schedule_context, build_sensor_context

    from assets.resources import Clock
    from loyalty_pipeline.config import Settings
    from loyalty_pipeline.db import make_engine
    from loyalty_pipeline.definitions import build_resources, defs
    from schedules.catchup import birthday_catchup_sensor
    from schedules.late_alerts import birthday_late_sensor
    from schedules.schedules import birthday_schedule

    os.environ.update(env)
    settings = Settings.from_env()
    resources = {**build_resources(settings), "clock": Clock()}
    frozen = {**resources, "clock": Clock(frozen_now=now.isoformat())}
    out = {}
    engine = make_engine(settings.database_url)
    with DagsterInstance.get() as instance:
        repository = defs.get_repository_def()

        def schedule_tick(moment):
            with build_schedule_context(
                instance=instance, scheduled_execution_time=moment, resources=resources, repository_def=repository
            ) as context:
                return birthday_schedule.evaluate_tick(context).run_requests or []

        def sensor_tick(sensor):
            return sensor(build_sensor_context(instance=instance, resources=frozen, repository_def=repository))

        schedule_tick(now)  # warm imports and pools once; every figure below is a second call
        seconds, requests = timed(lambda: schedule_tick(now))
        out["schedule_tick_steady"] = {
            "seconds": seconds,
            "run_requests": len(requests),
            "programs": sum(len(_programs(r)) for r in requests),
        }
        out["schedule_tick_cold"] = _cold_tick(engine, now, lambda: timed(lambda: schedule_tick(now)))
        seconds, result = timed(lambda: sensor_tick(birthday_catchup_sensor))
        out["catchup_tick_nothing_missed"] = {"seconds": seconds, "run_requests": len(result.run_requests or [])}
        out["catchup_tick_after_3_day_outage"] = _outage(
            engine, now, lambda: timed(lambda: sensor_tick(birthday_catchup_sensor))
        )
        seconds, result = timed(lambda: sensor_tick(birthday_late_sensor))
        out["late_tick"] = {"seconds": seconds, "skip": getattr(result, "skip_message", None)}
    engine.dispose()
    return out


def _programs(request) -> list[str]:
    return request.run_config["ops"]["birthday_log"]["config"]["programs"]


@contextmanager
def _set_aside(engine, since):
    """Results from `since` on are out of the table for the block (as if those days had not run)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_aside AS SELECT * FROM birthday_runs WHERE run_date >= :d"), {"d": since})
        conn.execute(text("DELETE FROM birthday_runs WHERE run_date >= :d"), {"d": since})
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO birthday_runs SELECT * FROM bench_aside"))
            conn.execute(text("DROP TABLE bench_aside"))


def _cold_tick(engine, now: datetime, measure) -> dict:
    """The first tick of a day with nothing done yet: every program past its send hour is due."""
    with _set_aside(engine, now.date() - timedelta(days=1)):
        seconds, requests = measure()
    return {"seconds": seconds, "run_requests": len(requests), "programs": sum(len(_programs(r)) for r in requests)}


def _outage(engine, now: datetime, measure) -> dict:
    """The daemon was down for the last 3 days: their results are missing."""
    with _set_aside(engine, now.date() - timedelta(days=3)):
        seconds, result = measure()
    requests = result.run_requests or []
    return {"seconds": seconds, "run_requests": len(requests), "program_days": sum(len(_programs(r)) for r in requests)}


# --- the production processes ---------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


class PeakMemory:
    """Samples a process's resident memory every 0.2 s while in the `with` block."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, rss_bytes(pid), threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


SCHEDULE_DRY_RUN = """mutation($s: ScheduleSelector!, $t: Float) { scheduleDryRun(selectorData: $s, timestamp: $t) {
  __typename ... on DryRunInstigationTick { evaluationResult { runRequests { runKey } skipReason error { message } } }
  ... on PythonError { message } } }"""
SENSOR_DRY_RUN = """mutation($s: SensorSelector!, $c: String) { sensorDryRun(selectorData: $s, cursor: $c) {
  __typename ... on DryRunInstigationTick { evaluationResult { runRequests { runKey } skipReason error { message } } }
  ... on PythonError { message } } }"""
SENSOR_TICKS = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { ticks(limit: 10) { status timestamp endTimestamp } } } } }"""
CANCEL_BACKFILL = """mutation($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename } }"""
TERMINATE = """mutation($id: String!) { terminateRun(runId: $id) { __typename } }"""
PARTITION_HEALTH = """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { ... on AssetNode { id
  partitionKeysByDimension { name partitionKeys } assetPartitionStatuses { __typename
  ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }"""
ASSET_PAGE = """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { ... on AssetNode { id description
  partitionStats { numMaterialized numPartitions numFailed numMaterializing } metadataEntries { label }
  assetChecksOrError { ... on AssetChecks { checks { name } } } } } }"""
SCHEDULE_TICKS = """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) { __typename
  ... on Schedule { scheduleState { ticks(limit: 5) { status timestamp endTimestamp runIds
  error { message } } } } } }"""


def through_processes(env: dict, work: Path, now: datetime, schedule_tick: bool) -> dict:
    from assets.partitions import birthday_partitions

    out = {}
    # The 10,000-program figures take minutes per query on the former shape: a generous GraphQL timeout.
    with Deployment(env, work, graphql_timeout=600) as deployment:
        gql = deployment.gql
        deployment.wait_until_loaded(180)
        schedule = selector(scheduleName="birthday_schedule")
        seconds, data = timed(lambda: gql(SCHEDULE_DRY_RUN, {"s": schedule, "t": now.timestamp()}))
        evaluation = data["scheduleDryRun"].get("evaluationResult") or {}
        out["schedule_tick_grpc"] = {
            "seconds": seconds,
            "run_requests": len(evaluation.get("runRequests") or []),
            "error": (evaluation.get("error") or {}).get("message"),
        }
        for sensor in ("birthday_catchup_sensor", "birthday_late_sensor"):
            variables = {"s": selector(sensorName=sensor), "c": None}
            seconds, data = timed(lambda variables=variables: gql(SENSOR_DRY_RUN, variables))
            evaluation = data["sensorDryRun"].get("evaluationResult") or {}
            out[f"{sensor}_grpc"] = {"seconds": seconds, "error": (evaluation.get("error") or {}).get("message")}

        def daemon_ticks(sensor):
            state = gql(SENSOR_TICKS, {"s": selector(sensorName=sensor)})["sensorOrError"]["sensorState"]
            done = [t for t in state["ticks"] if t["endTimestamp"]]
            return done or None

        for sensor in ("birthday_catchup_sensor", "birthday_late_sensor"):
            ticks = wait_for(
                f"a daemon tick of {sensor}",
                lambda sensor=sensor: daemon_ticks(sensor),
                180,
                interval=3,
                watch=deployment,
            )
            out[f"{sensor}_daemon_tick"] = {
                "seconds": round(max(t["endTimestamp"] - t["timestamp"] for t in ticks), 3),
                "status": ticks[0]["status"],
            }

        if schedule_tick:  # the real tick at the next quarter hour (the clock is pinned, so it decides as at `now`)

            def schedule_ticked():
                state = gql(SCHEDULE_TICKS, {"s": schedule})
                done = [t for t in state["scheduleOrError"]["scheduleState"]["ticks"] if t["endTimestamp"]]
                return done or None

            log("waiting for birthday_schedule's next tick under the daemon (up to 16 minutes)")
            tick = wait_for("birthday_schedule's daemon tick", schedule_ticked, 16 * 60, interval=5, watch=deployment)
            tick = tick[0]
            out["schedule_tick_daemon"] = {
                "seconds": round(tick["endTimestamp"] - tick["timestamp"], 3),
                "status": tick["status"],
                "runs": len(tick["runIds"]),
                "error": (tick.get("error") or {}).get("message"),
            }
            if tick["runIds"]:  # from the tick to the batch rewarded (programs without members: orchestration only)
                runs = wait_for_runs(
                    gql, "the schedule's runs to finish", 900, run_ids=tick["runIds"], watch=deployment
                )
                done = max(r["endTime"] for r in runs) - tick["timestamp"]
                out["schedule_batch_done_after_tick_seconds"] = round(done, 1)
                out["schedule_batch_status"] = sorted({r["status"] for r in runs})

        days = [(now.date() - timedelta(days=d)).isoformat() for d in range(BACKFILL_DAYS, 0, -1)]
        with PeakMemory(deployment.webserver.pid) as memory:
            started = time.perf_counter()
            backfill_id = launch_backfill(gql, days, ["birthday_log", "birthday_notifications"], "scale benchmark")
            launch_seconds = time.perf_counter() - started
            runs = wait_for_runs(
                gql,
                "the backfill daemon to create the backfill's run",
                600,
                tags={"dagster/backfill": backfill_id},
                finished=False,
                interval=0.5,
                watch=deployment,
            )
            planned_seconds = time.perf_counter() - started
            health_seconds, _ = timed(lambda: gql(PARTITION_HEALTH, {"a": {"path": ["birthday_log"]}}))
            page_seconds, _ = timed(lambda: gql(ASSET_PAGE, {"a": {"path": ["birthday_log"]}}))
        gql(CANCEL_BACKFILL, {"id": backfill_id})
        for run in runs:
            gql(TERMINATE, {"id": run["runId"]})
        out["ui_backfill_30_days"] = {
            "launch_seconds": round(launch_seconds, 3),
            "until_runs_created_seconds": round(planned_seconds, 3),
            "runs": len(runs),
            "webserver_peak_rss_mb": round(memory.peak / 2**20),
        }
        out["partitions_tab_seconds"] = health_seconds
        out["asset_page_seconds"] = page_seconds
        out["partitions"] = len(birthday_partitions.get_partition_keys())
    return out


def run_size(n: int, keep: bool, skip_processes: bool, schedule_tick: bool) -> dict:
    suffix = uuid.uuid4().hex[:8]
    names = {"app": f"loyalty_scale_{n}_{suffix}_app", "dagster": f"loyalty_scale_{n}_{suffix}_dagster"}
    urls = {kind: create_database(name) for kind, name in names.items()}
    work = Path(tempfile.mkdtemp(prefix=f"loyalty-scale-{n}-"))
    home = production_home(work / "dagster_home")
    (work / "uploads").mkdir()
    # 10:00 UTC today: programs from Pago Pago to Auckland are at every hour of their day.
    now = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0)
    env = environment(
        dagster_home=home, app_url=urls["app"], work=work, dagster_postgres=urls["dagster"], frozen_now=now
    )
    result = {"programs": n, "now": now.isoformat()}
    try:
        log(f"N={n}: seeding")
        result["seed"] = seed(urls["app"], n, now)
        log(f"N={n}: in-process ticks")
        result["in_process"] = in_process(env, now)
        log(f"N={n}: {json.dumps(result['in_process'])}")
        if not skip_processes:
            log(f"N={n}: webserver + daemon")
            result["processes"] = through_processes(env, work, now, schedule_tick)
            log(f"N={n}: {json.dumps(result['processes'])}")
    finally:
        if not keep:
            for name in names.values():
                drop_database(name)
            shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the work folder")
    parser.add_argument("--in-process-only", action="store_true", help="skip the webserver and daemon figures")
    parser.add_argument(
        "--schedule-tick",
        default="10000",
        help="sizes at which to wait for birthday_schedule's real tick under the daemon (<= 15 min)",
    )
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["before_issue_12"] = BEFORE
    results.setdefault("after", {})
    for n in [int(s) for s in args.sizes.split(",")]:
        wait = str(n) in args.schedule_tick.split(",")
        results["after"][str(n)] = run_size(n, args.keep, args.in_process_only, wait)
        results["machine"] = {"cpus": os.cpu_count(), "measured_at": datetime.now(timezone.utc).isoformat()}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
