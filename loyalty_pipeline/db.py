"""Database access: engines for PostgreSQL (production) and SQLite (embedded default), the Alembic
migrations in loyalty_pipeline/migrations/, and the few helpers that differ between the two dialects."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# Taken around every init-db on PostgreSQL, so two deployments starting at once apply each revision once.
MIGRATION_LOCK_KEY = 7_311_202_601
# The hand-written runner that came before Alembic recorded its sql/NNN_*.sql files in schema_migrations;
# a database it created is adopted at the revision that replaced its newest file.
_RUNNER_VERSIONS = {
    "001_foundation": "0001",
    "002_birthday_bot": "0002",
    "003_reward_write_path": "0003",
    "004_time_ordered_ids": "0004",
    "005_csv_columns": "0005",
}


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets foreign keys, WAL and BEGIN IMMEDIATE so concurrent
    writers queue on the busy timeout instead of failing on lock upgrades."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # let the "begin" hook own transactions
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def db_time(conn: Connection, moment: datetime) -> datetime | str:
    """A timestamp parameter. SQLite stores text, so bind the same UTC text form that
    CURRENT_TIMESTAMP produces; comparisons then order correctly."""
    moment = moment.astimezone(timezone.utc)
    if is_postgres(conn):
        return moment
    return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """The Alembic configuration of the packaged revisions (loyalty_pipeline/migrations), usable
    from a checkout or an installed wheel; `connection` is the one env.py migrates."""
    config = AlembicConfig(stdout=sys.stdout)  # the stream of now, not of import time
    config.set_main_option("script_location", "loyalty_pipeline:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _adopt_runner_database(conn: Connection) -> str | None:
    """Stamp a database made by the old runner at the revision of its newest applied file."""
    if not inspect(conn).has_table("schema_migrations"):
        return None
    applied = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
    revisions = sorted(_RUNNER_VERSIONS[v] for v in applied if v in _RUNNER_VERSIONS)
    unknown = sorted(applied - set(_RUNNER_VERSIONS))
    if unknown:
        raise RuntimeError(f"schema_migrations lists files this version does not know: {', '.join(unknown)}")
    if not revisions:
        return None
    MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(alembic_config()), revisions[-1])
    return revisions[-1]


def migrate(engine: Engine) -> list[str]:
    """Upgrade the schema to the newest revision in one transaction and return the revisions applied.
    Idempotent; concurrent callers on Postgres serialise on an advisory lock; a database created by
    the hand-written runner is adopted in place first."""
    script = ScriptDirectory.from_config(alembic_config())
    with engine.begin() as conn:
        if is_postgres(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        current = _current_revision(conn) or _adopt_runner_database(conn)
        head = script.get_current_head()
        pending = [rev.revision for rev in script.iterate_revisions(head, current)] if current != head else []
        command.upgrade(alembic_config(conn), "head")
    return list(reversed(pending))


def own_timestamps(conn: Connection, writer: str) -> None:
    """Declare, for this transaction only, that its statements set users.updated_at and
    birth_date_set_at themselves (from a clock that a replay may pin), so the users triggers leave
    them alone (migration 0006). Call end_own_timestamps before commit."""
    if is_postgres(conn):
        conn.execute(text("SELECT set_config('loyalty.own_timestamps', 'on', true)"))
    else:
        conn.execute(text("INSERT INTO loyalty_own_timestamps (writer) VALUES (:writer)"), {"writer": writer})


def end_own_timestamps(conn: Connection) -> None:
    if not is_postgres(conn):  # (Postgres: the setting ends with the transaction)
        conn.execute(text("DELETE FROM loyalty_own_timestamps"))


def bulk_insert(conn: Connection, table: str, frame: pl.DataFrame) -> int:
    """Load `frame` into `table` (columns by name): COPY on Postgres, executemany on SQLite.
    `table` and the column names are identifiers chosen by this codebase, never by input data."""
    if frame.height == 0:
        return 0
    columns = ", ".join(f'"{name}"' for name in frame.columns)
    if is_postgres(conn):
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())  # (a view: getvalue() would copy the whole text)
        return frame.height
    placeholders = ", ".join("?" for _ in frame.columns)
    rows = frame.rows()
    conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
    return frame.height


def create_temp_table(conn: Connection, name: str, columns: Sequence[tuple[str, str]]) -> None:
    """A scratch table that lives for this transaction only."""
    body = ", ".join(f'"{col}" {sql_type}' for col, sql_type in columns)
    if is_postgres(conn):
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({body}) ON COMMIT DROP")
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({body})")


def create_temp_table_as(conn: Connection, name: str, query: str, params: dict) -> None:
    """A scratch table filled by `query`, living for this transaction only."""
    if is_postgres(conn):
        conn.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {query}"), params)
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        conn.execute(text(f"CREATE TEMP TABLE {name} AS {query}"), params)


# SQLSTATE classes where the server or the connection failed, not the statement: connection
# exceptions, transaction rollbacks (deadlock, serialization), insufficient resources, operator
# intervention (terminated backend, shutdown); 55P03 is a lock timeout.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work later can succeed (a retry policy should only cover these)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate == "55P03"
    sqlite_error = getattr(original, "sqlite_errorname", None)
    if sqlite_error:
        return sqlite_error.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    # No SQLSTATE at all: the driver could not reach the server or lost it mid-statement.
    return isinstance(error, (OperationalError, InterfaceError))
