"""Loading uploads into the database (SQLite and PostgreSQL): merge rules, passes, issues,
idempotent reruns and all-or-nothing transactions."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from loyalty_pipeline import ingest
from loyalty_pipeline.programs import save_program
from tests.factories import load_csv as load


def rows(engine, sql, **params):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def user(engine, email):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users WHERE email = :e"), {"e": email}).mappings().one()


def test_new_users_get_an_active_pass_in_the_program(engine, program, tmp_path):
    result = load(
        engine, program, tmp_path, "email,first_name,dob,phone\nAnn@X.com,Ann,03/14/1990,2125550100\nbob@x.com,Bob,,\n"
    )
    assert (result.users_created, result.users_updated, result.passes_created) == (2, 0, 2)
    ann = user(engine, "ann@x.com")
    assert (ann["first_name"], str(ann["birth_date"]), ann["birth_month"], ann["birth_day"], ann["phone_number"]) == (
        "Ann",
        "1990-03-14",
        3,
        14,
        "+12125550100",
    )
    assert ann["birth_date_set_at"] is not None
    assert user(engine, "bob@x.com")["birth_date_set_at"] is None
    assert rows(engine, "SELECT status, points_balance FROM passes_master ORDER BY created_at") == [("active", 0)] * 2


def test_blank_or_invalid_values_never_erase_stored_ones(engine, program, tmp_path):
    load(engine, program, tmp_path, "email,first_name,last_name,dob,phone\nann@x.com,Ann,Lee,03/14/1990,2125550100\n")
    result = load(
        engine,
        program,
        tmp_path,
        "email,first_name,last_name,dob,phone\nann@x.com,,  ,N/A,not-a-phone\n",
        name="second.csv",
    )
    ann = user(engine, "ann@x.com")
    assert (ann["first_name"], ann["last_name"], str(ann["birth_date"]), ann["phone_number"]) == (
        "Ann",
        "Lee",
        "1990-03-14",
        "+12125550100",
    )
    assert result.users_updated == 0


def test_non_null_new_values_overwrite(engine, program, tmp_path):
    load(engine, program, tmp_path, "email,first_name,phone\nann@x.com,Ann,2125550100\n")
    result = load(engine, program, tmp_path, "email,first_name,phone\nann@x.com,Anne,2125550199\n", name="b.csv")
    ann = user(engine, "ann@x.com")
    assert (ann["first_name"], ann["phone_number"]) == ("Anne", "+12125550199")
    assert (result.users_created, result.users_updated) == (0, 1)


def test_changed_birthday_is_a_warning_and_moves_birth_date_set_at(engine, program, tmp_path):
    first = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = first + timedelta(days=30)
    load(engine, program, tmp_path, "email,dob\nann@x.com,03/14/1990\nbob@x.com,05/05/1980\n", now=first)
    set_at = user(engine, "ann@x.com")["birth_date_set_at"]
    result = load(
        engine, program, tmp_path, "email,dob\nann@x.com,04/15/1990\nbob@x.com,05/05/1980\n", name="b.csv", now=later
    )
    assert result.birthdays_changed == 1
    ann, bob = user(engine, "ann@x.com"), user(engine, "bob@x.com")
    assert (ann["birth_month"], ann["birth_day"]) == (4, 15)
    assert str(ann["birth_date_set_at"]) != str(set_at)
    assert str(bob["birth_date_set_at"]).startswith("2026-01-01")  # unchanged birthday keeps its timestamp
    assert rows(
        engine, "SELECT upload_key, line, value, severity, reason FROM upload_issues WHERE \"column\" = 'birth_date'"
    ) == [("joes-pizza/b.csv", 2, "1990-04-15", "warning", "birthday changed from 1990-03-14 to 1990-04-15")]


def test_a_yearless_birthday_keeps_a_known_year_for_the_same_day(engine, program, tmp_path):
    load(engine, program, tmp_path, "email,dob\nann@x.com,03/14/1990\n")
    load(engine, program, tmp_path, "email,dob\nann@x.com,03/14\n", name="b.csv")
    ann = user(engine, "ann@x.com")
    assert (str(ann["birth_date"]), ann["birth_month"], ann["birth_day"]) == ("1990-03-14", 3, 14)


def test_existing_pass_keeps_its_status_and_balance(engine, program, tmp_path):
    load(engine, program, tmp_path, "email\nann@x.com\n")
    with engine.begin() as conn:
        conn.execute(text("UPDATE passes_master SET status = 'inactive', points_balance = 70"))
    result = load(engine, program, tmp_path, "email,first_name\nann@x.com,Ann\n", name="b.csv")
    assert result.passes_created == 0
    assert rows(engine, "SELECT status, points_balance FROM passes_master") == [("inactive", 70)]


def test_a_user_in_two_programs_has_two_passes(engine, program, tmp_path):
    with engine.begin() as conn:
        other = save_program(conn, "city-events", "City Events", date_order="DMY", default_phone_region="GB")
    load(engine, program, tmp_path, "email\nann@x.com\n")
    load(engine, other, tmp_path, "email\nANN@x.com\n")
    assert rows(engine, "SELECT count(*) FROM users") == [(1,)]
    assert rows(engine, "SELECT count(*) FROM passes_master") == [(2,)]


def test_rerunning_an_upload_changes_nothing(engine, program, tmp_path):
    content = "email,first_name,dob\nann@x.com,Ann,1990\nbad,Bad,\nann@x.com,,\n"
    load(engine, program, tmp_path, content)
    snapshot = lambda: (  # noqa: E731
        rows(engine, "SELECT email, first_name, birth_month, birth_date_set_at, updated_at FROM users ORDER BY email"),
        rows(engine, "SELECT program_id, user_id, status FROM passes_master ORDER BY user_id"),
        rows(engine, 'SELECT line, "column", severity, reason FROM upload_issues ORDER BY line, "column", reason'),
    )
    before = snapshot()
    again = load(engine, program, tmp_path, content, now=datetime(2026, 11, 27, tzinfo=timezone.utc))
    assert snapshot() == before
    assert (again.users_created, again.users_updated, again.passes_created) == (0, 0, 0)
    assert len(before[2]) == 3  # invalid date warning, rejected email, duplicate email warning


def test_a_new_version_of_a_file_replaces_the_old_versions_issues(engine, program, tmp_path):
    load(engine, program, tmp_path, "email\nbad-one\n")
    load(engine, program, tmp_path, "email\nok@x.com\nbad-two\n")
    assert rows(engine, 'SELECT line, "column", reason FROM upload_issues') == [
        (3, "email", "email is not a valid address")
    ]
    assert rows(engine, "SELECT rows_read, rows_accepted, rows_rejected FROM uploads") == [(2, 1, 1)]


def test_upload_row_records_the_counts(engine, program, tmp_path):
    load(engine, program, tmp_path, "email,dob\na@x.com,N/A\nb@x.com,\nnope,\n")
    assert rows(
        engine,
        "SELECT key, rows_read, rows_accepted, rows_rejected, warnings, users_created, passes_created FROM uploads",
    ) == [("joes-pizza/u.csv", 3, 2, 1, 1, 2, 2)]


def test_a_failure_inside_the_load_writes_nothing(engine, program, tmp_path, monkeypatch):
    # The passes statement runs after users, issues and the upload row were written.
    monkeypatch.setattr(ingest, "_ENSURE_PASSES", "SELECT no_such_column FROM passes_master")
    with pytest.raises(Exception, match="no_such_column"):
        load(engine, program, tmp_path, "email,dob\nann@x.com,03/14/1990\nbad,\n")
    for table in ("users", "passes_master", "uploads", "upload_issues"):
        assert rows(engine, f"SELECT count(*) FROM {table}") == [(0,)], table
    monkeypatch.undo()
    load(engine, program, tmp_path, "email,dob\nann@x.com,03/14/1990\nbad,\n")
    assert rows(engine, "SELECT count(*) FROM passes_master") == [(1,)]
