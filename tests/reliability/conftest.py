"""Fixtures of the reliability suite: throwaway PostgreSQL databases, and the counters the suite
reports at the end (cases tried, kills survived, concurrent runs, invariant violations)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loyalty_pipeline.db import make_engine, migrate
from tests.conftest import APP_TABLES, _admin_engine
from tests.reliability.helpers import STATS


@pytest.fixture(scope="session")
def pg_db(postgres_server_url):
    """Factory: `pg_db(purpose)` is the URL of a migrated PostgreSQL database for that purpose,
    empty on every call (other sessions on it are ended, the tables truncated). Databases are
    reused by purpose, because creating and dropping one costs more than most tests here.
    Depends on the shared `postgres_server_url`: no server means skip (or fail under CI=true)."""
    admin = _admin_engine()
    run = uuid.uuid4().hex[:8]
    urls: dict[str, str] = {}

    def get(purpose: str) -> str:
        if purpose not in urls:
            name = f"loyalty_rel_{run}_{purpose}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            urls[purpose] = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
            engine = make_engine(urls[purpose])
            migrate(engine)
            engine.dispose()
            return urls[purpose]
        with admin.connect() as conn:  # e.g. the backend of a killed worker, still winding down
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": make_url(urls[purpose]).database},
            )
        engine = make_engine(urls[purpose])
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} CASCADE"))
        engine.dispose()
        return urls[purpose]

    yield get
    with admin.connect() as conn:
        for url in urls.values():
            name = make_url(url).database
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not STATS:
        return
    line = (
        "reliability: cases tried {cases_tried}, kills survived {kills_survived} "
        "({kills_mid_transaction} mid-transaction), backends terminated {backends_terminated}, "
        "concurrent runs {concurrent_runs}, invariant violations {invariant_violations} "
        "(fast CSV path cross-checked on {fast_path_cases} files)"
    ).format_map(
        {
            k: STATS.get(k, 0)
            for k in (
                "cases_tried",
                "kills_survived",
                "kills_mid_transaction",
                "backends_terminated",
                "concurrent_runs",
                "invariant_violations",
                "fast_path_cases",
            )
        }
    )
    terminalreporter.write_sep("-", "reliability counts")
    terminalreporter.write_line(line)
    if getattr(config, "cache", None) is not None:
        config.cache.set("reliability/stats", dict(STATS))
