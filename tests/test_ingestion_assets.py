"""The ingestion assets, materialized in process through Dagster against each real database: a
batch of files per run, each file's result in `uploads` and in the run's per-file table."""

import csv
from pathlib import Path

import pytest
from sqlalchemy import text

from loyalty_pipeline.db import db_time
from tests.factories import (
    ingest_run,
    make_program,
    run_upload,
    set_csv_columns,
    utc,
    write_contacts_workbook,
    write_csv,
)


def metadata(result, asset):
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() == asset:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def checks(result):
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def per_file(result, asset="raw_upload") -> list[dict]:
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() == asset:
            return [record.data for record in mat.metadata["per_file"].records]
    raise AssertionError(f"{asset} was not materialized")


def upload_row(engine, key) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM uploads WHERE key = :k"), {"k": key}).mappings().first()
    return dict(row) if row else None


def step_failure(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.user_failure_data.description


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_an_upload_lands_users_and_passes_with_metadata(instance, settings, engine, program):
    content = (
        "Email,First Name,DOB,Mobile,Shoe Size\nann@x.com,Ann,03/14/1990,2125550100,38\nbad,Bad,,,\nann@x.com,,,,\n"
    )
    result = run_upload(instance, settings, "joes-pizza/march.csv", content)
    assert result.success
    validated = metadata(result, "validated_users")
    assert (validated["rows_read"], validated["accepted"], validated["rejected"], validated["warnings"]) == (3, 2, 1, 1)
    assert "email is not a valid address" in validated["first_rejects"]
    assert metadata(result, "users")["users_created"] == 1
    assert metadata(result, "passes")["passes_created"] == 1
    [row] = per_file(result)
    assert row["ignored_columns"] == "Shoe Size"
    assert (row["file"], row["status"], row["rows_read"], row["accepted"], row["rejected"]) == (
        "joes-pizza/march.csv",
        "succeeded",
        3,
        2,
        1,
    )
    assert checks(result) == {"files_ingested": True, "unique_emails": True, "reject_rate": False}  # 1 of 3 > 20 %
    assert (count(engine, "users"), count(engine, "passes_master"), count(engine, "upload_issues")) == (1, 1, 2)
    recorded = upload_row(engine, "joes-pizza/march.csv")
    assert (recorded["status"], recorded["run_id"], recorded["error"]) == ("succeeded", result.run_id, None)
    assert recorded["ingested_sha256"] == recorded["sha256"] and recorded["change_marker"]


def test_a_rerun_of_the_partition_is_idempotent(instance, settings, engine, program):
    content = "email,dob\nann@x.com,1990\nbad,\n"
    assert run_upload(instance, settings, "joes-pizza/a.csv", content).success
    again = run_upload(instance, settings, "joes-pizza/a.csv", content)
    assert again.success
    assert metadata(again, "users")["users_created"] == 0
    assert (count(engine, "users"), count(engine, "passes_master"), count(engine, "upload_issues")) == (1, 1, 2)
    assert upload_row(engine, "joes-pizza/a.csv")["run_id"] == again.run_id


@pytest.mark.parametrize(
    "content, reason",
    [
        ("first_name\nAnn\n", "no email column"),
        ("", "the file is empty"),
        (b"PK\x03\x04xlsx", "not a CSV file"),
    ],
)
def test_a_broken_file_fails_with_one_clear_message_and_writes_only_its_status(
    instance, settings, engine, program, content, reason
):
    result = run_upload(instance, settings, "joes-pizza/broken.csv", content)
    assert not result.success  # the only file of the run failed
    assert step_failure(result).startswith("joes-pizza/broken.csv: ") and reason in step_failure(result)
    recorded = upload_row(engine, "joes-pizza/broken.csv")
    assert recorded["status"] == "failed" and reason in recorded["error"] and recorded["ingested_sha256"] is None
    assert count(engine, "users") == 0 and count(engine, "upload_issues") == 0


@pytest.mark.parametrize(
    "key, content, reason",
    [
        (
            "joes-pizza/book.xlsx",
            b"PK\x03\x04\x14\x00\x06\x00cut short",
            "the workbook is damaged or not an .xlsx file",
        ),
        ("joes-pizza/book.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "the workbook is encrypted"),
        (
            "joes-pizza/book.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512),
            "the workbook is damaged or not an .xls file",
        ),
    ],
)
def test_an_unreadable_workbook_fails_with_one_line_and_writes_nothing(
    instance, settings, engine, program, key, content, reason
):
    result = run_upload(instance, settings, key, content)
    assert not result.success
    description = step_failure(result)
    assert description.startswith(f"{key}: ") and reason in description and "\n" not in description
    assert upload_row(engine, key)["status"] == "failed" and count(engine, "users") == 0


def test_an_upload_for_an_unknown_program_fails_clearly(instance, settings, engine):
    result = run_upload(instance, settings, "ghost-town/a.csv", "email\na@x.com\n")
    assert not result.success
    assert "program 'ghost-town' does not exist" in step_failure(result)
    assert count(engine, "uploads") == 0  # a row needs its program


def test_header_only_file_succeeds_with_zero_rows(instance, settings, engine, program):
    result = run_upload(instance, settings, "joes-pizza/empty.csv", "email,first_name\n")
    assert result.success
    assert metadata(result, "validated_users")["rows_read"] == 0
    assert count(engine, "uploads") == 1 and count(engine, "users") == 0


def test_issue_report_neutralises_formula_cells(instance, settings, program):
    content = 'email,first_name\n"=HYPERLINK(""http://evil"",""x"")",A\n@SUM(A1),B\n+1,C\n'
    result = run_upload(instance, settings, "joes-pizza/evil.csv", content)
    assert result.success
    report = settings.reports_dir / "joes-pizza" / "evil.csv.issues.csv"
    assert per_file(result)[0]["issues_report"] == str(report)
    with report.open(newline="", encoding="utf-8") as handle:
        values = [row["value"] for row in csv.DictReader(handle)]
    assert values == ['\'=hyperlink("http://evil","x")', "'@sum(a1)", "'+1"]


def test_the_sample_files_exercise_the_rules(instance, settings, engine, program):
    sample_dir = Path(__file__).resolve().parent.parent / "loyalty_pipeline" / "sample_data"
    result = run_upload(instance, settings, "joes-pizza/joes-pizza.csv", (sample_dir / "joes-pizza.csv").read_bytes())
    assert result.success
    validated = metadata(result, "validated_users")
    assert validated["rejected"] > 0 and validated["warnings"] > 0 and validated["accepted"] > 0
    with engine.connect() as conn:
        reasons = {r[0] for r in conn.execute(text("SELECT reason FROM upload_issues"))}
    assert any("email is not a valid address" in r for r in reasons)
    assert any("fields but the header" in r for r in reasons)
    assert any("duplicate email" in r for r in reasons)


def test_raw_upload_shows_the_file_kind_layout_and_the_header_feeding_each_field(instance, settings, program):
    content = (
        "First Name,Last Name,Birthday,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,"
        "Phone 1 - Value\nJo,Roe,--03-01,* myContacts,* Home,jo@x.com,,,+1 650-555-0111\n"
    )
    result = run_upload(instance, settings, "joes-pizza/google.csv", content)
    assert result.success
    [row] = per_file(result)
    assert row["layout"] == "csv, comma, utf-8"
    assert row["fields"].split("; ") == [
        'email ← "E-mail 1 - Value", "E-mail 2 - Value"',
        'first_name ← "First Name"',
        'last_name ← "Last Name"',
        'birth_date ← "Birthday"',
        'phone_number ← "Phone 1 - Value"',
    ]
    assert row["ignored_columns"] == "Labels, E-mail 1 - Label, E-mail 2 - Label"
    assert row["mapping"] == "detected (field table)"


def test_a_workbook_upload_lands_and_names_its_sheet(instance, settings, engine, program, tmp_path):
    workbook = write_contacts_workbook(tmp_path / "contacts.xlsx").read_bytes()
    result = run_upload(instance, settings, "joes-pizza/contacts.xlsx", workbook)
    assert result.success
    [row] = per_file(result)
    assert (row["layout"], row["rows_read"]) == ("xlsx, sheet 'Customers'", 4)
    assert metadata(result, "users")["users_created"] == 3


@pytest.mark.parametrize(
    "mapping, reason",
    [
        ('{"birthday": "DOB"}', "csv_columns maps an unknown field 'birthday' (to 'DOB')"),
        ('{"phone_number": ["Tel"]}', 'csv_columns maps phone_number to "Tel", but the file has no such column'),
        ('["email"]', "csv_columns must be a JSON object"),
    ],
)
def test_a_program_mapping_that_does_not_fit_fails_the_upload_naming_field_and_header(
    instance, settings, engine, program, mapping, reason
):
    set_csv_columns(engine, program, mapping)
    result = run_upload(instance, settings, "joes-pizza/a.csv", "Email,Phone\na@x.com,4155550134\n")
    assert not result.success
    assert step_failure(result).startswith("joes-pizza/a.csv: ") and reason in step_failure(result)
    assert upload_row(engine, "joes-pizza/a.csv")["status"] == "failed" and count(engine, "users") == 0


def test_a_program_mapping_decides_which_column_feeds_a_field(instance, settings, engine, program):
    set_csv_columns(engine, program, '{"email": "Work Email", "phone_number": ["Tel", "Mobile"]}')
    result = run_upload(
        instance, settings, "joes-pizza/a.csv", "Email,Work Email,Tel,Mobile\nhome@x.com,work@x.com,,4155550134\n"
    )
    assert result.success
    assert per_file(result)[0]["mapping"] == "programs.csv_columns"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email, phone_number FROM users")).all() == [("work@x.com", "+14155550134")]


# --- batches ------------------------------------------------------------------------------------


def test_one_bad_file_of_a_batch_fails_alone(instance, settings, engine, program, monkeypatch):
    """A whole-file error, an invalid program config, a crash in the middle of a load and a
    missing file each fail their own file; the others of the batch land and the run succeeds."""
    from loyalty_pipeline import upload_batch

    broken = make_program(engine, "broken-config", csv_columns='["not an object"]')
    uploads = settings.uploads_dir
    write_csv(uploads / "joes-pizza" / "good.csv", "email\ngood@x.com\n")
    write_csv(uploads / "joes-pizza" / "no-email.csv", "first_name\nAnn\n")
    write_csv(uploads / "joes-pizza" / "crash.csv", "email\ncrash@x.com\n")
    write_csv(uploads / broken.slug / "a.csv", "email\nb@x.com\n")
    write_csv(uploads / "joes-pizza" / "later.csv", "email\nlater@x.com\n")
    real_load = upload_batch.load_upload

    def load_crashing_on_one_file(engine, **kwargs):
        if kwargs["key"] == "joes-pizza/crash.csv":
            with engine.begin() as conn:  # half the work done, then the process of loading breaks
                conn.execute(text("INSERT INTO users (email) VALUES ('half@x.com')"))
                raise RuntimeError("disk full")
        return real_load(engine, **kwargs)

    monkeypatch.setattr(upload_batch, "load_upload", load_crashing_on_one_file)
    keys = [
        "joes-pizza/good.csv",
        "joes-pizza/no-email.csv",
        "joes-pizza/crash.csv",
        "broken-config/a.csv",
        "joes-pizza/gone.csv",
        "joes-pizza/later.csv",
    ]
    result = ingest_run(instance, settings, keys)
    assert result.success
    rows = per_file(result)
    assert [r["status"] for r in rows] == ["failed"] * 4 + ["succeeded"] * 2  # failures first
    errors = {r["file"]: r["error"] for r in rows if r["status"] == "failed"}
    assert "no email column" in errors["joes-pizza/no-email.csv"]
    assert "RuntimeError: disk full" in errors["joes-pizza/crash.csv"]
    assert "csv_columns must be a JSON object" in errors["broken-config/a.csv"]
    assert "file not found" in errors["joes-pizza/gone.csv"]
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT email FROM users")).scalars()) == ["good@x.com", "later@x.com"]
        statuses = dict(conn.execute(text("SELECT key, status FROM uploads")).all())
    assert statuses == {
        "joes-pizza/good.csv": "succeeded",
        "joes-pizza/later.csv": "succeeded",
        "joes-pizza/no-email.csv": "failed",
        "joes-pizza/crash.csv": "failed",
        "broken-config/a.csv": "failed",
        "joes-pizza/gone.csv": "failed",
    }
    assert metadata(result, "raw_upload")["files_failed"] == 4
    assert checks(result)["files_ingested"] is False


def test_a_run_whose_files_all_failed_fails(instance, settings, engine, program):
    write_csv(settings.uploads_dir / "joes-pizza" / "a.csv", "first_name\nAnn\n")
    write_csv(settings.uploads_dir / "joes-pizza" / "b.csv", "")
    result = ingest_run(instance, settings, ["joes-pizza/a.csv", "joes-pizza/b.csv"])
    assert not result.success
    assert "joes-pizza/a.csv: " in step_failure(result) and "joes-pizza/b.csv: " in step_failure(result)


def test_a_partition_run_without_files_ingests_the_files_that_arrived_that_day(instance, settings, engine, program):
    """A data team rerunning a day from the UI (no config) reads again every file that arrived on it."""
    assert run_upload(instance, settings, "joes-pizza/a.csv", "email\na@x.com\n").success
    assert run_upload(instance, settings, "joes-pizza/b.csv", "email\nb@x.com\n").success
    with engine.begin() as conn:  # b arrived the day before
        conn.execute(
            text("UPDATE uploads SET arrived_at = :t WHERE key = 'joes-pizza/b.csv'"),
            {"t": db_time(conn, utc(2026, 11, 25, 12))},
        )
    write_csv(settings.uploads_dir / "joes-pizza" / "a.csv", "email\na@x.com\nc@x.com\n")
    write_csv(settings.uploads_dir / "joes-pizza" / "b.csv", "email\nb@x.com\nd@x.com\n")
    result = ingest_run(instance, settings, [])
    assert result.success
    assert [r["file"] for r in per_file(result)] == ["joes-pizza/a.csv"]
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT email FROM users")).scalars()) == ["a@x.com", "b@x.com", "c@x.com"]


def test_a_new_version_that_fails_keeps_the_data_of_the_last_good_one(instance, settings, engine, program):
    assert run_upload(instance, settings, "joes-pizza/a.csv", "email\nann@x.com\nbad\n").success
    good = upload_row(engine, "joes-pizza/a.csv")
    assert not run_upload(instance, settings, "joes-pizza/a.csv", "first_name\nAnn\n").success
    failed = upload_row(engine, "joes-pizza/a.csv")
    assert failed["status"] == "failed" and failed["sha256"] != good["sha256"]
    assert failed["ingested_sha256"] == good["sha256"] and count(engine, "upload_issues") == 1
    assert run_upload(instance, settings, "joes-pizza/a.csv", "email\nann@x.com\nbob@x.com\n").success
    assert upload_row(engine, "joes-pizza/a.csv")["status"] == "succeeded"
    assert count(engine, "upload_issues") == 0, "the new version replaced the old version's issue rows"
