"""Uploads at scale (issue 17), through the production processes: `dagster-webserver` and
`dagster-daemon` on a PostgreSQL instance (deploy/dagster.yaml), `upload_sensor` started as the UI
starts it, and a PostgreSQL application database.

- `burst`: N small files (50 rows) for N programs written at once; seconds from the write until every
  user is in the database (and until the first file's users are), the runs it took;
- `single`: one small file alone, written -> users in the database;
- `idle`: F files already ingested (their `uploads` rows recorded, as after months of uploads), the
  sensor's daemon ticks with nothing new (the first, which lists every folder, and the steady
  ones), its cursor's size, and the ingestion assets' Partitions tab and asset page.

    .venv/bin/python benchmarks/upload_scale.py --burst 200 1000 --single --idle 100000 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from benchmarks.harness import create_database, drop_database  # noqa: E402
from benchmarks.scale import ASSET_PAGE, PARTITION_HEALTH, log, timed  # noqa: E402
from tests.dagster_processes import Deployment, environment, production_home, selector, wait_for  # noqa: E402

RESULTS = REPO / "benchmarks" / "upload_scale_results.json"
ROWS_PER_FILE = 50
FILES_PER_FOLDER = 100  # the idle case: 10,000 programs x 100 files for 1,000,000

START_SENSOR = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
  ... on PythonError { message } } }"""
