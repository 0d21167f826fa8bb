"""Row rules: rejects with reasons, warnings that keep the row, one user per email."""

from datetime import date

import polars as pl

from loyalty_pipeline.csv_reader import read_csv
from loyalty_pipeline.validation import VALIDATED_USERS_SCHEMA, validate_upload
from tests.factories import write_csv

TODAY = date(2026, 11, 26)


def validate(tmp_path, text, date_order="MDY", region="US"):
    raw = read_csv(write_csv(tmp_path / "u.csv", text))
    return validate_upload(raw, date_order=date_order, phone_region=region, today=TODAY)


def issues_by_line(result):
    return {(line, column): reason for line, column, reason in result.issues.select("line", "column", "reason").rows()}


def test_emails_are_trimmed_lower_cased_and_invalid_ones_rejected(tmp_path):
    result = validate(tmp_path, "email\n  Ann@Example.COM \nnot-an-email\n\nbob@@x.com\nx..y@x.com\n")
    assert result.users["email"].to_list() == ["ann@example.com"]
    issues = issues_by_line(result)
    assert issues[(3, "email")] == "email is not a valid address"
    assert issues[(5, "email")] == "email is not a valid address"
    assert issues[(6, "email")] == "email is not a valid address"
    assert result.rows_rejected == 3 and result.rows_accepted == 1


def test_missing_email_rejects_the_row_and_the_rest_goes_on(tmp_path):
    result = validate(tmp_path, "email,first_name\n,Nobody\nok@x.com,Ok\n")
    assert issues_by_line(result)[(2, "email")] == "email is missing"
    assert result.users["first_name"].to_list() == ["Ok"]


def test_overlong_email_and_overlong_cells_reject_the_row(tmp_path):
    long_email = "a" * 250 + "@x.com"
    result = validate(tmp_path, f"email,first_name\n{long_email},A\nb@x.com,{'B' * 1001}\nc@x.com,{'C' * 1000}\n")
    issues = issues_by_line(result)
    assert issues[(2, "email")] == "email longer than 254 characters"
    assert issues[(3, "first_name")] == "cell longer than 1000 characters"
    assert result.users["email"].to_list() == ["c@x.com"]  # exactly 1,000 is fine


def test_names_are_trimmed_and_blank_names_are_null(tmp_path):
    result = validate(tmp_path, "email,first_name,last_name\na@x.com,  Ann  ,   \n")
    assert result.users.select("first_name", "last_name").row(0) == ("Ann", None)


def test_birth_dates_are_parsed_with_the_program_date_order(tmp_path):
    text = "email,dob\nmdy@x.com,03/04/1990\nyearless@x.com,--12-25\n"
    mdy = validate(tmp_path, text, date_order="MDY").users.sort("email")
    dmy = validate(tmp_path, text, date_order="DMY").users.sort("email")
    assert mdy.filter(pl.col("email") == "mdy@x.com")["birth_date"].to_list() == [date(1990, 3, 4)]
    assert dmy.filter(pl.col("email") == "mdy@x.com")["birth_date"].to_list() == [date(1990, 4, 3)]
    yearless = mdy.filter(pl.col("email") == "yearless@x.com").select("birth_date", "birth_month", "birth_day").row(0)
    assert yearless == (None, 12, 25)


def test_bad_birth_dates_and_phones_warn_but_keep_the_row(tmp_path):
    result = validate(tmp_path, "email,birth_date,phone\na@x.com,1990,(212) 555-0100\nb@x.com,N/A,12\nc@x.com,,\n")
    users = result.users.sort("email")
    assert users["email"].to_list() == ["a@x.com", "b@x.com", "c@x.com"]
    assert users["birth_month"].to_list() == [None, None, None]
    issues = issues_by_line(result)
    assert "1990" in issues[(2, "birth_date")]
    assert "placeholder" in issues[(3, "birth_date")]
    assert "invalid phone_number" in issues[(3, "phone_number")]
    assert (4, "birth_date") not in issues  # an empty cell is silent
    assert result.rows_rejected == 0 and result.warnings == 3


def test_phone_numbers_become_e164_with_the_program_region(tmp_path):
    us = validate(tmp_path, "email,phone\na@x.com,(212) 555-0100\n", region="US")
    gb = validate(tmp_path, "email,phone\na@x.com,020 7946 0018\n", region="GB")
    assert us.users["phone_number"].to_list() == ["+12125550100"]
    assert gb.users["phone_number"].to_list() == ["+442079460018"]


def test_same_email_twice_is_one_user_with_later_non_empty_values(tmp_path):
    text = "email,first_name,last_name,birth_date\nann@x.com,Ann,Old,03/14/1990\nANN@x.com,,New,\n"
    result = validate(tmp_path, text)
    assert result.users.select("email", "first_name", "last_name", "birth_month", "birth_day").rows() == [
        ("ann@x.com", "Ann", "New", 3, 14)
    ]
    assert "duplicate email (first on line 2)" in issues_by_line(result)[(3, "email")]


def test_output_matches_the_validated_users_schema(tmp_path):
    result = validate(tmp_path, "email,first_name,birth_date,phone\na@x.com,A,1990-01-02,2125550100\n")
    VALIDATED_USERS_SCHEMA.validate(result.users)  # raises if the contract broke
    assert result.users.schema["birth_month"] == pl.Int16
