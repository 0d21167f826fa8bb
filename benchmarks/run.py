"""Performance benchmark of loyalty-pipeline against the physical limit and the per-row baseline.

    python benchmarks/run.py --scale 1.0     # make bench: the issue's sizes
    python benchmarks/run.py --scale 0.1     # make bench-quick: a tenth of the data, about a minute

Creates its own PostgreSQL databases (loyalty_bench_<id>_ingest / _birthday) on
LOYALTY_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres), generates its
data deterministically (benchmarks/generate_csv.py, fixed seeds, a frozen clock), runs every case of
issue 5, prints one results table and writes benchmarks/results.json:

    {"<case>": {"value": ..., "unit": ..., "target": ..., "compare": "<=" | ">=", "met": bool},
     ..., "scale": 1.0, "machine": {...}, "measurements": {...raw timings...}}

Ingestion
  The database first receives file A (rows x scale, seed 42) through the same Dagster assets, so
  about half of the measured file's addresses are already in `users`. The measured file B
  (`existing_emails_fraction=0.5, email_domain_offset=1`, same seed: the overlapping customers come
  back with the details they already have, the other half are new) is then materialized in process
  (`dagster.materialize([raw_upload, validated_users, users_and_passes], partition_key=...)`) in a
  child process, which reports its own wall time and peak RSS (ru_maxrss of the ingest process
  itself). The same partition is then materialized again (nothing changed). This pair is repeated
  (--repeats, default 3) on file-level copies of the same database state and the medians count.
  Both are divided by a bare COPY of the same accepted rows (file B's validated users) into an
  empty copy of `users` with all its indexes and defaults, the best of three, in the same run.
  The seed-style baseline parses 20,000 rows (x scale) of file B one by one in Python (csv,
  dateutil, phonenumbers) and sends one autocommitted upsert statement per row (user and pass in
  one statement) to a copy of the tables in the state file B meets; its time is extrapolated to the
  whole file.

Birthdays
  5,000,000 passes (x scale) in 100 programs: users and passes are generated in SQL
  (generate_series) with random uuids, as production ids are. One partition = award_birthdays for
  one program and one date (median of 5 partitions of different programs and dates), then the
  same partitions again (nothing to do). The backfill is 365 days x 10 programs through Dagster in
  the single-run backfill policy's shape: one in-process run of `birthday_log` over the whole date
  range with the 10 programs in its config (what `loyalty backfill` and a UI backfill launch), in a
  child process. At
  --scale 0.1 one program is backfilled and its time multiplied by ten (a run's Dagster cost does
  not shrink with the data).

Dagster instance: a temporary SQLite-backed instance in the work directory (as `loyalty` and the
tests use); --dagster-storage postgres gives the runs a database of their own on the same server,
as deploy/dagster.yaml does. The targets are defined at --scale 1.0; bench-quick is a smoke run.
See benchmarks/README.md for the results and the profile notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("LOYALTY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS_PATH = Path(__file__).resolve().parent / "results.json"

FULL_ROWS = 1_000_000
FULL_SEED_SAMPLE = 5_000
FULL_PASSES = 5_000_000
PASSES_PER_USER = 5
PROGRAMS = 100
BACKFILL_DAYS = 365
BACKFILL_PROGRAMS = 10
PARTITION_SAMPLES = 5
COPY_REPEATS = 3
SEED = 42
FROZEN_NOW = "2026-06-15T12:00:00+00:00"
PROGRAM = "bench"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RESULT_MARK = "BENCH_RESULT "
CHILD_EXTRA: dict = {}  # e.g. the Dagster storage URL, passed to every child task
CHILD_ENV: dict = {}  # environment variables of the child processes (Dagster deployment settings)
RECORD_FINGERPRINTS = False

# (case, unit, target, compare, title) in the order; a target of None is information only.
CASES = [
    ("ingest_vs_dlt", "x dlt", 1.0, "<=", "file B through Dagster / dlt merge of the same file"),
    ("ingest_vs_pandas", "x pandas", None, "<=", "file B through Dagster / pandas to_sql + upsert"),
    ("ingest_vs_floor", "x floor", 1.6, "<=", "file B through Dagster / COPY of every row it writes"),
    ("reingest_vs_copy", "x COPY", 1.2, "<=", "same file again, nothing changed / COPY of its users"),
    ("ingest_peak_rss", "GB", 0.8, "<=", "peak RSS of the {rows}-row ingest process"),
    ("sqlite_vs_postgres", "x PG", 2.0, "<=", "file B through Dagster on SQLite / the same on Postgres"),
    ("ingest_vs_copy", "x COPY", None, "<=", "file B through Dagster / COPY of its accepted users"),
    ("seed_style_vs_ours", "x ours", None, ">=", "seed-style per-row upsert (extrapolated) / ours"),
    ("birthday_partition_sql", "s", 0.5, "<=", "one birthday partition, {passes} passes / 100 programs"),
    ("birthday_partition_rerun_sql", "s", 0.2, "<=", "rerun of that partition (nothing to do)"),
    ("birthday_backfill", "s", 60.0, "<=", "backfill 365 days x 10 programs through Dagster"),
]
FINGERPRINTS_PATH = Path(__file__).resolve().parent / "fingerprints.json"


# --- helpers -------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sa_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def admin_engine():
    from sqlalchemy import create_engine

    return create_engine(_sa_url(ADMIN_URL), isolation_level="AUTOCOMMIT")


def create_database(name: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    with admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    from sqlalchemy import text

    with admin_engine().connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def psycopg_conn(url: str, autocommit: bool = True):
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, dbname=u.database, autocommit=autocommit
    )


def checkpoint(url: str) -> None:
    """Flush dirty buffers before a timed case so no case pays for the previous one's writes."""
    with psycopg_conn(url) as conn:
        conn.execute("CHECKPOINT")


