"""What every benchmark case runs on: throw-away PostgreSQL databases on LOYALTY_BENCH_POSTGRES_URL,
child processes (a fresh interpreter per measured task, which reports its own timings and peak
RSS), the Dagster instance and settings those children use, and the machine's description.

A child is `benchmarks/run.py --child '<task as JSON>'`; the task's "kind" names the function that
runs it (CHILD_TASKS), imported only in the child, after the import hook that keeps the peers'
packages out of the pipeline's own children.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "benchmarks" / "run.py"
ADMIN_URL = os.environ.get("LOYALTY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Every case's data is generated for this instant, and every run's clock is pinned to it.
FROZEN_NOW = "2026-06-15T12:00:00+00:00"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
RESULT_MARK = "BENCH_RESULT "
CHILD_EXTRA: dict = {}  # e.g. the Dagster storage URL, passed to every child task
CHILD_ENV: dict = {}  # environment variables of the child processes (Dagster deployment settings)

# kind -> "module:function" of the child task (imported in the child only).
CHILD_TASKS = {
    "ingest": "benchmarks.ingestion_cases:child_ingest",
    "backfill": "benchmarks.birthday_cases:child_backfill",
    "dlt": "benchmarks.peers:child_dlt",
    "pandas": "benchmarks.peers:child_pandas",
}
PIPELINE_TASKS = ("ingest", "backfill")  # the pipeline's own children: runtime dependencies only


# --- databases -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sqlalchemy_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def admin_engine():
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(ADMIN_URL), isolation_level="AUTOCOMMIT")


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


# --- child processes -----------------------------------------------------------------------------


def run_child(task: dict) -> dict:
    """Run one task in a fresh interpreter; it reports its own timings and peak RSS."""
    proc = subprocess.run(
        [sys.executable, str(RUN_PY), "--child", json.dumps(task)],
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
    if kind in PIPELINE_TASKS:
        sys.meta_path.insert(0, _RuntimeDependenciesOnly())
    module, function = CHILD_TASKS[kind].split(":")
    result = getattr(importlib.import_module(module), function)(task)
    result["maxrss_bytes"] = peak_rss_bytes()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


# --- what the children run on --------------------------------------------------------------------


def bench_settings(task: dict):
    from loyalty_pipeline.config import Settings

    work = Path(task["work_dir"])
    return Settings(
        database_url=task["db_url"],
        uploads_dir=work / "uploads",
        timezone="UTC",
        reports_dir=work / "reports",
        notification_log=work / "notifications.jsonl",
    )


def bench_instance(task: dict):
    """A temporary Dagster instance: SQLite storage in the work directory (what `loyalty` and the
    tests use), or --dagster-storage postgres: a database of its own, as deploy/dagster.yaml does."""
    from dagster import DagsterInstance

    home = Path(task["work_dir"]) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    overrides: dict = {"telemetry": {"enabled": False}}
    if task.get("dagster_url"):
        overrides["storage"] = {"postgres": {"postgres_url": task["dagster_url"]}}
    return DagsterInstance.local_temp(tempdir=str(home), overrides=overrides)


def run_metadata(result) -> dict:
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        for key, value in materialization.metadata.items():
            value = getattr(value, "value", value)
            if isinstance(value, (int, float, str)) and not (isinstance(value, str) and len(value) > 200):
                out[f"{materialization.asset_key.to_user_string()}.{key}"] = value
    return out


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
