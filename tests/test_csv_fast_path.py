"""The polars fast path of read_csv must give exactly what the csv-module loop gives: the same
rows, line numbers, issues and counts for any file; it only decides when it may run."""

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty_pipeline import csv_reader
from loyalty_pipeline.csv_reader import read_csv
from tests.factories import write_csv

CELLS = [
    "",
    "a",
    "b c",
    " x ",
    "é",
    "😀",
    "Ann",
    '"q"',
    '"a,b"',
    '"l1\nl2"',
    '"l1\r\nl2"',
    '"x""y"',
    '""',
    'a"b',
    '"a"b',
    ' "s"',
    '"',
    "a,b",
    "\t",
    "x\r",
    '"c\r"',
    "=1+2",
]
HEADERS = ["email,first_name", "Email,DOB,Mobile,Surname,First Name", "email", "dob,email,x", "email,,extra"]
ENDINGS = ["\n", "\r\n", "\r"]


def _python_only(path):
    with mock.patch.object(csv_reader, "_fast_records", lambda *args: None):
        return read_csv(path)


def _same(fast, slow):
    assert fast.rows.to_dicts() == slow.rows.to_dicts()
    assert fast.rows.schema == slow.rows.schema
    assert fast.issues.to_dicts() == slow.issues.to_dicts()
    assert (
        fast.rows_read,
        fast.encoding,
        fast.unknown_columns,
        fast.nul_bytes_stripped,
        fast.delimiter,
        fast.sources,
        fast.header_line,
        fast.warnings.to_dicts(),
    ) == (
        slow.rows_read,
        slow.encoding,
        slow.unknown_columns,
        slow.nul_bytes_stripped,
        slow.delimiter,
        slow.sources,
        slow.header_line,
        slow.warnings.to_dicts(),
    )


@st.composite
def csv_texts(draw):
    delimiter = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    header = draw(st.sampled_from(HEADERS)).replace(",", delimiter)
    width = len(header.split(delimiter))
    regular = draw(st.booleans())  # half the examples are well-formed, so the fast path runs too
    ending = "\n" if regular else draw(st.sampled_from(ENDINGS))
    records = []
    for _ in range(draw(st.integers(0, 12))):
        if not regular and draw(st.integers(0, 9)) == 0:
            records.append("")  # a blank row
            continue
        n = width if regular else draw(st.integers(max(1, width - 1), width + 2))
        pool = [c for c in CELLS if c.count('"') % 2 == 0 and '"a"b' != c and ' "s"' != c] if regular else CELLS
        records.append(delimiter.join(draw(st.sampled_from(pool)) for _ in range(n)))
    text = header + ending + ending.join(records) + (ending if draw(st.booleans()) else "")
    return text, draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_texts())
def test_fast_path_reads_exactly_what_the_csv_module_reads(tmp_path, sample):
    text, encoding = sample
    data = text.encode(encoding, errors="replace")
    path = write_csv(tmp_path / "f.csv", data)
    try:
        slow = _python_only(path)
    except csv_reader.CsvFileError as error:
        try:
            read_csv(path)
        except csv_reader.CsvFileError as again:
            assert str(again) == str(error)
            return
        raise AssertionError("the fast path accepted a file the csv module rejects") from error
    _same(read_csv(path), slow)


def test_a_well_formed_export_takes_the_fast_path(tmp_path):
    text = (
        "Email,First Name,DOB,Mobile\r\n"
        'a@x.com,"Smith, ""Jo""\r\nsecond line",03/14/1990,2125550100\r\n'
        'b@x.com,Bo,"March 14, 1990",\r\n'
        "c@x.com,,,\r\n"
    )
    path = write_csv(tmp_path / "a.csv", text)
    fast = read_csv(path)
    assert fast.parser == "polars"
    assert fast.rows["line"].to_list() == [2, 3, 4]
    _same(fast, _python_only(path))