def run_child(task: dict) -> dict:
    """Run one task in a fresh interpreter; it reports its own timings and peak RSS."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **CHILD_ENV},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"child task {task['kind']} failed with exit code {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
        )
    return json.loads(lines[-1][len(RESULT_MARK) :])


def machine_info(url: str) -> dict:
    import dagster
    import polars

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    with psycopg_conn(url) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        pg = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("shared_buffers", "work_mem", "synchronous_commit", "max_wal_size")
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg_version,
        "postgres_settings": pg,
        "polars": polars.__version__,
        "dagster": dagster.__version__,
    }


# --- child tasks ---------------------------------------------------------------------------------


def _bench_settings(task: dict):
    from loyalty_pipeline.config import Settings

    work = Path(task["work_dir"])
    return Settings(
        database_url=task["db_url"],
        uploads_dir=work / "uploads",
        timezone="UTC",
        reports_dir=work / "reports",
        notification_log=work / "notifications.jsonl",
    )


def _instance(task: dict):
    """A temporary Dagster instance: SQLite storage in the work directory (what `loyalty` and the
    tests use), or --dagster-storage postgres: a database of its own, as deploy/dagster.yaml does."""
    from dagster import DagsterInstance

    home = Path(task["work_dir"]) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    overrides: dict = {"telemetry": {"enabled": False}}
    if task.get("dagster_url"):
        overrides["storage"] = {"postgres": {"postgres_url": task["dagster_url"]}}
    return DagsterInstance.local_temp(tempdir=str(home), overrides=overrides)


def _metadata(result) -> dict:
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        for key, value in materialization.metadata.items():
            value = getattr(value, "value", value)
            if isinstance(value, (int, float, str)) and not (isinstance(value, str) and len(value) > 200):
                out[f"{materialization.asset_key.to_user_string()}.{key}"] = value
    return out


def child_ingest(task: dict) -> dict:
    from dagster import materialize

    from assets.ingestion import raw_upload, users_and_passes, validated_users
    from loyalty_pipeline.definitions import build_resources

    settings = _bench_settings(task)
    instance = _instance(task)
    key = task["key"]
    if not instance.has_dynamic_partition("uploads", key):
        instance.add_dynamic_partitions("uploads", [key])
    resources = build_resources(settings, frozen_now=FROZEN_NOW)
    started = time.perf_counter()
    result = materialize(
        [raw_upload, validated_users, users_and_passes],
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=QUIET,
        raise_on_error=False,
    )
    seconds = time.perf_counter() - started
    if not result.success:
        from loyalty_pipeline.run_results import failure_reason

        raise RuntimeError(f"ingest of {key} failed: {failure_reason(result)}")
    return {"seconds": seconds, "metadata": _metadata(result)}


def child_backfill(task: dict) -> dict:
    """The backfill a data team launches (`loyalty backfill --start --end`, or a UI backfill of the
    day partitions): with day partitions and `BackfillPolicy.single_run()` it is one in-process run of
    `birthday_log` over the whole date range with the programs in its config."""
    from dagster import Definitions, define_asset_job, in_process_executor

    from assets.birthdays import batch_config, birthday_log, birthday_notifications
    from loyalty_pipeline.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from loyalty_pipeline.definitions import build_resources

    settings = _bench_settings(task)
    instance = _instance(task)
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
        instance=instance, tags=tags, raise_on_error=False, run_config={**QUIET, **batch_config(slugs)}
    )
    if not result.success:
        from loyalty_pipeline.run_results import failure_reason

        raise RuntimeError(f"backfill run failed: {failure_reason(result)}")
    metadata = _metadata(result)
    seconds = time.perf_counter() - started
    run = {
        "programs": slugs,
        "seconds": round(seconds, 3),
        "rewarded_now": metadata.get("birthday_log.rewarded_now"),
        "sent": metadata.get("birthday_notifications.sent"),
    }
    return {"seconds": seconds, "runs": [run]}


def child_dlt(task: dict) -> dict:
    from benchmarks.peers import dlt_merge

    started = time.perf_counter()
    result = dlt_merge(Path(task["path"]), task["db_url"], Path(task["pipelines_dir"]))
    return {"seconds": time.perf_counter() - started, **result}


def child_pandas(task: dict) -> dict:
    from benchmarks.peers import pandas_upsert

    started = time.perf_counter()
    result = pandas_upsert(Path(task["path"]), _sa_url(task["db_url"]))
    return {"seconds": time.perf_counter() - started, **result}


BENCH_ONLY_PACKAGES = ("dlt", "pandas", "pyarrow")


class _RuntimeDependenciesOnly:
    """Import hook for the pipeline's own children: the peers' packages (the `bench` extra) are
    installed in the same environment, but a deployment has none of them, and pandera imports
    pandas and pyarrow whenever it can (~100 MB of the ingest's RSS). They are reported missing,
    as they are in a runtime-only install."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BENCH_ONLY_PACKAGES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def peak_rss_bytes() -> int:
    """This process's own peak RSS. Not ru_maxrss: Linux carries it over fork and exec, so a
    child reports at least the RSS its parent had when it started it (the parent holds file B's
    validated rows and the floor's rows: ~1.4 GB at full scale, which every earlier round's
    figure included). VmHWM is the high-water mark of this process's own address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_main(task: dict) -> int:
    kind = task["kind"]
    if kind in ("ingest", "backfill"):
        sys.meta_path.insert(0, _RuntimeDependenciesOnly())
    children = {"ingest": child_ingest, "backfill": child_backfill, "dlt": child_dlt, "pandas": child_pandas}
    result = children[kind](task)
    result["maxrss_bytes"] = peak_rss_bytes()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


# --- ingestion cases -----------------------------------------------------------------------------


def setup_program(url: str) -> None:
    from loyalty_pipeline.db import make_engine, migrate
    from loyalty_pipeline.programs import save_program

    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        save_program(conn, PROGRAM, "Bench Pizza", date_order="MDY", default_phone_region="US")
    engine.dispose()


def accepted_users_csv(path: Path) -> tuple[bytes, int]:
    """File B's accepted rows as the pipeline validates them (one row per email), as COPY input."""
    import io

    from loyalty_pipeline.csv_reader import read_csv
    from loyalty_pipeline.validation import validate_upload

    today = datetime.fromisoformat(FROZEN_NOW).date()
    validated = validate_upload(read_csv(path), date_order="MDY", phone_region="US", today=today)
    users = validated.users.drop("line")
    buffer = io.BytesIO()
    users.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
    return buffer.getvalue(), users.height


def copy_baseline(url: str, payload: bytes, columns: list[str], repeats: int = COPY_REPEATS) -> list[float]:
    """A bare COPY of the accepted rows into an empty table shaped like users (indexes, defaults)."""
    times = []
    cols = ", ".join(columns)
    with psycopg_conn(url) as conn:
        for _ in range(repeats):
            conn.execute("DROP TABLE IF EXISTS bench_copy_users")
            conn.execute("CREATE TABLE bench_copy_users (LIKE users INCLUDING ALL)")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(f"COPY bench_copy_users ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                        copy.write(payload)
            times.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_copy_users")
    return times


_SEED_UPSERT = """
WITH u AS (
    INSERT INTO seed.users (email, first_name, last_name, birth_date, birth_month, birth_day,
                            birth_date_set_at, phone_number, created_at, updated_at)
    VALUES (%(email)s, %(first_name)s, %(last_name)s, %(birth_date)s, %(birth_month)s, %(birth_day)s,
            CASE WHEN %(birth_month)s::smallint IS NOT NULL THEN now() END, %(phone)s, now(), now())
    ON CONFLICT (email) DO UPDATE SET
        first_name = COALESCE(EXCLUDED.first_name, seed.users.first_name),
        last_name = COALESCE(EXCLUDED.last_name, seed.users.last_name),
        birth_date = COALESCE(EXCLUDED.birth_date, seed.users.birth_date),
        birth_month = COALESCE(EXCLUDED.birth_month, seed.users.birth_month),
        birth_day = COALESCE(EXCLUDED.birth_day, seed.users.birth_day),
        phone_number = COALESCE(EXCLUDED.phone_number, seed.users.phone_number),
        updated_at = now()
    RETURNING id
)
INSERT INTO seed.passes_master (program_id, user_id, status, points_balance, created_at)
SELECT %(program_id)s, id, 'active', 0, now() FROM u
ON CONFLICT (program_id, user_id) DO NOTHING
"""


def seed_style_baseline(url: str, path: Path, sample_rows: int) -> dict:
    """The seed script's shape: csv.DictReader, per-row dateutil/phonenumbers, one upsert per row,
    each its own transaction (autocommit), against tables in the state the measured file meets."""
    import csv
    import io
    import re

    import phonenumbers
    from dateutil import parser as dateparser

    from loyalty_pipeline.csv_reader import normalize_header
    from loyalty_pipeline.validation import EMAIL_PATTERN

    email_re = re.compile(EMAIL_PATTERN)
    with psycopg_conn(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS seed CASCADE")
        conn.execute("CREATE SCHEMA seed")
        conn.execute("CREATE TABLE seed.users (LIKE public.users INCLUDING ALL)")
        conn.execute("CREATE TABLE seed.passes_master (LIKE public.passes_master INCLUDING ALL)")
        conn.execute("INSERT INTO seed.users SELECT * FROM public.users")
        conn.execute("INSERT INTO seed.passes_master SELECT * FROM public.passes_master")
        conn.execute("VACUUM ANALYZE seed.users")
        conn.execute("VACUUM ANALYZE seed.passes_master")
        program_id = conn.execute("SELECT id FROM programs WHERE slug = %s", (PROGRAM,)).fetchone()[0]
        conn.execute("CHECKPOINT")

        default = datetime(1900, 1, 1)
        processed = upserts = 0
        started = time.perf_counter()
        text = path.read_bytes().decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [normalize_header(h) for h in next(reader)]
        with conn.cursor() as cur:
            for record in reader:
                if processed >= sample_rows:
                    break
                processed += 1
                row = dict(zip(header, record, strict=False))  # a short row leaves fields out
                email = (row.get("email") or "").strip().lower()
                if len(record) > len(header) or not email_re.match(email) or len(email) > 254:
                    continue
                birth = None
                raw_date = (row.get("birth_date") or "").strip()
                if raw_date:
                    try:
                        birth = dateparser.parse(raw_date, default=default).date()
                    except (ValueError, OverflowError):
                        birth = None
                phone = None
                raw_phone = (row.get("phone_number") or "").strip()
                if raw_phone:
                    try:
                        number = phonenumbers.parse(raw_phone, "US")
                        if phonenumbers.is_valid_number(number):
                            phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    except phonenumbers.NumberParseException:
                        pass
                cur.execute(
                    _SEED_UPSERT,
                    {
                        "email": email,
                        "first_name": (row.get("first_name") or "").strip()[:1000] or None,
                        "last_name": (row.get("last_name") or "").strip()[:1000] or None,
                        "birth_date": birth,
                        "birth_month": birth.month if birth else None,
                        "birth_day": birth.day if birth else None,
                        "phone": phone,
                        "program_id": program_id,
                    },
                )
                upserts += 1
        seconds = time.perf_counter() - started
        conn.execute("DROP SCHEMA seed CASCADE")
    return {"rows": processed, "upserts": upserts, "seconds": seconds}


def clone_database(source: str, target: str) -> str:
    """A file-level copy of `source` (CREATE DATABASE ... TEMPLATE): each repeat of the measured
    ingest starts from exactly the same state without ingesting file A again."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    with admin_engine().connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": source})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}"'))
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    return make_url(ADMIN_URL).set(database=target).render_as_string(hide_password=False)


_FLOOR_TABLES = {"users": "floor_users", "passes_master": "floor_passes", "upload_issues": "floor_issues"}


def rows_written(url: str, key: str) -> dict[str, bytes]:
    """Every row the ingest of `key` wrote, as COPY data: the rows of users, passes_master and
    upload_issues whose current version the upload's transaction created (its xid, read from the
    uploads row it updated last). Taken right after the measured ingest, before the re-import."""
    out = {}
    with psycopg_conn(url) as conn:
        xid = conn.execute("SELECT xmin::text FROM uploads WHERE key = %s", (key,)).fetchone()[0]
        for table in _FLOOR_TABLES:
            buffer = bytearray()
            with conn.cursor().copy(f"COPY (SELECT * FROM {table} WHERE xmin = '{int(xid)}'::xid) TO STDOUT") as copy:
                for chunk in copy:
                    buffer += chunk
            out[table] = bytes(buffer)
    return out


def floor_copy(url: str, rows: dict[str, bytes]) -> float:
    """The physical floor: a bare COPY of exactly those rows, in one transaction, into empty tables
    with the same columns, defaults and indexes (LIKE ... INCLUDING ALL; no triggers, no foreign keys)."""
    with psycopg_conn(url) as conn:
        for table, floor in _FLOOR_TABLES.items():
            conn.execute(f"DROP TABLE IF EXISTS {floor}")
            conn.execute(f"CREATE TABLE {floor} (LIKE {table} INCLUDING ALL)")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            for table, floor in _FLOOR_TABLES.items():
                with cur.copy(f"COPY {floor} FROM STDIN") as copy:
                    copy.write(rows[table])
        seconds = time.perf_counter() - started
        for floor in _FLOOR_TABLES.values():
            conn.execute(f"DROP TABLE {floor}")
    return seconds


_FINGERPRINT_QUERIES = {
    "users": "SELECT email, first_name, last_name, birth_date, birth_month, birth_day, phone_number FROM users "
    "ORDER BY email",
    "passes": "SELECT u.email, pr.slug, p.status, p.points_balance FROM passes_master p "
    "JOIN users u ON u.id = p.user_id JOIN programs pr ON pr.id = p.program_id ORDER BY u.email, pr.slug",
    "upload_issues": 'SELECT upload_key, line, "column", value, severity, reason FROM upload_issues '
    'ORDER BY upload_key, line, "column", reason',
    "uploads": "SELECT key, rows_read, rows_accepted, rows_rejected, warnings, users_created, users_updated, "
    "passes_created FROM uploads ORDER BY key",
}


def fingerprint(url: str) -> dict:
    """Row count and a SHA-256 of every table's content the ingest decides (no ids or timestamps),
    read the same way from Postgres and SQLite, so both databases and every version of the code can
    be compared."""
    import hashlib

    from loyalty_pipeline.db import make_engine

    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for name, query in _FINGERPRINT_QUERIES.items():
            digest, count = hashlib.sha256(), 0
            for row in conn.exec_driver_sql(query).yield_per(50_000):
                digest.update("\x1f".join("\\N" if v is None else str(v) for v in row).encode() + b"\x1e")
                count += 1
            out[name] = {"rows": count, "sha256": digest.hexdigest()}
    engine.dispose()
    return out


def copy_sqlite(source: Path, target: Path) -> str:
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


def ingestion_cases(
    scale: float, work: Path, bench_id: str, measurements: dict, repeats: int, sqlite_repeats: int = 1
) -> dict:
    from benchmarks.generate_csv import generate_csv
    from benchmarks.peers import dlt_prepare

    rows = int(FULL_ROWS * scale)
    name = f"loyalty_bench_{bench_id}_ingest"
    peers_name = f"loyalty_bench_{bench_id}_peers"
    databases = [name, peers_name]
    url = create_database(name)
    peers_url = create_database(peers_name)
    try:
        setup_program(url)
        uploads = work / "uploads" / PROGRAM
        log(f"generating 2 x {rows:,} rows")
        file_a = generate_csv(uploads / "first.csv", rows, seed=SEED)
        file_b = generate_csv(
            uploads / "second.csv", rows, seed=SEED, existing_emails_fraction=0.5, email_domain_offset=1
        )
        measurements["files"] = {"first": file_a, "second": file_b}
        task = {"kind": "ingest", "work_dir": str(work), **CHILD_EXTRA}
        key = f"{PROGRAM}/second.csv"

        # Every tool meets file B in the same state: file A already loaded its own way.
        log("file A through Dagster (fills users with the half file B shares)")
        first = run_child({**task, "db_url": url, "key": f"{PROGRAM}/first.csv"})
        measurements["ingest_first_into_empty"] = first
        with psycopg_conn(url) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done since that upload
        sqlite_dir = work / "sqlite"
        sqlite_dir.mkdir()
        sqlite_url = f"sqlite:///{sqlite_dir / 'state.db'}"
        setup_program(sqlite_url)
        log("file A through Dagster on SQLite")
        measurements["sqlite_first_into_empty"] = run_child(
            {**task, "db_url": sqlite_url, "key": f"{PROGRAM}/first.csv"}
        )
        log("file A with dlt and with pandas (the peers' starting state)")
        dlt_dir = work / "dlt_state"
        measurements["dlt_first"] = run_child(
            {"kind": "dlt", "db_url": peers_url, "path": file_a["path"], "pipelines_dir": str(dlt_dir)}
        )
        measurements["pandas_first"] = run_child({"kind": "pandas", "db_url": peers_url, "path": file_a["path"]})
        with psycopg_conn(peers_url) as conn:
            dlt_prepare(conn)
            conn.execute("VACUUM ANALYZE")

        sample = int(FULL_SEED_SAMPLE * scale)
        log(f"seed-style baseline: {sample:,} rows one by one")
        seed = seed_style_baseline(url, uploads / "second.csv", sample)
        seed["extrapolated_seconds"] = seed["seconds"] / seed["rows"] * rows
        measurements["seed_style"] = seed

        payload, accepted = accepted_users_csv(uploads / "second.csv")
        columns = ["email", "first_name", "last_name", "birth_date", "birth_month", "birth_day", "phone_number"]
        runs: dict[str, list] = {k: [] for k in ("ingest", "reingest", "dlt", "pandas", "sqlite")}
        copies, floors, floor_rows, prints = [], [], None, {}
        for repeat in range(repeats):
            # One round = every tool once, each from a copy of the same state: noise hits all alike.
            copy_name = f"{name}_{repeat}"
            databases.append(copy_name)
            copy_url = clone_database(name, copy_name)
            checkpoint(copy_url)
            log(f"round {repeat + 1}/{repeats}: file B through Dagster")
            runs["ingest"].append(run_child({**task, "db_url": copy_url, "key": key}))
            if floor_rows is None:
                floor_rows = rows_written(copy_url, key)
                prints["postgres"] = fingerprint(copy_url)
            checkpoint(copy_url)
            log("file B again (nothing changed)")
            runs["reingest"].append(run_child({**task, "db_url": copy_url, "key": key}))
            log("COPY of file B's accepted users; COPY of every row the ingest wrote (the floor)")
            copies += copy_baseline(copy_url, payload, columns, max(1, COPY_REPEATS // repeats))
            floors.append(floor_copy(copy_url, floor_rows))
            if repeat == repeats - 1:
                with psycopg_conn(copy_url) as conn:
                    measurements["database_after"] = {
                        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in ("users", "passes_master", "upload_issues")
                    }
            drop_database(copy_name)

            peers_copy = f"{peers_name}_{repeat}"
            databases.append(peers_copy)
            peers_copy_url = clone_database(peers_name, peers_copy)
            checkpoint(peers_copy_url)
            log("file B with dlt (merge, Arrow -> csv -> COPY)")
            state = work / f"dlt_state_{repeat}"
            shutil.copytree(dlt_dir, state)
            runs["dlt"].append(
                run_child(
                    {"kind": "dlt", "db_url": peers_copy_url, "path": file_b["path"], "pipelines_dir": str(state)}
                )
            )
            shutil.rmtree(state)
            checkpoint(peers_copy_url)
            log("file B with pandas (to_sql + one upsert)")
            runs["pandas"].append(run_child({"kind": "pandas", "db_url": peers_copy_url, "path": file_b["path"]}))
            if repeat == 0:
                with psycopg_conn(peers_copy_url) as conn:
                    measurements["peers_after"] = {
                        "dlt_users": conn.execute("SELECT count(*) FROM dlt_bench.users").fetchone()[0],
                        "pandas_users": conn.execute("SELECT count(*) FROM pandas_users").fetchone()[0],
                    }
            drop_database(peers_copy)

            if repeat >= sqlite_repeats:
                continue
            log("file B through Dagster on SQLite")
            sqlite_copy = copy_sqlite(sqlite_dir / "state.db", sqlite_dir / f"round{repeat}.db")
            runs["sqlite"].append(run_child({**task, "db_url": sqlite_copy, "key": key}))
            if repeat == 0:
                prints["sqlite"] = fingerprint(sqlite_copy)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_dir / f'round{repeat}.db'}{suffix}").unlink(missing_ok=True)

        median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        for k, v in runs.items():
            measurements[k] = {
                "seconds": median[k],
                "runs": v,
                "peak_rss_gb": round(max(r["maxrss_bytes"] for r in v) / 1e9, 3),
            }
        copy_seconds, floor_seconds = min(copies), min(floors)
        measurements["copy_baseline"] = {
            "rows": accepted,
            "bytes": len(payload),
            "seconds": copies,
            "best": copy_seconds,
            "rows_per_s": round(accepted / copy_seconds),
        }
        measurements["floor"] = {
            "seconds": floors,
            "best": floor_seconds,
            "rows": {t: data.count(b"\n") for t, data in floor_rows.items()},
            "bytes": sum(len(d) for d in floor_rows.values()),
        }
        measurements["fingerprints"] = prints
        measurements["fingerprints_check"] = check_fingerprints(prints, scale)
        ingest = median["ingest"]
        return {
            "ingest_vs_dlt": ingest / median["dlt"],
            "ingest_vs_pandas": ingest / median["pandas"],
            "ingest_vs_floor": ingest / floor_seconds,
            "reingest_vs_copy": median["reingest"] / copy_seconds,
            "ingest_peak_rss": max(r["maxrss_bytes"] for r in runs["ingest"]) / 1e9,
            "sqlite_vs_postgres": median["sqlite"] / ingest,
            "ingest_vs_copy": ingest / copy_seconds,
            "seed_style_vs_ours": seed["extrapolated_seconds"] / ingest,
        }
    finally:
        for database in databases:
            drop_database(database)


def check_fingerprints(prints: dict, scale: float) -> dict:
    """SQLite and Postgres must end in the same state, and both in the state the reference code
    left (benchmarks/fingerprints.json, per scale; --record-fingerprints writes it)."""
    check = {"sqlite_equals_postgres": prints.get("sqlite") == prints.get("postgres")}
    reference = json.loads(FINGERPRINTS_PATH.read_text()) if FINGERPRINTS_PATH.exists() else {}
    if str(scale) in reference:
        check["postgres_equals_reference"] = prints.get("postgres") == reference[str(scale)]
    if RECORD_FINGERPRINTS:
        reference[str(scale)] = prints["postgres"]
        FINGERPRINTS_PATH.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
        check["recorded"] = True
    for name, ok in check.items():
        if ok is False:
            log(f"FINGERPRINT MISMATCH: {name} ({json.dumps(prints)})")
    return check


# --- birthday cases ------------------------------------------------------------------------------


def load_birthday_data(url: str, passes: int) -> dict:
    """Programs, users and passes straight in SQL: 100 programs, passes/5 users with 5 passes each."""
    users = passes // PASSES_PER_USER
    started = time.perf_counter()
    with psycopg_conn(url) as conn:
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
    url = create_database(name)
    try:
        engine = make_engine(url)
        migrate(engine)
        log(f"loading {passes:,} passes in {PROGRAMS} programs with generate_series")
        measurements["birthday_data"] = load_birthday_data(url, passes)

        now = datetime.fromisoformat(FROZEN_NOW)
        today = now.date()
        with engine.connect() as conn:  # warm the pool
            conn.exec_driver_sql("SELECT 1")
        checkpoint(url)
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

        checkpoint(url)
        # A run's Dagster cost does not shrink with the data, so a quick run backfills fewer programs
        # (one at --scale 0.1) and scales the time to ten; the full run measures all ten.
        runs = max(1, round(BACKFILL_PROGRAMS * scale))
        log(f"backfill {BACKFILL_DAYS} days x {runs} program(s) through Dagster")
        programs = [f"p{p:03d}" for p in range(runs)]
        task = {
            "kind": "backfill",
            "db_url": url,
            "work_dir": str(work),
            "programs": programs,
            **CHILD_EXTRA,
            "start": (today - timedelta(days=BACKFILL_DAYS - 1)).isoformat(),
            "end": today.isoformat(),
            "now": FROZEN_NOW,
            "selection": ["birthday_log"],
        }
        backfill = run_child(task)
        backfill["programs"] = runs
        backfill["scaled_to_programs"] = BACKFILL_PROGRAMS
        measurements["birthday_backfill"] = backfill
        with psycopg_conn(url) as conn:
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
        drop_database(name)


# --- report --------------------------------------------------------------------------------------


def _met(value: float, target: float | None, compare: str) -> bool | None:
    if target is None:
        return None
    return value <= target if compare == "<=" else value >= target


def _seconds(runs: list) -> list:
    return [round(r["seconds"], 2) for r in runs]


def report(values: dict, scale: float, machine: dict, measurements: dict) -> dict:
    rows, passes = int(FULL_ROWS * scale), int(FULL_PASSES * scale)
    results = {}
    lines = [f"{'case':<68} {'value':>10} {'unit':<9} {'target':>7}  met", "-" * 102]
    for case, unit, target, compare, title in CASES:
        if case not in values:
            continue
        value = values[case]
        met = _met(value, target, compare)
        results[case] = {"value": round(value, 3), "unit": unit, "target": target, "compare": compare, "met": met}
        label = title.format(rows=f"{rows:,}", passes=f"{passes:,}")
        shown_target = f"{compare} {target}" if target is not None else "info"
        shown_met = {True: "yes", False: "NO", None: "-"}[met]
        lines.append(f"{label:<68} {value:>10.3f} {unit:<9} {shown_target:>7}  {shown_met}")
    print("\n".join(lines))
    info = []
    if "ingest" in measurements:
        m = measurements
        info.append(
            f"file B medians: ours {m['ingest']['seconds']:.2f} s {_seconds(m['ingest']['runs'])}, again "
            f"{m['reingest']['seconds']:.2f} s {_seconds(m['reingest']['runs'])}, dlt {m['dlt']['seconds']:.2f} s "
            f"{_seconds(m['dlt']['runs'])}, pandas {m['pandas']['seconds']:.2f} s {_seconds(m['pandas']['runs'])}, "
            f"ours on SQLite {m['sqlite']['seconds']:.2f} s {_seconds(m['sqlite']['runs'])}"
        )
        info.append(
            f"floor {m['floor']['best']:.2f} s ({m['floor']['rows']}), COPY of the accepted users "
            f"{m['copy_baseline']['best']:.2f} s ({m['copy_baseline']['rows']:,} rows), seed-style "
            f"{m['seed_style']['extrapolated_seconds']:.0f} s (from {m['seed_style']['rows']:,} rows), first ingest "
            f"into empty users {m['ingest_first_into_empty']['seconds']:.2f} s"
        )
        info.append(
            "peak RSS GB: "
            + ", ".join(f"{k} {m[k]['peak_rss_gb']}" for k in ("ingest", "reingest", "sqlite", "dlt", "pandas"))
        )
        info.append(f"fingerprints: {m['fingerprints_check']}")
    if "birthday_partition" in measurements:
        m = measurements
        info.append(
            f"birthday partitions {[f'{s:.3f}' for s in m['birthday_partition']['seconds']]} s, reruns "
            f"{[f'{s:.3f}' for s in m['birthday_partition']['rerun_seconds']]} s; one day x {PROGRAMS} programs "
            f"{m['birthday_one_day_all_programs']['seconds']:.2f} s; backfill runs "
            f"{[r['seconds'] for r in m['birthday_backfill']['runs']]} s"
        )
    info.append(
        f"load average at start {machine.get('load_average_at_start')}, at end {machine.get('load_average_at_end')}"
    )
    for line in info:
        print(line)
    if scale != 1.0:
        print(
            f"note: the targets are defined at --scale 1.0; at {scale} a run's fixed Dagster cost weighs "
            "more against a smaller COPY, so the ratios read worse than at full scale"
        )
    document = {
        **results,
        "scale": scale,
        "targets_defined_at_scale": 1.0,
        "machine": machine,
        "measurements": measurements,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the issue's sizes, 0.1 = bench-quick")
    parser.add_argument("--only", choices=("ingestion", "birthday"), help="run one half only")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--dagster-storage",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the runs' Dagster instance: a temp SQLite one (as `loyalty` and the tests use), "
        "or a database of its own on the same server (as deploy/dagster.yaml)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="measured ingests, each from a copy of the same database state; the median "
        "counts (default 3, 2 below --scale 0.5)",
    )
    parser.add_argument(
        "--sqlite-repeats",
        type=int,
        default=1,
        help="rounds that also ingest file B on SQLite (default 1: 1M rows on SQLite take "
        "minutes, and make bench must stay under 15)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--emit-partition-subsets",
        action="store_true",
        help="set DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1 for the runs (one planned "
        "event per range run instead of one per partition; a Dagster deployment setting)",
    )
    parser.add_argument(
        "--record-fingerprints",
        action="store_true",
        help="store this run's result fingerprints as the reference for its scale "
        "(benchmarks/fingerprints.json); later runs are checked against it",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    if not 0 < args.scale <= 1.0:
        parser.error("--scale must be in (0, 1]")
    if args.repeats is None:
        args.repeats = 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    global RECORD_FINGERPRINTS
    RECORD_FINGERPRINTS = args.record_fingerprints

    bench_id = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="loyalty_bench_"))
    started = time.perf_counter()
    values: dict = {}
    measurements: dict = {}
    dagster_db = None
    try:
        machine = machine_info(ADMIN_URL)
        machine["dagster_storage"] = args.dagster_storage
        if args.emit_partition_subsets:
            CHILD_ENV["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "1"
        machine["dagster_env"] = dict(CHILD_ENV)
        machine["load_average_at_start"] = os.getloadavg()
        if args.dagster_storage == "postgres":
            from sqlalchemy.engine import make_url

            dagster_db = f"loyalty_bench_{bench_id}_dagster"
            CHILD_EXTRA["dagster_url"] = (
                make_url(create_database(dagster_db))
                .set(drivername="postgresql+psycopg2")
                .render_as_string(hide_password=False)
            )
        if args.only in (None, "ingestion"):
            values.update(
                ingestion_cases(
                    args.scale, work, bench_id, measurements, args.repeats, min(args.sqlite_repeats, args.repeats)
                )
            )
        if args.only in (None, "birthday"):
            values.update(birthday_cases(args.scale, work, bench_id, measurements))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if dagster_db:
            drop_database(dagster_db)
    machine["load_average_at_end"] = os.getloadavg()
    measurements["total_seconds"] = round(time.perf_counter() - started, 1)
    document = report(values, args.scale, machine, measurements)
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {args.output} ({measurements['total_seconds']} s)")
    missed = [k for k, v in document.items() if isinstance(v, dict) and v.get("met") is False]
    check = measurements.get("fingerprints_check", {})
    missed += [f"fingerprint {k}" for k, ok in check.items() if ok is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
