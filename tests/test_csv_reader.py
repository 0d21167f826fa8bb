"""Reading uploaded files: encodings, headers, quoting, ragged records and whole-file errors."""

from datetime import datetime

import pytest

from loyalty_pipeline.csv_reader import CsvFileError, normalize_header, read_csv, read_upload
from tests.factories import write_contacts_workbook, write_csv, write_empty_workbook


def test_headers_are_normalised_and_aliased():
    assert normalize_header("  First Name ") == "first_name"
    assert normalize_header("Date-Of-Birth") == "birth_date"
    assert [
        normalize_header(h) for h in ("DOB", "birthday", "Phone", "Mobile", "FirstName", "Surname", "lastname")
    ] == ["birth_date", "birth_date", "phone_number", "phone_number", "first_name", "last_name", "last_name"]


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


@pytest.mark.parametrize(
    "name, text, delimiter",
    [
        ("a.csv", "E-Mail;Vorname;Nachname\na@x.com;Jo;Roe\n", ";"),
        ("a.csv", "email\tfirst_name\tlast_name\na@x.com\tJo\tRoe\n", "\t"),
        ("a.txt", "email|first_name|last_name\na@x.com|Jo|Roe\n", "|"),
        ("a.tsv", "email\tfirst_name\tlast_name\na@x.com\tJo\tRoe\n", "\t"),
        ("a.csv", 'email,"Name; full",last_name\na@x.com,Jo,Roe\n', ","),  # a quoted ';' does not count
        ("a.csv", "sep=|\nemail|first_name|last_name\na@x.com|Jo|Roe\n", "|"),
    ],
)
def test_the_delimiter_is_the_one_that_splits_the_header(tmp_path, name, text, delimiter):
    raw = read_upload(write_csv(tmp_path / name, text))
    assert raw.delimiter == delimiter
    assert raw.rows.select("line", "email", "last_name").rows() == [(2, "a@x.com", "Roe")]


def test_an_excel_sep_line_is_not_the_header_and_lines_count_from_the_header(tmp_path):
    text = "sep=;\r\nE-Mail;Vorname;Geburtsdatum\r\na@x.com;Jo;14.03.1990\r\nb@x.com,x;Bo;\r\n"
    raw = read_upload(write_csv(tmp_path / "de.csv", text.encode("cp1252")))
    assert (raw.delimiter, raw.encoding, raw.file_kind) == (";", "utf-8", "csv")
    assert raw.rows.select("line", "email", "first_name", "birth_date").rows() == [
        (2, "a@x.com", "Jo", "14.03.1990"),
        (3, "b@x.com,x", "Bo", ""),
    ]
    assert raw.sources == {"email": ["E-Mail"], "first_name": ["Vorname"], "birth_date": ["Geburtsdatum"]}


def test_export_cell_conventions_are_removed_from_email_phone_and_birthday_cells(tmp_path):
    text = (
        "Email,Phone,Default Address Phone,Birthday,First Name\n"
        "'a@x.com,','+14155550134,'1990-03-14,'Jo\n"
        "* b@x.com ::: c@x.com,+1 650 ::: +1 651,,--03-01,Bo\n"
    )
    raw = read_upload(write_csv(tmp_path / "a.csv", text))
    assert raw.rows.select("email", "phone_number", "birth_date", "first_name").rows() == [
        ("a@x.com", "+14155550134", "1990-03-14", "'Jo"),  # names keep what was typed
        ("b@x.com", "+1 650", "--03-01", "Bo"),
    ]


def test_a_workbook_is_read_as_a_person_sees_it(tmp_path):
    raw = read_upload(write_contacts_workbook(tmp_path / "contacts.xlsx"), file_label="p/contacts.xlsx")
    assert (raw.file_kind, raw.sheet, raw.delimiter, raw.rows_read) == ("xlsx", "Customers", None, 4)
    assert raw.rows.select("line", "email", "phone_number", "birth_date").rows() == [
        (3, "ann.lee@example.com", "4155550134", "1990-03-14"),  # number phone, date cell
        (4, "bo.chan@example.com", "+1 415 555 0178", "1990-03-14"),  # serial 32946
        (6, "cy.diaz@example.com", "(415) 555-0199", "03/21"),  # row 5 is blank
        (7, "not-an-address", "4155550100", "1991-01-01"),
    ]
    assert raw.unknown_columns == ["Member since"]


def test_a_date_serial_in_a_1904_workbook_counts_from_1904(tmp_path):
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(tmp_path / "mac.xlsx"), {"date_1904": True})  # older Mac Excel
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["Email", "Birthday"])
    sheet.write(1, 0, "a@x.com")
    sheet.write_number(1, 1, 31484)  # 1990-03-14 counted from 1904
    sheet.write(2, 0, "b@x.com")
    sheet.write_datetime(2, 1, datetime(1990, 3, 14), workbook.add_format({"num_format": "yyyy-mm-dd"}))
    workbook.close()
    raw = read_upload(tmp_path / "mac.xlsx")
    assert raw.rows.select("email", "birth_date").rows() == [("a@x.com", "1990-03-14"), ("b@x.com", "1990-03-14")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04\x14\x00\x06\x00truncated", "the workbook is damaged or not an .xlsx file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "the workbook is encrypted (password-protected)"),
        (b"email,first_name\na@x.com,A\n", "not an .xlsx workbook"),
        (None, "the workbook is empty"),
    ],
)
def test_unreadable_workbooks_are_one_line_whole_file_errors(tmp_path, content, message):
    path = tmp_path / "book.xlsx"
    if content is None:
        write_empty_workbook(path)
    else:
        path.write_bytes(content)
    with pytest.raises(CsvFileError) as error:
        read_upload(path, file_label="joes-pizza/book.xlsx")
    assert str(error.value).startswith("joes-pizza/book.xlsx: " + message)
    assert len(str(error.value).splitlines()) == 1


def test_a_workbook_without_an_email_column_says_what_each_sheet_has(tmp_path):
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(tmp_path / "b.xlsx"))
    workbook.add_worksheet("People").write_row(0, 0, ["Name", "Phone"])
    workbook.close()
    with pytest.raises(CsvFileError, match="""no worksheet has a usable header: 'People': no email column"""):
        read_upload(tmp_path / "b.xlsx")


def test_a_file_that_is_not_the_workbook_its_name_says_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(CsvFileError, match="not a legacy .xls workbook; save it from Excel as .xlsx or CSV"):
        read_upload(write_csv(tmp_path / "old.xls", "email\na@x.com\n"))
    with pytest.raises(CsvFileError, match="not an .ods spreadsheet"):
        read_upload(write_csv(tmp_path / "sheet.ods", "email\na@x.com\n"))


def test_a_mapping_overrides_detection(tmp_path):
    path = write_csv(tmp_path / "a.csv", "Email,Work Email,Tel,Mobile\na@x.com,w@x.com,111,222\nb@x.com,,333,\n")
    raw = read_upload(path, columns={"email": ["work email", "email"], "phone_number": ["tel"]})
    assert raw.rows.select("email", "phone_number").rows() == [("w@x.com", "111"), ("b@x.com", "333")]
    assert raw.sources == {"email": ["Work Email", "Email"], "phone_number": ["Tel"]}
    assert raw.unknown_columns == ["Mobile"]
