"""Shared fixtures: every database test runs on the embedded SQLite file and on PostgreSQL.

PostgreSQL tests use a throwaway database created on LOYALTY_TEST_POSTGRES_URL's server for the
session. Without a reachable server they are skipped with the reason - except under CI=true,
where a missing database is a failure, not a skip."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
from dagster import instance_for_test
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.programs import save_program
from tests.factories import HttpReceiver, answers, folder_settings, write_csv  # noqa: F401 (write_csv: kept importable from here)

POSTGRES_URL = os.environ.get("LOYALTY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
APP_TABLES = ("notifications", "birthday_logs", "upload_issues", "uploads", "passes_master", "users", "programs")


def _admin_engine():
    return create_engine(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_server_url():
    """URL of a fresh database on the test server, dropped at the end of the session."""
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any connection problem means "no server"
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: Postgres tests must run)", pytrace=False)
        pytest.skip(reason)
    name = f"loyalty_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def _postgres_schema(postgres_server_url):
    engine = make_engine(postgres_server_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """An empty, migrated application database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'loyalty.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        return url
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def postgres_url(_postgres_schema) -> str:
    """The empty PostgreSQL application database alone, for what only PostgreSQL does."""
    with _postgres_schema.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} CASCADE"))
    return _postgres_schema.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request, tmp_path):
    """A database of each kind with no schema at all (PostgreSQL: created for this test, then dropped)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("new_postgres_database")()


@pytest.fixture
def new_postgres_database(postgres_server_url):
    """Makes empty PostgreSQL databases for this test, one a call (its URL); all dropped after it."""
    admin, names = _admin_engine(), []

    def new() -> str:
        names.append(f"loyalty_empty_{uuid.uuid4().hex[:12]}")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{names[-1]}"'))
        return make_url(postgres_server_url).set(database=names[-1]).render_as_string(hide_password=False)

    yield new
    with admin.connect() as conn:
        for name in names:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_url):
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def loyalty(db_url, monkeypatch, capsys):
    """Run the `loyalty` command line on `db_url` (UTC, a pinned clock): (exit code, stdout, stderr)."""
    from loyalty_pipeline import cli

    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.setenv("LOYALTY_TIMEZONE", "UTC")
    monkeypatch.setenv("LOYALTY_FROZEN_NOW", "2026-11-26T10:00:00+00:00")

    def run(*argv):
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_env(db_url, tmp_path) -> dict:
    """The environment of a `loyalty` command run in a subprocess on `db_url` (tests.test_cli.loyalty)."""
    return {
        "LOYALTY_DATABASE_URL": db_url,
        "LOYALTY_UPLOADS_DIR": str(tmp_path / "uploads"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def program(engine):
    with engine.begin() as conn:
        return save_program(
            conn,
            "joes-pizza",
            "Joe's Pizza",
            birthday_bot_enabled=True,
            birthday_reward_points=50,
            date_order="MDY",
            default_phone_region="US",
        )


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    """Settings on the test database, with every folder under tmp_path."""
    return folder_settings(db_url, tmp_path)


@pytest.fixture
def instance():
    """A throwaway Dagster instance."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def http_receiver():
    """http_receiver(*plan) or http_receiver(answer=...) starts a local webhook endpoint
    (tests.factories.HttpReceiver); each is stopped at teardown."""
    started: list[HttpReceiver] = []

    def start(*plan, answer=None) -> HttpReceiver:
        receiver = HttpReceiver(answer or answers(*(plan or (200,))))
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 for the session (tests.buckets)."""
    from tests.buckets import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server):
    """A fresh, empty bucket on the test S3 server; uploads go under its `uploads/` prefix."""
    from tests.buckets import new_bucket

    return new_bucket(s3_server)


@pytest.fixture
def bucket_settings(settings, bucket) -> Settings:
    """`settings` with the uploads in `bucket` (LOYALTY_UPLOADS_URL and the S3 connection)."""
    return bucket.settings(settings)
