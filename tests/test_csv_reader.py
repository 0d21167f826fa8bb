"""Reading uploaded files: encodings, headers, quoting, ragged records and whole-file errors."""

import pytest

from loyalty_pipeline.csv_reader import CsvFileError, normalize_header, read_csv
from tests.factories import write_csv


def test_headers_are_normalised_and_aliased():
    assert normalize_header("  First Name ") == "first_name"
    assert normalize_header("Date-Of-Birth") == "birth_date"
    assert [normalize_header(h) for h in ("DOB", "birthday", "Phone", "Mobile", "FirstName", "Surname", "lastname")] == [
        "birth_date", "birth_date", "phone_number", "phone_number", "first_name", "last_name", "last_name"]


def test_unknown_columns_are_listed_and_ignored(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", "EMAIL,Favourite Topping,mobile\na@x.com,ham,\n"))
    assert raw.unknown_columns == ["Favourite Topping"]
    assert raw.rows.columns == ["line", "email", "first_name", "last_name", "birth_date", "phone_number"]
    assert raw.rows["email"].to_list() == ["a@x.com"]


def test_utf8_bom_is_stripped(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", "\ufeffemail,first_name\na@x.com,Zoë\n".encode("utf-8")))
    assert raw.encoding == "utf-8-sig"
    assert raw.rows["first_name"].to_list() == ["Zoë"]


def test_invalid_utf8_is_read_as_windows_1252(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", "email,first_name\na@x.com,Chloé – “Co”\n".encode("cp1252")))
    assert raw.encoding == "windows-1252"
    assert raw.rows["first_name"].to_list() == ["Chloé – “Co”"]


def test_quoted_fields_and_line_numbers_as_a_spreadsheet_shows_them(tmp_path):
    text = 'email,first_name\r\na@x.com,"Smith, ""Jo""\r\nsecond line"\r\nb@x.com,Bo\r\n'
    raw = read_csv(write_csv(tmp_path / "a.csv", text))
    assert raw.rows["first_name"].to_list() == ['Smith, "Jo"\r\nsecond line', "Bo"]
    assert raw.rows["line"].to_list() == [2, 3]  # the multi-line record is one spreadsheet row


def test_record_with_more_fields_than_header_is_rejected(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", "email,first_name\na@x.com,A,extra\nb@x.com,B,\n"))
    assert raw.rows["email"].to_list() == ["b@x.com"]  # a trailing empty field is harmless
    assert raw.issues.select("line", "severity").rows() == [(2, "error")]
    assert "3 fields but the header has 2" in raw.issues["reason"][0]


def test_nul_bytes_are_stripped(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", b"email,first_name\na@x.com,A\x00nn\n"))
    assert raw.rows["first_name"].to_list() == ["Ann"]
    assert raw.nul_bytes_stripped == 1


def test_header_only_file_has_no_rows(tmp_path):
    raw = read_csv(write_csv(tmp_path / "a.csv", "email,first_name\n"))
    assert raw.rows.height == 0 and raw.rows_read == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"first_name,last_name\nA,B\n", "no email column"),
        (b"email,Email\na,b\n", "duplicate column names in the header: email"),
        (b"PK\x03\x04\x14\x00\x06\x00binary", "not a CSV file"),
        (b"%PDF-1.7\n", "not a CSV file"),
    ],
)
def test_whole_file_errors_name_the_file_and_the_problem(tmp_path, content, message):
    with pytest.raises(CsvFileError) as error:
        read_csv(write_csv(tmp_path / "bad.csv", content), file_label="joes-pizza/bad.csv")
    assert str(error.value).startswith("joes-pizza/bad.csv: ")
    assert message in str(error.value)
