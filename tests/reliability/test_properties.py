"""Property-based tests (hypothesis) of the parsing and validation layer: whatever text is in a
cell, nothing crashes, no row is lost, accepted birth dates are real dates between 1900-01-01 and
the processing date that parse back to themselves, and emails come out lower-case and trimmed."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loyalty_pipeline import templates
from loyalty_pipeline.csv_reader import CsvFileError, read_csv
from loyalty_pipeline.dates import EARLIEST, parse_birth_date
from loyalty_pipeline.reports import write_issue_report
from loyalty_pipeline.validation import MAX_EMAIL_LENGTH, validate_upload
from tests.reliability.helpers import PROPERTY_SETTINGS, TODAY, record

HEADER = ["email", "first_name", "last_name", "birth_date", "phone_number"]
# Unicode White_Space: what "trimmed" means (the pipeline strips with polars, i.e. Rust's trim()).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

HOSTILE_CELLS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
    "'; DROP TABLE users; --",
    "Robert'); DELETE FROM passes_master;--",
    "1 OR 1=1",
    "%s",
    "%(email)s",
    ":email",
    "$1",
    "\\.",
    "\\N",
    "\x00",
    "\u202egnp.exe",
    "مريم",
    "כהן",
    "👩‍👩‍👧‍👦",
    "Zoë",
    "İstanbul",
    "ß",
    "Σ",
    "N/A",
    "n/a",
    "Unknown",
    "-",
    "?",
    "none",
    "1990-02-30",
    "02/29",
    "--02-29",
    "29.02.1900",
    "31.12.1899",
    "19000101",
    "00/00/0000",
    "9999-12-31",
    "2026-11-27",
    "1e9",
    "NaN",
    "   ",
    "\t",
    '"',
    '""',
    ",",
    "\r\n",
    "{first_name}",
    "{0}",
    "{{",
    "A" * 1001,
    "a@b.co",
    " ANN@Example.COM ",
    "x..y@x.com",
    "@x.com",
]
MONTH_NAMES = ["Jan", "february", "MAR", "Sept", "dec", "Foo"]


def date_like() -> st.SearchStrategy[str]:
    """Strings shaped like the date formats the parser knows, with out-of-range parts."""
    year = st.integers(0, 9999)
    part = st.integers(0, 39)
    return st.one_of(
        st.builds("{}-{:02d}-{:02d}".format, year, part, part),
        st.builds("{:02d}/{:02d}/{}".format, part, part, year),
        st.builds("{}/{}/{:02d}".format, part, part, st.integers(0, 99)),
        st.builds("{:02d}.{:02d}.{}".format, part, part, year),
        st.builds("{:04d}{:02d}{:02d}".format, year, part, part),
        st.builds("--{:02d}-{:02d}".format, part, part),
        st.builds("{} {}, {}".format, st.sampled_from(MONTH_NAMES), part, year),
        st.builds("{} {} {}".format, part, st.sampled_from(MONTH_NAMES), year),
        st.builds("{}/{}".format, part, part),
        st.builds(
            "{}T{:02d}:{:02d}:00Z".format,
            st.builds("{}-{:02d}-{:02d}".format, year, part, part),
            st.integers(0, 30),
            st.integers(0, 70),
        ),
    )


cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(HOSTILE_CELLS),
    date_like(),
    st.builds(lambda a, b: f"{a}@{b}.com", st.text(max_size=8), st.text(max_size=8)),
)


def _check_birthday(birth_date, month, day, today: date) -> None:
    if month is None:
        assert birth_date is None and day is None
        return
    assert 1 <= month <= 12 and 1 <= day <= 31
    if birth_date is None:  # a year-less birthday must be a real day of some (leap) year
        date(2000, month, day)
        again = parse_birth_date(f"--{month:02d}-{day:02d}", "MDY", today)
        assert (again.birth_date, again.month, again.day, again.warning) == (None, month, day, None)
        return
    assert EARLIEST <= birth_date <= today
    assert (birth_date.month, birth_date.day) == (month, day)
    for order in ("MDY", "DMY"):  # the stored ISO value parses back to the same date
        again = parse_birth_date(birth_date.isoformat(), order, today)
        assert (again.birth_date, again.month, again.day, again.warning) == (birth_date, month, day, None)


def _file_bytes(rows: list[list[str]], newline: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    # Python's csv writer leaves a lone "\r" unquoted (it is a line break to every reader): quote all then.
    lone_cr = any("\r" in value for row in rows for value in row)
    writer = csv.writer(buffer, lineterminator=newline, quoting=csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    writer.writerows(rows)
    text = buffer.getvalue()
    if encoding == "cp1252":
        try:
            return text.encode("cp1252")
        except UnicodeEncodeError:
            encoding = "utf-8"
    return text.encode(encoding)


@PROPERTY_SETTINGS
@given(
    rows=st.lists(st.lists(cell, min_size=5, max_size=5), min_size=1, max_size=12),
    newline=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
    date_order=st.sampled_from(["MDY", "DMY"]),
)
def test_any_cell_text_reads_and_validates_without_losing_a_row(tmp_path, rows, newline, encoding, date_order):
    record(cases_tried=1)
    path = tmp_path / "upload.csv"
    path.write_bytes(_file_bytes(rows, newline, encoding))
    try:
        raw = read_csv(path)
    except CsvFileError as exc:
        # The only whole-file verdict a well-formed header can earn: too many control characters.
        assert "binary data" in str(exc)
        return
    read_rows = raw.rows
    result = validate_upload(raw, date_order=date_order, phone_region="US", today=TODAY)

    # No row lost: every record is either a row to validate or a ragged-row reject.
    lines = set(read_rows["line"].to_list()) | set(raw.issues["line"].to_list())
    assert lines == set(range(2, len(rows) + 2))
    assert result.rows_read == len(rows) == result.rows_accepted + result.rows_rejected
    errors = result.issues.filter(pl.col("severity") == "error")
    assert errors["line"].n_unique() == result.rows_rejected
    assert all(reason and reason.strip() for reason in errors["reason"].to_list())

    # One user per accepted email, with the email lower-case and trimmed.
    emails = result.users["email"].to_list()
    assert len(emails) == len(set(emails))
    accepted_lines = set(read_rows["line"].to_list()) - set(errors["line"].to_list())
    accepted_emails = {
        e.strip(WHITE_SPACE).lower()
        for e in read_rows.filter(pl.col("line").is_in(sorted(accepted_lines)))["email"].to_list()
    }
    assert set(emails) == accepted_emails
    for email in emails:
        assert email == email.lower() and email == email.strip(WHITE_SPACE)
        assert "@" in email and len(email) <= MAX_EMAIL_LENGTH
    for birth_date, month, day in result.users.select("birth_date", "birth_month", "birth_day").rows():
        _check_birthday(birth_date, month, day, TODAY)


@PROPERTY_SETTINGS
@given(
    value=st.one_of(st.text(max_size=40), date_like(), st.sampled_from(HOSTILE_CELLS)),
    date_order=st.sampled_from(["MDY", "DMY"]),
    today=st.dates(date(1950, 1, 1), date(2100, 12, 31)),
)
@example(value="1990", date_order="MDY", today=TODAY)  # dateutil would invent today's month and day
@example(value="02/29/2023", date_order="MDY", today=TODAY)
@example(value="29.02.1900", date_order="MDY", today=TODAY)  # 1900 was not a leap year
def test_parse_birth_date_never_raises_and_accepts_only_real_dates_in_range(value, date_order, today):
    record(cases_tried=1)
    parsed = parse_birth_date(value, date_order, today)
    if parsed.month is None:
        assert parsed.birth_date is None
        return
    assert parsed.warning is None
    _check_birthday(parsed.birth_date, parsed.month, parsed.day, today)


FOUR_DIGIT_FORMATS = {
    "iso": lambda d, o: d.isoformat(),
    "iso_slash": lambda d, o: f"{d.year:04d}/{d.month}/{d.day}",
    "compact": lambda d, o: f"{d.year:04d}{d.month:02d}{d.day:02d}",
    "slash": lambda d, o: (
        f"{d.month:02d}/{d.day:02d}/{d.year}" if o == "MDY" else f"{d.day:02d}/{d.month:02d}/{d.year}"
    ),
    "dotted": lambda d, o: f"{d.day}.{d.month}.{d.year}",
    "month_first": lambda d, o: d.strftime("%B %d, ") + str(d.year),
    "day_first": lambda d, o: f"{d.day} {d.strftime('%b')} {d.year}",
    "datetime": lambda d, o: f"{d.isoformat()}T23:59:59+05:00",
}


@PROPERTY_SETTINGS
@given(
    day=st.dates(EARLIEST, TODAY),
    shape=st.sampled_from(sorted(FOUR_DIGIT_FORMATS)),
    date_order=st.sampled_from(["MDY", "DMY"]),
    padding=st.sampled_from(["", " ", "\t", "\u00a0"]),
)
def test_every_accepted_format_of_a_real_date_parses_to_that_date(day, shape, date_order, padding):
    record(cases_tried=1)
    text = padding + FOUR_DIGIT_FORMATS[shape](day, date_order) + padding
    parsed = parse_birth_date(text, date_order, TODAY)
    assert (parsed.birth_date, parsed.warning) == (day, None), text


@PROPERTY_SETTINGS
@given(day=st.dates(EARLIEST, TODAY), date_order=st.sampled_from(["MDY", "DMY"]))
def test_two_digit_years_map_to_the_most_recent_past_year(day, date_order):
    record(cases_tried=1)
    yy = day.year % 100
    text = f"{day.month}/{day.day}/{yy:02d}" if date_order == "MDY" else f"{day.day}/{day.month}/{yy:02d}"
    parsed = parse_birth_date(text, date_order, TODAY)
    if day.month == 2 and day.day == 29 and parsed.birth_date is None:
        return  # 29 Feb of a most-recent year that is not a leap year: an impossible date
    assert parsed.birth_date is not None and parsed.warning is None
    assert parsed.birth_date.year % 100 == yy and (parsed.birth_date.month, parsed.birth_date.day) == (
        day.month,
        day.day,
    )
    assert TODAY - timedelta(days=366 * 100) < parsed.birth_date <= TODAY


local_part = st.text(
    alphabet=st.characters(codec="utf-8", categories=["Lu", "Ll", "Nd"]) | st.sampled_from("._%+-'!#$&*=?^`{|}~"),
    min_size=1,
    max_size=20,
)
label = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Nd"]) | st.just("-"), min_size=1, max_size=12)
pad = st.text(alphabet=" \t\u00a0\u3000\u2003", max_size=3)


email_cell = st.tuples(
    local_part, label, st.sampled_from(["com", "ORG", "Co", "museum", "xn--p1ai"]), pad, pad, st.booleans()
)


@settings(PROPERTY_SETTINGS, max_examples=60)  # up to 8 emails per example
@given(cells=st.lists(email_cell, min_size=1, max_size=8))
def test_emails_come_out_lower_case_and_trimmed(tmp_path, cells):
    record(cases_tried=len(cells))
    rows, cores = [], []
    for local, domain, tld, left, right, upper in cells:
        core = f"{local}@{domain}.{tld}"
        core = core.upper() if upper else core
        rows.append([left + core + right, "A", "", "", ""])
        cores.append(core)
    path = tmp_path / "emails.csv"
    path.write_bytes(_file_bytes(rows, "\n", "utf-8"))
    result = validate_upload(read_csv(path), date_order="MDY", phone_region="US", today=TODAY)
    errors = result.issues.filter(pl.col("severity") == "error")
    assert all(reason.startswith("email") for reason in errors["reason"].to_list())
    rejected = set(errors["line"].to_list())
    # One leading apostrophe is the spreadsheet "text" marker exports put before values, not part of the address.
    expected = {core.lower().removeprefix("'") for line, core in enumerate(cores, start=2) if line not in rejected}
    assert set(result.users["email"].to_list()) == expected
    for email in expected:
        assert email == email.lower() == email.strip(WHITE_SPACE)


@pytest.mark.parametrize(
    "email", ["\x01ann@x.com", "ann\x7f@x.com", "\u200bann@x.com", "ann\u202e@x.com", "a\x1fnn@x.com"]
)
def test_emails_with_control_or_invisible_characters_are_rejected(tmp_path, email):
    record(cases_tried=1)
    path = tmp_path / "emails.csv"
    path.write_bytes(_file_bytes([[email, "A", "", "", ""]], "\n", "utf-8"))
    result = validate_upload(read_csv(path), date_order="MDY", phone_region="US", today=TODAY)
    assert result.users.height == 0 and result.rows_rejected == 1


@settings(PROPERTY_SETTINGS, max_examples=120)
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda b: b"email,first_name,dob\r\n" + b),
        st.binary(max_size=300).map(lambda b: b"\xff\xfe" + b),
        st.binary(max_size=300).map(lambda b: b"\xef\xbb\xbfemail\n" + b),
    )
)
def test_arbitrary_bytes_are_a_readable_upload_or_one_clear_file_error(tmp_path, data):
    record(cases_tried=1)
    path = tmp_path / "bytes.csv"
    path.write_bytes(data)
    try:
        raw = read_csv(path, file_label="p/bytes.csv")
    except CsvFileError as exc:
        message = str(exc)
        assert message.startswith("p/bytes.csv: ") and "\n" not in message.strip()
        return
    result = validate_upload(raw, date_order="DMY", phone_region="GB", today=TODAY)
    assert result.rows_read == result.rows_accepted + result.rows_rejected


@PROPERTY_SETTINGS
@given(
    values=st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(HOSTILE_CELLS),
            st.sampled_from(FORMULA_START).flatmap(lambda c: st.text(max_size=10).map(lambda t: c + t)),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_issue_reports_neutralise_every_formula_and_keep_the_text(tmp_path, values):
    record(cases_tried=1)
    issues = pl.DataFrame(
        {
            "line": list(range(2, len(values) + 2)),
            "column": ["first_name"] * len(values),
            "value": values,
            "severity": ["error"] * len(values),
            "reason": [f"invalid value {v!r}" for v in values],
        }
    )
    path = write_issue_report(issues, tmp_path / "p" / "report.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(values)
    for row, original in zip(rows, values, strict=True):
        for cell_value in row.values():
            assert not cell_value.startswith(FORMULA_START), cell_value
        expected = "'" + original if original.startswith(FORMULA_START) else original
        assert row["value"] == expected
    assert not list(path.parent.glob(".*.part"))  # written atomically, nothing left behind


PLACEHOLDER_VALUES = {"first_name": "Ann", "program_name": "Joe's Pizza", "points": "50"}


@PROPERTY_SETTINGS
@given(
    template=st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(
                [
                    "{first_name}",
                    "{program_name}",
                    "{points}",
                    "{first_name.__class__}",
                    "{0}",
                    "{{",
                    "}}",
                    "%s",
                    "%(first_name)s",
                    "{points!r}",
                    "{program_name:>20}",
                    "${first_name}",
                    "{{first_name}}",
                    "{",
                    "}",
                    "\\{points\\}",
                    "{{points}",
                    "{FIRST_NAME}",
                    "{ first_name }",
                ]
            ),
        ),
        max_size=10,
    ).map("".join)
)
def test_templates_substitute_exactly_the_three_placeholders_and_nothing_else(template):
    record(cases_tried=1)
    rendered = templates.render(template, first_name="Ann", program_name="Joe's Pizza", points=50)
    # Reference: a left-to-right scan replacing only the exact placeholders.
    expected, i = [], 0
    while i < len(template):
        for name, value in PLACEHOLDER_VALUES.items():
            if template.startswith("{" + name + "}", i):
                expected.append(value)
                i += len(name) + 2
                break
        else:
            expected.append(template[i])
            i += 1
    assert rendered == "".join(expected)


@pytest.mark.parametrize(
    "template",
    [
        "{first_name.__class__}",
        "{first_name.__class__.__mro__}",
        "{0}",
        "{{",
        "}}",
        "{{first_name}}",
        "%s",
        "%(points)s",
        "{points!r}",
        "{program_name:>99999999}",
        "{__import__('os').system('id')}",
        "${{7*7}}",
        "{{7*7}}",
        "{% raw %}",
    ],
)
def test_hostile_templates_render_verbatim(template):
    record(cases_tried=1)
    rendered = templates.render(template, first_name="{points}", program_name="{first_name}", points=5)
    expected = template.replace("{{first_name}}", "{" + "{points}" + "}")
    assert rendered == expected


# --- the fast CSV path agrees with the reference reader -------------------------------------------

raw_cell = st.one_of(
    st.text(alphabet=st.sampled_from('ab ,"\r\n\t=é€\x00'), max_size=6),
    st.sampled_from(HOSTILE_CELLS),
    st.text(max_size=6),
)


def _raw_line(cells: list[str], quote_mode: int) -> str:
    out = []
    for cell in cells:
        special = any(ch in cell for ch in ',"\r\n')
        if quote_mode == 0 and not special:  # minimal quoting
            out.append(cell)
        elif quote_mode == 2:  # no quoting at all: whatever the cell does to the record
            out.append(cell)
        else:
            out.append('"' + cell.replace('"', '""') + '"')
    return ",".join(out)


@PROPERTY_SETTINGS
@given(
    records=st.lists(
        st.tuples(st.lists(raw_cell, min_size=0, max_size=7), st.sampled_from([0, 0, 1, 2])), min_size=1, max_size=10
    ),
    header=st.sampled_from(["email,first_name,dob", "Email,First Name,Mobile,Extra", "first_name,email", "email"]),
    newline=st.sampled_from(["\n", "\r\n", "\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
    trailing_newline=st.booleans(),
)
def test_the_fast_reader_and_the_reference_reader_agree(
    tmp_path, monkeypatch, records, header, newline, encoding, trailing_newline
):
    """csv_reader has a polars fast path that must give exactly what the csv-module loop gives
    (rows, line numbers, ragged-row rejects, counts, whole-file errors) for any bytes."""
    from loyalty_pipeline import csv_reader

    # Fails (never skips) when the fast path is renamed: then this test compares nothing.
    assert callable(getattr(csv_reader, "_fast_records", None)), (
        "csv_reader._fast_records is gone: point this test at the fast path it must compare"
    )
    record(cases_tried=1)
    text = newline.join([header, *(_raw_line(cells, mode) for cells, mode in records)])
    text += newline if trailing_newline else ""
    data = text.encode(encoding, errors="replace") if encoding == "cp1252" else text.encode(encoding)
    path = tmp_path / "diff.csv"
    path.write_bytes(data)

    def outcome():
        try:
            raw = read_csv(path, file_label="p/diff.csv")
        except CsvFileError as exc:
            return ("error", str(exc))
        parsers.append(getattr(raw, "parser", None))
        return ("ok", raw.rows.to_dicts(), raw.issues.to_dicts(), raw.rows_read, raw.encoding, raw.nul_bytes_stripped)

    parsers: list = []
    fast = outcome()
    record(fast_path_cases=int(parsers[:1] == ["polars"]))
    with monkeypatch.context() as patch:
        patch.setattr(csv_reader, "_fast_records", lambda *args, **kwargs: None)
        reference = outcome()
    assert fast == reference