SENSOR_TICKS = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { ticks(limit: 50) { status timestamp endTimestamp cursor runIds
  error { message } } } } } }"""

# The measurements of the former shape (a run and a dynamic partition per file), same machine.
BEFORE = {
    "burst_200_all_users_s": "631-678",
    "burst_200_first_file_s": "31-38",
    "single_file_run_created_to_started_s": 6.4,
    "idle_tick_100000_s": 9.1,
    "idle_tick_1000000": "the cursor (~132 MB) exceeds gRPC's 100 MB limit: the sensor stops",
    "cursor_bytes_100000": 13_200_000,
}


def _csv(slug: str, n: int) -> str:
    lines = ["email,first_name,last_name,dob,phone"]
    lines += [f"{slug}-{i}@example.com,F{i},L{i},03/{1 + i % 28:02d}/1990,415555{i % 10000:04d}" for i in range(n)]
    return "\n".join(lines) + "\n"


def _seed_programs(engine, slugs: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO programs (slug, name, birthday_reward_points) VALUES (:s, :s, 10)"),
            [{"s": s} for s in slugs],
        )


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


class World:
    """Fresh application and Dagster databases, a production Dagster home and the processes."""

    def __init__(self, label: str):
        suffix = uuid.uuid4().hex[:8]
        self.names = {k: f"loyalty_upload_{label}_{suffix}_{k}" for k in ("app", "dagster")}
        self.urls = {k: create_database(name) for k, name in self.names.items()}
        self.work = Path(tempfile.mkdtemp(prefix=f"upload-scale-{label}-"))
        from loyalty_pipeline.db import make_engine, migrate

        self.engine = make_engine(self.urls["app"])
        migrate(self.engine)
        self.uploads = self.work / "uploads"
        self.uploads.mkdir()
        env = environment(
            dagster_home=production_home(self.work / "dagster_home"),
            app_url=self.urls["app"],
            work=self.work,
            dagster_postgres=self.urls["dagster"],
        )
        env["LOYALTY_REPORTS_DIR"] = str(self.work / "reports")
        self.env = env

    def start(self) -> Deployment:
        self.deployment = Deployment(self.env, self.work, graphql_timeout=600)
        self.deployment.wait_until_loaded(300)
        return self.deployment

    def ticks(self) -> list[dict]:
        data = self.deployment.gql(SENSOR_TICKS, {"s": selector(sensorName="upload_sensor")})
        return [t for t in data["sensorOrError"]["sensorState"]["ticks"] if t["endTimestamp"]]

    def start_sensor(self) -> None:
        answer = self.deployment.gql(START_SENSOR, {"s": selector(sensorName="upload_sensor")})["startSensor"]
        assert answer["__typename"] == "Sensor", answer

    def close(self) -> None:
        self.deployment.stop()
        self.engine.dispose()
        for name in self.names.values():
            drop_database(name)


def burst(n: int) -> dict:
    world = World(f"burst{n}")
    try:
        slugs = [f"shop-{i:05d}" for i in range(n)]
        _seed_programs(world.engine, slugs)
        deployment = world.start()
        world.start_sensor()
        wait_for("upload_sensor's first tick", world.ticks, 180, interval=1, watch=deployment)
        contents = {slug: _csv(slug, ROWS_PER_FILE) for slug in slugs}
        started = time.time()
        for slug, content in contents.items():  # each written whole and renamed in, as an uploader does
            folder = world.uploads / slug
            folder.mkdir()
            partial = folder / ".customers.csv.part"
            partial.write_text(content)
            os.replace(partial, folder / "customers.csv")
        written = time.time() - started
        first = None
        expected = n * ROWS_PER_FILE

        def landed():
            nonlocal first
            users = _count(world.engine, "SELECT count(*) FROM users")
            if users and first is None:
                first = time.time() - started
            return True if users >= expected else f"{users} of {expected} users"

        wait_for(f"{expected} users", landed, 30 * 60, interval=0.5, watch=deployment)
        done = time.time() - started
        ticks = world.ticks()
        with world.engine.connect() as conn:
            statuses = dict(conn.execute(text("SELECT status, count(*) FROM uploads GROUP BY status")).all())
            runs = conn.execute(text("SELECT count(DISTINCT run_id) FROM uploads")).scalar_one()
        return {
            "files": n,
            "write_seconds": round(written, 1),
            "first_users_after_s": round(first, 1),
            "all_users_after_s": round(done, 1),
            "runs": runs,
            "uploads_status": statuses,
            "sensor_tick_max_s": round(max(t["endTimestamp"] - t["timestamp"] for t in ticks), 2),
        }
    finally:
        world.close()


def single() -> dict:
    result = burst(1)
    return {"written_to_users_s": result["all_users_after_s"], "runs": result["runs"]}


def _fill(world: World, files: int) -> None:
    """`files` small files in folders of FILES_PER_FOLDER, each recorded in `uploads` as ingested
    (the state months of uploads leave), without ingesting them one by one."""
    folders = max(1, files // FILES_PER_FOLDER)
    slugs = [f"shop-{i:05d}" for i in range(folders)]
    _seed_programs(world.engine, slugs)
    with world.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT slug, id FROM programs")).all())
    content = _csv("x", 2).encode()
    import hashlib

    sha = hashlib.sha256(content).hexdigest()
    buffer = io.StringIO()
    made = 0
    for slug in slugs:
        folder = world.uploads / slug
        folder.mkdir()
        for k in range(min(FILES_PER_FOLDER, files - made)):
            path = folder / f"day-{k:04d}.csv"
            path.write_bytes(content)
            info = path.stat()
            buffer.write(
                f"{slug}/{path.name}\t{ids[slug]}\t{path.name}\t{sha}\t{sha}\t{info.st_size}:{info.st_mtime_ns}\t"
                f"succeeded\t2026-11-01 00:00:00+00\t2026-11-01 00:00:00+00\n"
            )
            made += 1
    raw = world.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY uploads (key, program_id, file_name, sha256, ingested_sha256, change_marker, status, "
                "arrived_at, processed_at) FROM STDIN"
            ) as copy:
                copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()


def idle(files: int, steady_ticks: int = 4) -> dict:
    world = World(f"idle{files}")
    try:
        started = time.time()
        _fill(world, files)
        log(f"{files} files and uploads rows in {time.time() - started:.0f} s")
        deployment = world.start()
        world.start_sensor()
        ticks = wait_for(
            f"{steady_ticks + 1} upload_sensor ticks",
            lambda: (lambda t: t if len(t) > steady_ticks else f"{len(t)} ticks")(world.ticks()),
            30 * 60,
            interval=5,
            watch=deployment,
        )
        ticks = sorted(ticks, key=lambda t: t["timestamp"])
        seconds = [round(t["endTimestamp"] - t["timestamp"], 2) for t in ticks]
        health_s, _ = timed(lambda: deployment.gql(PARTITION_HEALTH, {"a": {"path": ["raw_upload"]}}))
        page_s, _ = timed(lambda: deployment.gql(ASSET_PAGE, {"a": {"path": ["raw_upload"]}}))
        return {
            "files": files,
            "first_tick_s": seconds[0],
            "steady_tick_median_s": statistics.median(seconds[1:]),
            "steady_ticks_s": seconds[1:],
            "runs_requested": sum(len(t["runIds"] or []) for t in ticks),
            "cursor_bytes_max": max(len(t["cursor"] or "") for t in ticks),
            "errors": [t["error"]["message"][:300] for t in ticks if t.get("error")],
            "partitions_tab_s": health_s,
            "asset_page_s": page_s,
        }
    finally:
        world.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, nargs="*", default=[], metavar="N")
    parser.add_argument("--single", type=int, default=0, metavar="REPEATS")
    parser.add_argument("--idle", type=int, nargs="*", default=[], metavar="FILES")
    args = parser.parse_args()
    results = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "before": BEFORE}
    for n in args.burst:
        log(f"burst of {n} files")
        results[f"burst_{n}"] = burst(n)
        log(json.dumps(results[f"burst_{n}"]))
    if args.single:
        results["single"] = [single() for _ in range(args.single)]
        log(json.dumps(results["single"]))
    for files in args.idle:
        log(f"idle sensor with {files} files")
        results[f"idle_{files}"] = idle(files)
        log(json.dumps(results[f"idle_{files}"]))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
