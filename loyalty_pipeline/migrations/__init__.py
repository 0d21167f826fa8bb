"""Alembic migrations of the application database (PostgreSQL and SQLite).

Revisions live in versions/ and stay the unit of migration; their SQL lives in the top-level sql/
folder as plain files, each readable and runnable by hand: what reads the same on both databases in
sql/common/, what differs in sql/postgresql/ and sql/sqlite/. A revision's files are named after it
(NNNN_name.sql), or numbered in the order they run where its shared and per-dialect statements take
turns (NNNN_name.1.sql, NNNN_name.2.sql, ... across the two folders); so all of sql/common/ and
sql/<dialect>/ together, in the order of their file names, is every revision in turn (revision_files).

A revision's module is its Alembic variables and one line, `upgrade, downgrade =
sql_revision("NNNN_name")`, and keeps in Python only what SQL cannot say (0006's refusal that lists
the rows a person must fix, passed as `first`).

sql/ is found through loyalty_pipeline/sql: a link to ../sql in a checkout (and so in an editable
install), a copy of the files in a built wheel (pyproject's package-data)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from alembic import op

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
COMMON = "common"  # sql/common/: the statements that read the same on both databases
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def dialect() -> str:
    return op.get_bind().dialect.name


def sql_revision(
    name: str, *, first: Callable[[], None] | None = None
) -> tuple[Callable[[], None], Callable[[], None]]:
    """The upgrade() and downgrade() of revision `name` (its file's stem), which Alembic looks up as
    module attributes: upgrade runs `first` (if any), then the revision's SQL (run_sql); downgrade
    refuses, as the schema migrates forward only."""

    def upgrade() -> None:
        if first is not None:
            first()
        run_sql(name)

    upgrade.__doc__ = f"Revision {name}: its SQL files."
    return upgrade, forward_only


def forward_only() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")


def revision_files(name: str, dialect: str) -> list[Path]:
    """The SQL files of revision `name` on `dialect`, in the order they run: its files in sql/common/
    and sql/<dialect>/ by file name - NNNN_name.sql alone, or the steps NNNN_name.1.sql,
    NNNN_name.2.sql, ... (each in one of the two folders)."""
    files = sorted(
        (path for folder in (COMMON, dialect) for path in (SQL_DIR / folder).glob(f"{name}.*sql")),
        key=lambda path: path.name,
    )
    if not files:
        raise FileNotFoundError(f"revision {name} has no SQL file in sql/{COMMON}/ or sql/{dialect}/")
    steps = [path.name[len(name) : -len(".sql")] for path in files]  # "" alone, or ".1", ".2", ...
    if steps != ([""] if len(files) == 1 else [f".{step}" for step in range(1, len(files) + 1)]):
        found = ", ".join(str(path.relative_to(SQL_DIR)) for path in files)
        raise ValueError(f"revision {name} on {dialect}: one file {name}.sql or steps {name}.1.sql, .2, ...: {found}")
    return files


def run_sql(name: str) -> None:
    """Execute revision `name`'s SQL files (revision_files) on the migration's connection, in its
    transaction.

    PostgreSQL takes each file whole, as psql or Supabase's SQL editor would: one query without
    parameters, which psycopg sends as it is (function bodies between $$ are never cut, and no
    `:name` or `%` is read as a parameter). SQLite's driver runs one statement a call, so a file is
    cut by sqlite_statements (executescript would commit the migration's transaction)."""
    conn = op.get_bind()
    for path in revision_files(name, conn.dialect.name):
        script = path.read_text(encoding="utf-8")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(script)
            continue
        for statement in sqlite_statements(script):
            conn.exec_driver_sql(statement)


def sqlite_statements(script: str) -> list[str]:
    """The statements of a SQLite script, each with its closing semicolon, cut where SQLite's own
    tokenizer (sqlite3.complete_statement) says one ends: never on a semicolon inside a trigger's
    BEGIN ... END, a string, a quoted name or a comment. A comment before a statement stays with it;
    after the last statement only comments may follow."""
    statements, start = [], 0
    for semicolon in re.finditer(";", script):
        if sqlite3.complete_statement(script[start : semicolon.end()]):
            statements.append(script[start : semicolon.end()].strip())
            start = semicolon.end()
    if _COMMENTS.sub("", script[start:]).strip():
        raise ValueError(f"SQL script ends with a statement that has no closing semicolon: {script[start:][:80]!r}")
    return statements
