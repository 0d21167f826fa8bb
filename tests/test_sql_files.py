"""sql/ is the schema: a database built by the Alembic revisions (db.migrate) and one built by running
the files by hand - sql/common/ and sql/<dialect>/ together, in the order of their file names, as the
README's "Migrations" says (PostgreSQL: psql in one transaction; SQLite: sqlite3's own script runner) -
are the same schema, and that order is the revisions' own; and the splitter the SQLite revisions use
cuts a script where SQLite does."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess

import psycopg
import pytest
from sqlalchemy import text

from loyalty_pipeline import migrations
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.migrations import COMMON, SQL_DIR, revision_files, sqlite_statements

DIALECTS = ("postgresql", "sqlite")
REVISIONS = sorted(p.stem for p in (SQL_DIR.parent / "migrations" / "versions").glob("[0-9]*.py"))


# The README's by-hand commands list the files to run, in order, with this (in the folder holding sql/).
BY_HAND_LISTING = "ls sql/common/*.sql sql/{dialect}/*.sql | LC_ALL=C sort -t/ -k3"


def by_hand(dialect: str) -> list:
    listing = BY_HAND_LISTING.format(dialect=dialect)
    result = subprocess.run(listing, shell=True, cwd=SQL_DIR.parent, check=True, capture_output=True, text=True)
    return [SQL_DIR.parent / line for line in result.stdout.split()]


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
    built, by_hand_url = new_postgres_database(), new_postgres_database()
    engine = make_engine(built)
    migrate(engine)
    engine.dispose()
    files = by_hand("postgresql")
    if shutil.which("psql"):  # the README's command: every file, in order, in one transaction
        options = [arg for path in files for arg in ("-f", path)]
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", by_hand_url, *options]
        subprocess.run(command, check=True, capture_output=True)
    else:  # as Supabase's SQL editor sends a file: its whole text, one query
        with psycopg.connect(by_hand_url) as conn:
            for path in files:
                conn.execute(path.read_text(encoding="utf-8"))
    expected, actual = postgres_schema(built), postgres_schema(by_hand_url)
    assert [len(expected[part]) for part in ("triggers", "functions")] == [4, 3]  # (what is compared is there)
    for part in _POSTGRES_SCHEMA:
        assert actual[part] == expected[part], part


def test_sqlite_revisions_build_what_the_sql_files_build_by_hand(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'built.db'}")
    migrate(engine)
    engine.dispose()
    with sqlite3.connect(tmp_path / "by_hand.db") as conn:
        for path in by_hand("sqlite"):
            conn.executescript(path.read_text(encoding="utf-8"))
    expected = sqlite_schema(tmp_path / "built.db")
    assert len([row for row in expected if row[0] == "trigger"]) == 7
    assert sqlite_schema(tmp_path / "by_hand.db") == expected


def test_by_hand_the_files_run_in_the_revisions_order():
    readme = (SQL_DIR.parent.parent / "README.md").read_text(encoding="utf-8")
    for dialect in DIALECTS:
        assert BY_HAND_LISTING.format(dialect=dialect) in readme, dialect
        assert by_hand(dialect) == [path for name in REVISIONS for path in revision_files(name, dialect)], dialect


def test_every_revision_has_its_sql_for_both_dialects_and_every_file_a_revision():
    # revision_files refuses a revision without SQL, or whose files are not NNNN_name.sql alone or steps .1, .2, ...
    files = {path for name in REVISIONS for dialect in DIALECTS for path in revision_files(name, dialect)}
    assert files == {path for folder in (COMMON, *DIALECTS) for path in (SQL_DIR / folder).glob("*.sql")}
    for path in [*(SQL_DIR / COMMON).glob("*.sql"), *(SQL_DIR / "postgresql").glob("*.sql")]:
        assert not re.search(r"\{\w+\}", path.read_text(encoding="utf-8")), path.name  # runnable as written


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ([], "has no SQL file"),
        (["common/0010_x.sql", "sqlite/0010_x.sql"], "one file 0010_x.sql or steps"),  # which runs first?
        (["common/0010_x.1.sql", "sqlite/0010_x.3.sql"], "one file 0010_x.sql or steps"),  # a step missing
        (["sqlite/0010_x.1.sql"], "one file 0010_x.sql or steps"),
    ],
)
def test_a_revisions_files_say_their_order(tmp_path, monkeypatch, files, problem):
    for name in files:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("SELECT 1;\n")
    monkeypatch.setattr(migrations, "SQL_DIR", tmp_path)
    with pytest.raises((FileNotFoundError, ValueError), match=problem):
        revision_files("0010_x", "sqlite")


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
