"""Alembic migrations of the application database (PostgreSQL and SQLite).

Revisions live in versions/ and stay the unit of migration; their SQL lives in the top-level sql/
folder, written out per dialect (sql/postgresql/NNNN_*.sql, sql/sqlite/NNNN_*.sql: one file a
revision, each readable and runnable by hand). A revision's module is its Alembic variables and one
line, `upgrade, downgrade = sql_revision("NNNN_name")`, and keeps in Python only what SQL cannot say
(0006's refusal that lists the rows a person must fix, passed as `first`).

sql/ is found through loyalty_pipeline/sql: a link to ../sql in a checkout (and so in an editable
install), a copy of the files in a built wheel (pyproject's package-data)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from alembic import op

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
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


def run_sql(name: str) -> None:
    """Execute sql/<dialect>/<name>.sql on the migration's connection, in its transaction.

    PostgreSQL takes the file whole, as psql or Supabase's SQL editor would: one query without
    parameters, which psycopg sends as it is (function bodies between $$ are never cut, and no
    `:name` or `%` is read as a parameter). SQLite's driver runs one statement a call, so the file
    is cut by sqlite_statements (executescript would commit the migration's transaction)."""
    conn = op.get_bind()
    script = (SQL_DIR / conn.dialect.name / f"{name}.sql").read_text(encoding="utf-8")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(script)
        return
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
