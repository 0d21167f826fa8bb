"""The ingestion assets, materialized in process through Dagster against each real database,
and the upload sensor that turns files into partitions and runs."""

import csv
import json
import os
import time
from pathlib import Path

import pytest
from dagster import build_sensor_context
from sqlalchemy import text

from loyalty_pipeline.definitions import build_resources
from schedules.sensors import upload_sensor
from tests.factories import run_upload, set_csv_columns, write_contacts_workbook, write_csv


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
    assert validated["unknown_columns"] == "Shoe Size"
    assert "email is not a valid address" in validated["first_rejects"]
    assert metadata(result, "users")["users_created"] == 1
    assert metadata(result, "passes")["passes_created"] == 1
    assert checks(result) == {"unique_emails": True, "reject_rate": False}  # 1 of 3 rejected > 20 %
    assert (count(engine, "users"), count(engine, "passes_master"), count(engine, "upload_issues")) == (1, 1, 2)


def test_a_rerun_of_the_partition_is_idempotent(instance, settings, engine, program):
    content = "email,dob\nann@x.com,1990\nbad,\n"
    assert run_upload(instance, settings, "joes-pizza/a.csv", content).success
    again = run_upload(instance, settings, "joes-pizza/a.csv", content)
    assert again.success
    assert metadata(again, "users")["users_created"] == 0
    assert (count(engine, "users"), count(engine, "passes_master"), count(engine, "upload_issues")) == (1, 1, 2)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("first_name\nAnn\n", "no email column"),
        ("", "the file is empty"),
        (b"PK\x03\x04xlsx", "not a CSV file"),
    ],
)
def test_a_broken_file_fails_with_one_clear_message_and_writes_nothing(
    instance, settings, engine, program, content, reason
):
    result = run_upload(instance, settings, "joes-pizza/broken.csv", content)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith("joes-pizza/broken.csv: ")
    assert reason in failure.step_failure_data.user_failure_data.description
    assert count(engine, "uploads") == 0 and count(engine, "users") == 0


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
    description = next(
        e for e in result.all_events if e.is_step_failure
    ).step_failure_data.user_failure_data.description
    assert description.startswith(f"{key}: ") and reason in description and "\n" not in description
    assert count(engine, "uploads") == 0 and count(engine, "users") == 0


def test_an_upload_for_an_unknown_program_fails_clearly(instance, settings, engine):
    result = run_upload(instance, settings, "ghost-town/a.csv", "email\na@x.com\n")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "program 'ghost-town' does not exist" in failure.step_failure_data.user_failure_data.description


def test_header_only_file_succeeds_with_zero_rows(instance, settings, engine, program):
    result = run_upload(instance, settings, "joes-pizza/empty.csv", "email,first_name\n")
    assert result.success
    assert metadata(result, "validated_users")["rows_read"] == 0
    assert count(engine, "uploads") == 1 and count(engine, "users") == 0


def test_issue_report_neutralises_formula_cells(instance, settings, program):
    content = 'email,first_name\n"=HYPERLINK(""http://evil"",""x"")",A\n@SUM(A1),B\n+1,C\n'
    result = run_upload(instance, settings, "joes-pizza/evil.csv", content)
    assert result.success
    report = Path(metadata(result, "validated_users")["issues_report"])
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
    raw = metadata(result, "raw_upload")
    assert (raw["file_kind"], raw["delimiter"], raw["encoding"]) == ("csv", "comma", "utf-8")
    assert raw["columns"].splitlines() == [
        'email ← "E-mail 1 - Value", "E-mail 2 - Value"',
        'first_name ← "First Name"',
        'last_name ← "Last Name"',
        'birth_date ← "Birthday"',
        'phone_number ← "Phone 1 - Value"',
    ]
    assert raw["unknown_columns"] == "Labels, E-mail 1 - Label, E-mail 2 - Label"
    assert raw["column_mapping"] == "detected (field table)"


