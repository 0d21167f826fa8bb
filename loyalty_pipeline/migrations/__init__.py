"""Alembic migrations of the application database (PostgreSQL and SQLite).

Revisions live in versions/. Each writes its DDL out per dialect where the two differ; the few
type and default spellings that differ everywhere are the `{placeholders}` of DIALECT_WORDS, filled
from a fixed table (never from input)."""

from __future__ import annotations

from alembic import op

# A v4-shaped uuid built from SQLite's random bytes, so ids look the same on both databases.
_SQLITE_UUID = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
DIALECT_WORDS = {
    "postgresql": {"uuid": "uuid", "new_id": "gen_random_uuid()", "timestamptz": "timestamptz", "now": "now()"},
    "sqlite": {"uuid": "text", "new_id": _SQLITE_UUID, "timestamptz": "timestamp", "now": "CURRENT_TIMESTAMP"},
}


def dialect() -> str:
    return op.get_bind().dialect.name


def execute(*statements: str) -> None:
    """Run statements written with DIALECT_WORDS placeholders, one at a time (trigger and
    function bodies are single statements: nothing splits them)."""
    words = DIALECT_WORDS[dialect()]
    for statement in statements:
        op.execute(statement.format(**words))


def execute_for(*, postgresql: list[str] | tuple[str, ...] = (), sqlite: list[str] | tuple[str, ...] = ()) -> None:
    """Run the statements written for the current dialect verbatim."""
    for statement in {"postgresql": postgresql, "sqlite": sqlite}[dialect()]:
        op.execute(statement)
