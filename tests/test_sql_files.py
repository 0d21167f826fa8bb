"""sql/ is the schema: a database built by the Alembic revisions (db.migrate) and one built by running
sql/<dialect>/*.sql by hand, in order (PostgreSQL: `psql -f` each file; SQLite: sqlite3's own script
runner), are the same schema; and the splitter the SQLite revisions use cuts a script where SQLite does."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess

import psycopg
import pytest
from sqlalchemy import text

from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.migrations import SQL_DIR, sqlite_statements

# Everything a schema is made of, in the catalogue's own words (the revisions' bookkeeping table,
# absent from a database built by hand, left out).
_POSTGRES_SCHEMA = {
    "columns": """
        SELECT table_name, ordinal_position, column_name, data_type, udt_name, column_default, is_nullable
        FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'alembic_version'""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version'""",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
}


def postgres_schema(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        schema = {part: sorted(map(tuple, conn.execute(text(query)))) for part, query in _POSTGRES_SCHEMA.items()}
    engine.dispose()
    return schema


def sqlite_schema(path) -> list[tuple]:
    """sqlite_master's rows (each statement as SQLite keeps it), whitespace collapsed."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name <> 'alembic_version' ORDER BY 1, 2"
        ).fetchall()
    return [(kind, name, table, sql and re.sub(r"\s+", " ", sql)) for kind, name, table, sql in rows]


def test_postgres_revisions_build_what_the_sql_files_build_by_hand(new_postgres_database):
    built, by_hand = new_postgres_database(), new_postgres_database()
    engine = make_engine(built)
    migrate(engine)
    engine.dispose()
    for path in sorted((SQL_DIR / "postgresql").glob("*.sql")):
        if shutil.which("psql"):
            command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", by_hand, "-f", path]
            subprocess.run(command, check=True, capture_output=True)
        else:  # as Supabase's SQL editor sends a file: its whole text, one query
            with psycopg.connect(by_hand) as conn:
                conn.execute(path.read_text(encoding="utf-8"))
    expected, actual = postgres_schema(built), postgres_schema(by_hand)
    assert [len(expected[part]) for part in ("triggers", "functions")] == [4, 3]  # (what is compared is there)
    for part in _POSTGRES_SCHEMA:
        assert actual[part] == expected[part], part


def test_sqlite_revisions_build_what_the_sql_files_build_by_hand(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'built.db'}")
    migrate(engine)
    engine.dispose()
    with sqlite3.connect(tmp_path / "by_hand.db") as conn:
        for path in sorted((SQL_DIR / "sqlite").glob("*.sql")):
            conn.executescript(path.read_text(encoding="utf-8"))
    expected = sqlite_schema(tmp_path / "built.db")
    assert len([row for row in expected if row[0] == "trigger"]) == 7
    assert sqlite_schema(tmp_path / "by_hand.db") == expected


def test_every_revision_has_its_sql_for_both_dialects():
    revisions = sorted(p.stem for p in (SQL_DIR.parent / "migrations" / "versions").glob("[0-9]*.py"))
    for dialect in ("postgresql", "sqlite"):
        assert sorted(p.stem for p in (SQL_DIR / dialect).glob("*.sql")) == revisions, dialect
    for path in (SQL_DIR / "postgresql").glob("*.sql"):  # runnable as written: nothing left to fill in
        assert not re.search(r"\{\w+\}", path.read_text(encoding="utf-8")), path.name


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        ("CREATE TABLE a (x int);\nCREATE TABLE b (y int);", ["CREATE TABLE a (x int);", "CREATE TABLE b (y int);"]),
        (  # a trigger's body: its inner semicolons belong to it
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\n  DELETE FROM b;\nEND;\nSELECT 1;",
            ["CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\n  DELETE FROM b;\nEND;", "SELECT 1;"],
        ),
        (  # semicolons in strings, quoted names and comments
            "INSERT INTO a VALUES (';', \"x;y\"); -- a; comment\n/* b; */ SELECT 'it''s; fine';",
            ["INSERT INTO a VALUES (';', \"x;y\");", "-- a; comment\n/* b; */ SELECT 'it''s; fine';"],
        ),
        ("-- a file that only explains\n-- why it has nothing to do\n", []),
        ("SELECT 1; -- trailing words\n", ["SELECT 1;"]),
    ],
)
def test_the_sqlite_splitter_cuts_where_sqlite_does(script, statements):
    assert sqlite_statements(script) == statements


def test_the_sqlite_splitter_refuses_an_unterminated_statement():
    with pytest.raises(ValueError, match="no closing semicolon"):
        sqlite_statements("SELECT 1;\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END")