@pytest.mark.parametrize(
    "text, parser",
    [
        ("email,first_name\na@x.com,A\n\nb@x.com,B\n", "polars"),  # a blank row keeps its line number
        ("email,first_name\n\n\na@x.com,A\n\n", "polars"),  # blank rows first and last
        ("email,first_name\na@x.com,A,extra\nb@x.com,B,\n", "polars"),  # ragged: rejected / harmless
        ('email,first_name\na@x.com\n""\nb@x.com,B, \t\n', "polars"),  # short record, "" row, blank surplus
        ('email,first_name\r\na@x.com,"x\r\ny","z,"\r\n', "polars"),  # ragged with quoted cells
        ('E-Mail;Vorname;Geburtstag\r\na@x.com;"Jo; ""J""";14.03.1990\r\n\r\nb@x.com;Bo;;x\r\n', "polars"),
        ('email\tfirst_name\na@x.com\t"Jo\tJ"\nb@x.com\tBo\textra\n', "polars"),  # tab
        ("Notes:\n\nemail,first_name\na@x.com,A\n\nb@x.com,B\n", "polars"),  # notes above the header
        ('email,first_name\na@x.com,Jo"hn\n', "python"),  # a quote inside an unquoted field
        ('email,first_name\na@x.com,"Jo"hn\n', "python"),  # text after a closing quote
        ('email,first_name\na@x.com,"John\n', "python"),  # an unterminated quote
        ("email,first_name\ra@x.com,A\r", "python"),  # old Mac line ends
        ('Notes:\n\nemail,first_name\na@x.com,Jo"hn\n', "python"),  # notes above, then a stray quote
    ],
)
def test_each_file_reads_the_same_on_the_path_it_takes(tmp_path, text, parser):
    path = write_csv(tmp_path / "b.csv", text)
    raw = read_csv(path)
    assert raw.parser == parser
    _same(raw, _python_only(path))


def test_a_very_long_field_reads_the_same_either_way(tmp_path):
    path = write_csv(tmp_path / "c.csv", "email,first_name\na@x.com," + "x" * 200_000 + "\nb@x.com,B\n")
    _same(read_csv(path), _python_only(path))


@pytest.mark.parametrize(
    "encoding, extra",
    [
        ("utf-8", ""),
        ("utf-8-sig", ""),
        ("utf-8", "nul@x.com,N\x00ul\n"),  # NUL bytes are stripped and counted
        ("utf-8", 'odd@x.com,"a"b\n'),  # a stray quote: the csv module reads the file again
        ("cp1252", ""),  # not UTF-8: decoded whole, as a small file is
    ],
)
def test_a_large_file_reads_exactly_what_the_csv_module_reads(tmp_path, encoding, extra):
    """Files past 2 MiB are checked as UTF-8 in slices and their header found in a prefix, never
    decoded whole: the result must not change."""
    names = ["Zoë", "Ann", "Jürgen"] if encoding == "cp1252" else ["Zoë 😀", "Ann", "李"]
    rows = "".join(f"u{i}@x.com,{names[i % 3]}\n" for i in range(120_000))
    data = ("email,first_name\n" + extra + rows).encode(encoding)
    assert len(data) > 2 * csv_reader._UTF8_PREFIX
    path = write_csv(tmp_path / "big.csv", data)
    fast = read_csv(path)
    assert fast.rows.height == 120_000 + (1 if extra else 0)
    _same(fast, _python_only(path))


def test_a_large_file_changed_while_read_again_is_refused(tmp_path, monkeypatch):
    rows = "".join(f"u{i}@x.com,Ann\n" for i in range(150_000))
    path = write_csv(tmp_path / "big.csv", 'email,first_name\nodd@x.com,"a"b\n' + rows)
    real = csv_reader._fast_records

    def rewrite_then_fast(*args, **kwargs):
        path.write_bytes(path.read_bytes() + b"late@x.com,Late\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(csv_reader, "_fast_records", rewrite_then_fast)
    with pytest.raises(csv_reader.CsvFileError, match="changed while it was being read"):
        read_csv(path)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("nul", [b"", b"\x00"])
def test_the_records_start_after_the_bom_notes_and_header(tmp_path, bom, nul):
    """The fast path cuts the records out of the file's bytes at the header's end: a BOM, a note
    above the header and NULs (stripped, so the offsets of the text and the bytes differ) must
    not move the cut."""
    path = tmp_path / "u.csv"
    path.write_bytes(bom + b"Export" + nul + b" of May\nemail,first_name\nA@x.com,An" + nul + b'n\nb@x.com,"B, b"\n')
    fast = read_csv(path)
    assert fast.parser == "polars"
    assert fast.rows.select("line", "email", "first_name").rows() == [(3, "A@x.com", "Ann"), (4, "b@x.com", "B, b")]
    _same(fast, _python_only(path))
