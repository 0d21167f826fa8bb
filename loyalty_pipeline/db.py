"""Database access: engines for PostgreSQL (production) and SQLite (embedded default), the
migrations in sql/, and the few helpers that differ between the two dialects."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import polars as pl
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"

# A v4-shaped uuid built from SQLite's random bytes, so ids look the same on both databases.
_SQLITE_UUID = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
_SQLITE_REWRITES = [
    (re.compile(r"gen_random_uuid\(\)"), _SQLITE_UUID),
    (re.compile(r"\bnow\(\)"), "CURRENT_TIMESTAMP"),
    (re.compile(r"\btimestamptz\b"), "timestamp"),
    (re.compile(r"\buuid\b(?= )"), "text"),
    # SQLite has no ADD COLUMN IF NOT EXISTS; schema_migrations already guarantees it runs once.
    (re.compile(r"ADD COLUMN IF NOT EXISTS"), "ADD COLUMN"),
]
# Functions, and column changes that SQLite cannot make without rebuilding the table: they tune
# Postgres' write path (the embedded SQLite database keeps its foreign keys and random ids).
_POSTGRES_ONLY = re.compile(r"^(CREATE (OR REPLACE )?FUNCTION|ALTER TABLE \w+ (DROP CONSTRAINT|ALTER COLUMN))")
MIGRATION_LOCK_KEY = 7_311_202_601


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


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def _for_dialect(conn: Connection, statement: str) -> str:
    if is_postgres(conn):
        return statement
    for pattern, replacement in _SQLITE_REWRITES:
        statement = pattern.sub(replacement, statement)
    return statement


def migrate(engine: Engine) -> list[str]:
    """Apply the sql/NNN_*.sql files not yet applied, in order, in one transaction.
    Idempotent; concurrent callers on Postgres serialise on an advisory lock."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        if is_postgres(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.exec_driver_sql(
            _for_dialect(
                conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
        )
        applied = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
        for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql")):
            version = path.stem
            if version in applied:
                continue
            for statement in _statements(path.read_text(encoding="utf-8")):
                if not is_postgres(conn) and _POSTGRES_ONLY.match(statement):
                    continue
                conn.exec_driver_sql(_for_dialect(conn, statement))
            conn.execute(text("INSERT INTO schema_migrations (version) VALUES (:v)"), {"v": version})
            applied_now.append(version)
    return applied_now


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn


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
                copy.write(buffer.getvalue())
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
