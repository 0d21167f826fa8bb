"""sql/: every revision has its SQL for both dialects, and the splitter the SQLite revisions use cuts a
script where SQLite does."""

from __future__ import annotations

import re

import pytest

from loyalty_pipeline.migrations import SQL_DIR, sqlite_statements


def test_every_revision_has_its_sql_for_both_dialects():
    postgresql = sorted(p.name for p in (SQL_DIR / "postgresql").glob("*.sql"))
    assert postgresql == sorted(p.name for p in (SQL_DIR / "sqlite").glob("*.sql"))
    assert [name[:4] for name in postgresql] == [f"{n:04d}" for n in range(1, len(postgresql) + 1)]
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