def test_a_workbook_upload_lands_and_names_its_sheet(instance, settings, engine, program, tmp_path):
    workbook = write_contacts_workbook(tmp_path / "contacts.xlsx").read_bytes()
    result = run_upload(instance, settings, "joes-pizza/contacts.xlsx", workbook)
    assert result.success
    raw = metadata(result, "raw_upload")
    assert (raw["file_kind"], raw["sheet"], raw["rows_read"]) == ("xlsx", "Customers", 4)
    assert "delimiter" not in raw
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
    description = next(
        e for e in result.all_events if e.is_step_failure
    ).step_failure_data.user_failure_data.description
    assert description.startswith("joes-pizza/a.csv: ") and reason in description
    assert count(engine, "uploads") == 0 and count(engine, "users") == 0


def test_a_program_mapping_decides_which_column_feeds_a_field(instance, settings, engine, program):
    set_csv_columns(engine, program, '{"email": "Work Email", "phone_number": ["Tel", "Mobile"]}')
    result = run_upload(
        instance, settings, "joes-pizza/a.csv", "Email,Work Email,Tel,Mobile\nhome@x.com,work@x.com,,4155550134\n"
    )
    assert result.success
    assert metadata(result, "raw_upload")["column_mapping"] == "programs.csv_columns"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email, phone_number FROM users")).all() == [("work@x.com", "+14155550134")]


# --- upload_sensor ---------------------------------------------------------------------------


def _settle(path: Path, seconds_ago: float = 60) -> None:
    past = time.time() - seconds_ago
    os.utime(path, (past, past))


def evaluate_sensor(instance, settings, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=build_resources(settings))
    return upload_sensor(context), context.cursor


def test_upload_sensor_adds_partitions_and_requests_runs_once(instance, settings, program):
    complete = write_csv(settings.uploads_dir / "joes-pizza" / "a.csv", "email\na@x.com\n")
    _settle(complete)
    write_csv(settings.uploads_dir / "joes-pizza" / "still-writing.csv", "email\n")  # mtime is now
    write_csv(settings.uploads_dir / "joes-pizza" / "notes.pdf", "ignored")
    write_csv(settings.uploads_dir / "Bad Slug" / "x.csv", "email\n")

    result, cursor = evaluate_sensor(instance, settings)
    assert [r.partition_key for r in result.run_requests] == ["joes-pizza/a.csv"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["joes-pizza/a.csv"]

    instance.add_dynamic_partitions("uploads", ["joes-pizza/a.csv"])
    unchanged, cursor = evaluate_sensor(instance, settings, cursor)
    assert not getattr(unchanged, "run_requests", None)

    complete.write_text("email\nb@x.com\n")  # a new version of the same file
    _settle(complete, 30)
    changed, cursor = evaluate_sensor(instance, settings, cursor)
    assert [r.partition_key for r in changed.run_requests] == ["joes-pizza/a.csv"]
    first_key = result.run_requests[0].run_key
    assert changed.run_requests[0].run_key != first_key  # run key carries the sha256
    assert json.loads(cursor)["joes-pizza/a.csv"][2] in changed.run_requests[0].run_key


def test_upload_sensor_takes_every_accepted_file_kind(instance, settings, program):
    folder = settings.uploads_dir / "joes-pizza"
    for name in ("a.csv", "b.tsv", "c.txt", "d.xlsx", "e.XLSX", "f.xls", "g.pdf", ".h.csv.part"):
        _settle(write_csv(folder / name, "email\n"))
    result, _ = evaluate_sensor(instance, settings)
    assert sorted(r.partition_key for r in result.run_requests) == [
        "joes-pizza/a.csv",
        "joes-pizza/b.tsv",
        "joes-pizza/c.txt",
        "joes-pizza/d.xlsx",
        "joes-pizza/e.XLSX",
        "joes-pizza/f.xls",
    ]  # a legacy .xls gets a run that says "save it as .xlsx or CSV"
