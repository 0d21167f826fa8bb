"""Reading an uploaded customer file into a table of strings: file kind, encoding, delimiter,
headers (through the field table in fields.py), ragged records.

Uploads are text files (.csv, .tsv, .txt: delimiter detected among , ; TAB |) or .xlsx workbooks
(xlsx_reader.py); read_upload picks the reader from the file name. The output keeps every cell as
text; deciding what a cell means is validation's job. `line` is the row number a person sees in a
spreadsheet (header = 1, first record = 2), which is the record index, not the physical line,
because quoted fields may span several lines."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import polars as pl

from loyalty_pipeline.fields import (
    ColumnMatch,
    HeaderError,
    assemble,
    column_name,
    ignored_field_warnings,
    match_header,
    normalize_header,  # noqa: F401  (callers that map a header by hand)
)
from loyalty_pipeline.names import file_kind
from loyalty_pipeline.vcard_reader import VCardError, read_vcards
from loyalty_pipeline.xlsx_reader import WorkbookError, read_workbook

ISSUE_SCHEMA = {
    "line": pl.Int64,
    "column": pl.Utf8,
    "value": pl.Utf8,
    "severity": pl.Utf8,
    "reason": pl.Utf8,
}
# Signatures of files people upload by mistake instead of a CSV export.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook? then upload it with its .xlsx name)",
    b"\xd0\xcf\x11\xe0": "a legacy Excel/Office document",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
}
_CHUNK = 200_000
_HEADER_PREFIX = 1 << 16
# Notes above the header (LinkedIn's Connections.csv starts with three lines of them and a blank
# line): the header is the first of the file's first records that has an email column.
_HEADER_SEARCH_RECORDS = 10
# Legacy encodings are told by charset-normalizer from a sample: the file's start and the bytes
# around its first one that is not UTF-8. A guess whose decoded text is messier than this fails the file.
_SAMPLE = 1 << 17
_MAX_CHAOS = 0.2
_SAME_CHAOS = 0.02
# Code pages charset-normalizer names for text that Windows-1252 decodes the same (a tie among
# Western code pages is Windows-1252, what Excel writes in Western locales).
_WINDOWS_1252 = "cp1252"
# The csv module refuses fields over 128 KiB and would fail the whole file; an over-long cell
# must only reject its row (validation's MAX_CELL_LENGTH), so lift the limit.
csv.field_size_limit(2**31 - 1)


# An Excel "CSV" may start with a line naming its delimiter: sep=;
_SEP_LINE = re.compile(r'"?sep=([,;\t|])"?[ \t]*(?:\r\n|\n|\r|$)', re.IGNORECASE)
_DELIMITERS = (",", ";", "\t", "|")
_QUOTED = re.compile(r'"[^"]*"')


class CsvFileError(ValueError):
    """The whole file is unusable; nothing from it may be written."""


@dataclass
class RawCsv:
    """An upload read as text, whatever its kind (CSV, TSV, TXT or an .xlsx workbook)."""

    rows: pl.DataFrame  # line + FIELDS, all Utf8 (fields the file lacks are null)
    issues: pl.DataFrame  # ISSUE_SCHEMA
    rows_read: int
    encoding: str
    sha256: str
    unknown_columns: list[str] = field(default_factory=list)  # ignored columns, as the header names them
    nul_bytes_stripped: int = 0
    parser: str = "python"  # "polars": the fast path below read the records (same result); "calamine"
    file_kind: str = "csv"  # csv, tsv, txt, xlsx, xls, ods or vcf
    delimiter: str | None = ","  # text files
    sheet: str | None = None  # workbooks: the worksheet read
    sources: dict[str, list[str]] = field(default_factory=dict)  # field -> header names that fed it
    encoding_confidence: float | None = 1.0  # text files: 1.0 for UTF-8/BOM, the detector's otherwise
    header_line: int = 1  # the header's row (after notes above it)
    # File-level warnings (ISSUE_SCHEMA, line = the header's): ignored columns that look like a
    # field and hold values. Validation adds them to the upload's issues; they reject nothing.
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ISSUE_SCHEMA))

    @property
    def file_warnings(self) -> list[str]:
        """The file-level warnings as lines for the run metadata and the CLI."""
        return self.warnings["reason"].to_list()

    def take_rows(self) -> pl.DataFrame:
        """The rows, handed over: this object keeps an empty frame of the same columns. Validation
        takes them so the reader's frame is freed once its cleaned copy exists (held alongside
        it, it was the 1M-row upload's peak memory: +80 MB)."""
        rows, self.rows = self.rows, self.rows.clear()
        return rows


def read_upload(
    path: Path, file_label: str | None = None, columns: Mapping[str, Sequence[str]] | None = None
) -> RawCsv:
    """Any accepted upload by its file kind; `columns` is the program's csv_columns mapping."""
    label = file_label or Path(path).name
    kind = file_kind(Path(path).name)
    if kind in ("xlsx", "xls", "ods"):
        return _read_workbook(Path(path), label, columns, kind)
    if kind == "vcf":
        return _read_vcf(Path(path), label, columns)
    return read_csv(path, label, columns)


def _matched(cells: pl.DataFrame, match: ColumnMatch, header_line: int) -> dict:
    """What every reader's RawCsv takes from its line + c<index> frame and the header's match."""
    return dict(
        rows=assemble(cells, match),
        unknown_columns=match.ignored,
        sources=match.fed_by(),
        header_line=header_line,
        warnings=_file_warnings(cells, match, header_line),
    )


def _from_cells(cells: pl.DataFrame, match: ColumnMatch, header_line: int, data: bytes, **layout) -> RawCsv:
    """The RawCsv of a workbook's or vCard file's cells (every column of match.read)."""
    return RawCsv(
        **_matched(cells, match, header_line),
        issues=pl.DataFrame(schema=ISSUE_SCHEMA),
        rows_read=cells.height,
        sha256=hashlib.sha256(data).hexdigest(),
        delimiter=None,
        **layout,
    )


def _read_workbook(path: Path, label: str, columns, kind: str) -> RawCsv:
    data = path.read_bytes()
    try:
        workbook = read_workbook(data, lambda header: match_header(header, columns), kind)
    except WorkbookError as exc:
        raise CsvFileError(f"{label}: {exc}") from exc
    return _from_cells(
        workbook.cells,
        workbook.match,
        workbook.header_line,
        data,
        encoding=kind,
        encoding_confidence=None,
        parser="calamine",
        file_kind=kind,
        sheet=workbook.sheet,
    )


def _read_vcf(path: Path, label: str, columns) -> RawCsv:
    data = path.read_bytes()
    text, encoding, confidence = decode(data, label)
    try:
        cards = read_vcards(text, lambda header: match_header(header, columns))
    except VCardError as exc:
        raise CsvFileError(f"{label}: {exc}") from exc
    return _from_cells(
        cards.cells,
        cards.match,
        0,
        data,
        encoding=encoding,
        encoding_confidence=confidence,
        parser="vobject",
        file_kind="vcf",
    )


def _file_warnings(cells: pl.DataFrame, match: ColumnMatch, header_line: int) -> pl.DataFrame:
    return ignored_field_warnings(cells, match, header_line).cast(ISSUE_SCHEMA)


def _refuse_binary(data: bytes, file_label: str) -> None:
    for signature, what in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise CsvFileError(f"{file_label}: not a CSV file, it looks like {what}")


# A UTF-8 file's text is decoded in slices of this size to check it, and only its first part is kept.
_UTF8_SLICE = 1 << 22
_UTF8_PREFIX = 1 << 20


def _utf8_prefix(data: bytes) -> str | None:
    """The first MiB of a UTF-8 file's text, once the whole file is known to decode, or None when
    it does not (another encoding: `decode` tells which). The fast path reads the records as bytes,
    so the whole decoded text (4 bytes a character as soon as the file holds one emoji, ~280 MB for
    1M rows) is never built; the header is found in this prefix."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    view = memoryview(data)
    checker = codecs.getincrementaldecoder("utf-8")()
    try:
        for offset in range(start, len(data), _UTF8_SLICE):
            checker.decode(view[offset : offset + _UTF8_SLICE])
        checker.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return codecs.getincrementaldecoder("utf-8")().decode(view[start : start + _UTF8_PREFIX])


def decode(data: bytes, file_label: str) -> tuple[str, str, float | None]:
    """Text, the encoding used and the confidence in it: UTF-8 (with or without BOM) and UTF-16
    with a BOM are certain; anything else is told by charset-normalizer (Shift-JIS, GB18030, Big5,
    EUC-KR, Windows-125x, ISO-8859-x, ...). Valid UTF-8 never runs the detector."""
    _refuse_binary(data, file_label)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # A truncated or malformed UTF-16 file must not crash the reader: bad units become U+FFFD.
        return data.decode("utf-16", errors="replace"), "utf-16", 1.0
    if data.startswith(b"\xef\xbb\xbf"):
        data, bom = data[3:], True
    else:
        bom = False
    try:
        return data.decode("utf-8"), "utf-8-sig" if bom else "utf-8", 1.0
    except UnicodeDecodeError as error:
        first_bad = error.start
    encoding, confidence = _detect_encoding(data, first_bad, file_label)
    # The detector read a sample; a byte elsewhere that the encoding leaves undefined becomes U+FFFD.
    return data.decode(encoding, errors="replace"), _ENCODING_NAMES.get(encoding, encoding), confidence


# What the metadata calls the detector's code pages (the name an operator knows).
_ENCODING_NAMES = {
    "cp1252": "windows-1252",
    "cp1251": "windows-1251",
    "cp1253": "windows-1253",
    "cp1250": "windows-1250",
}


def _odd_characters(text: str) -> int:
    """Symbols and stray marks next to letters ("J³rgen", "Wi¶niewski"): what a wrong code page leaves."""
    odd = 0
    text = text[: _SAMPLE // 2]
    for before, char, after in zip(text, text[1:], text[2:], strict=False):
        if ord(char) > 127 and unicodedata.category(char)[0] in "SNPC" and (before.isalpha() or after.isalpha()):
            odd += 1
    return odd


def _detect_encoding(data: bytes, first_bad: int, file_label: str) -> tuple[str, float]:
    sample = data[:_SAMPLE]
    if first_bad > len(sample):  # the first non-UTF-8 byte lies further on: read around it too
        start = data.rfind(b"\n", 0, first_bad) + 1
        sample += b"\n" + data[start : start + _SAMPLE]
    results = list(charset_normalizer.from_bytes(sample))
    if not results or results[0].chaos > _MAX_CHAOS:
        candidates = ", ".join(f"{r.encoding} ({1 - r.chaos:.2f})" for r in results[:4]) or "none"
        raise CsvFileError(
            f"{file_label}: the file's encoding cannot be told with confidence (candidates: {candidates}); "
            "save it as UTF-8 (Excel: CSV UTF-8) and upload that"
        )
    best = results[0].chaos
    tied = [r for r in results if r.chaos <= best + _SAME_CHAOS]
    # Among equally clean readings, the one with the fewest stray symbols in words; then Windows-1252.
    scored = sorted(tied, key=lambda r: (_odd_characters(str(r)), _WINDOWS_1252 not in r.could_be_from_charset))
    chosen = scored[0]
    encoding = _WINDOWS_1252 if _WINDOWS_1252 in chosen.could_be_from_charset else chosen.encoding
    return encoding, round(1 - chosen.chaos, 3)


def read_csv(path: Path, file_label: str | None = None, columns: Mapping[str, Sequence[str]] | None = None) -> RawCsv:
    """A delimited text file (.csv, .tsv, .txt; any other name is read as .csv)."""
    label = file_label or Path(path).name
    kind = {".tsv": "tsv", ".txt": "txt"}.get(Path(path).suffix.lower(), "csv")
    data = Path(path).read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    _refuse_binary(data, label)
    prefix = None
    if len(data) > 2 * _UTF8_PREFIX and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        prefix = _utf8_prefix(data)
    if prefix is not None:  # a large UTF-8 file: its header is in the prefix, its records stay bytes
        text, encoding, confidence = prefix, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", 1.0
        nul_count = data.count(b"\x00")  # (in UTF-8 a 0 byte is only ever U+0000)
    else:
        text, encoding, confidence = decode(data, label)
        nul_count = text.count("\x00")
    if nul_count:
        text = text.replace("\x00", "")
    if not text or text.isspace():  # what `not text.strip()` means, without copying the text
        raise CsvFileError(f"{label}: the file is empty")
    if sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t") > 8:
        raise CsvFileError(f"{label}: not a CSV file, it contains binary data")

    sep_line = _SEP_LINE.match(text)
    header_start = sep_line.end() if sep_line else 0
    delimiter, header, body_start, header_line, match = _find_header(
        text, label, header_start, sep_line.group(1) if sep_line else None, "\t" if kind == "tsv" else ",", columns
    )
    width = len(header)
    if prefix is not None and body_start >= len(text) - 1:
        raise CsvFileError(f"{label}: the header row is longer than {_UTF8_PREFIX:,} characters")

    body = _utf8_body(data, text, encoding, body_start, nul_count)
    del data  # the reference reader, when it has to run, reads the file again
    # The fast path reads bytes only: the decoded text (4 bytes a character once the file holds
    # one emoji, ~280 MB for 1M rows) is freed before polars parses, and rebuilt for the reference
    # reader only when that one has to run.
    del text
    parsed = _fast_records(body, width, delimiter)
    del body  # the parsed frame holds the cells: the bytes go before the frame is settled
    fast = _fast_cells(parsed, width, match.read, delimiter, header_line) if parsed is not None else None
    del parsed
    if fast is not None:
        (cells, issues, records), parser = fast, "polars"
    else:
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CsvFileError(f"{label}: the file changed while it was being read; it is read again next time")
        text = decode(data, label)[0].replace("\x00", "")
        stream = io.StringIO(text, newline="")
        stream.seek(body_start)
        reader = csv.reader(stream, delimiter=delimiter, strict=False)
        cells, issues, records = _python_records(reader, label, width, match.read, delimiter, header_line)
        parser = "python"
    return RawCsv(
        **_matched(cells, match, header_line),
        issues=pl.DataFrame(issues, schema=ISSUE_SCHEMA, orient="row"),
        rows_read=records,
        encoding=encoding,
        sha256=sha256,
        nul_bytes_stripped=nul_count,
        parser=parser,
        file_kind=kind,
        delimiter=delimiter,
        encoding_confidence=confidence,
    )


def _find_header(text: str, label: str, start: int, declared: str | None, default: str, columns):
    """(delimiter, header, body offset, header line, match): the first record at `start`, or when it
    has no email column, the first of the next few records that has one (notes above the header)."""
    delimiter = declared or _detect_delimiter(text, start, default)
    header, body_start = _header(text, label, start, delimiter)
    try:
        return delimiter, header, body_start, 1, match_header(header, columns)
    except HeaderError as exc:
        first_error = exc
    offset, line = body_start, 2
    for _ in range(_HEADER_SEARCH_RECORDS):
        if offset >= len(text):
            break
        candidate = declared or _detect_delimiter(text, offset, default)
        try:
            record, after = _header(text, label, offset, candidate)
        except CsvFileError:
            break
        if any(cell.strip() for cell in record):
            try:
                return candidate, record, after, line, match_header(record, columns)
            except HeaderError:
                pass
        offset, line = after, line + 1
    raise CsvFileError(f"{label}: {first_error}") from first_error


def _detect_delimiter(text: str, start: int, default: str) -> str:
    """The candidate that splits the header line most often (quoted parts aside); `default` wins
    ties and single-column files."""
    line = _QUOTED.sub("", text[start : start + _HEADER_PREFIX].split("\n", 1)[0])
    counts = {candidate: line.count(candidate) for candidate in (default, *_DELIMITERS)}
    best = max(counts, key=counts.get)  # the first of equal counts: the default, then , ; TAB |
    return best if counts[best] else default


def _header(text: str, label: str, start: int, delimiter: str) -> tuple[list[str], int]:
    """The header record at offset `start` and the offset where the next record begins. The csv
    module pulls whole lines, so the stream's position after the first record is that offset; a
    prefix is enough unless the header runs past it (copying a whole large file into a StringIO is
    not free)."""
    for source in (text[: start + _HEADER_PREFIX], text):
        stream = io.StringIO(source, newline="")
        stream.seek(start)
        try:
            header = next(csv.reader(stream, delimiter=delimiter, strict=False))
        except csv.Error as exc:
            if len(source) < len(text):
                continue
            raise CsvFileError(f"{label}: not a readable CSV file ({exc})") from exc
        except StopIteration:
            raise CsvFileError(f"{label}: the file is empty") from None
        if stream.tell() < len(source) or len(source) == len(text):
            return [name.replace("\ufeff", "") for name in header], stream.tell()
    raise AssertionError("unreachable: the whole text always decides")


def _python_records(
    reader, label: str, width: int, used: list[int], delimiter: str, header_line: int = 1
) -> tuple[pl.DataFrame, list[tuple], int]:
    """The reference reader: the csv module, record by record (blank rows, ragged records)."""
    chunks: list[pl.DataFrame] = []
    issues: list[tuple] = []
    columns: dict[str, list] = {name: [] for name in ("line", *map(column_name, used))}
    line = header_line
    records = 0
    try:
        for record in reader:
            line += 1
            if not record or (len(record) == 1 and not record[0]):
                continue  # a blank row: nothing to load, nothing to complain about
            records += 1
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                issues.append(
                    (
                        line,
                        "*",
                        delimiter.join(record)[:200],
                        "error",
                        f"record has {len(record)} fields but the header has {width}",
                    )
                )
                continue
            columns["line"].append(line)
            for index in used:
                columns[column_name(index)].append(record[index] if index < len(record) else None)
            if len(columns["line"]) >= _CHUNK:
                chunks.append(_frame(columns))
                columns = {name: [] for name in columns}
    except csv.Error as exc:
        raise CsvFileError(f"{label}: not a readable CSV file at line {line} ({exc})") from exc
    chunks.append(_frame(columns))
    return pl.concat(chunks, how="vertical"), issues, records


def _frame(columns: dict[str, list]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.Int64 if name == "line" else pl.Utf8)
            for name, values in columns.items()
        }
    )


# --- fast path -----------------------------------------------------------------------------------
# polars' CSV parser reads a file about ten times faster than the loop above. It is used when its
# records provably are the csv module's, checked on the raw bytes (',', '"', '\r' and '\n' never
# occur inside a multi-byte UTF-8 sequence):
# - every '"' belongs to a quoted field that starts a field and ends at a delimiter or a line end
#   ('"' doubled inside), and there is no lone '\r' (a line end for the csv module only), so both
#   parsers split fields and records at the same places;
# - with the quoted fields blanked out, each line of the file is one record and its delimiters give
#   the record's field count, so blank rows (which keep their line number), short records (no cell,
#   where polars pads with "") and longer records (rejected when a surplus cell is not blank, as
#   the loop does) are handled from those counts; the few longer records are judged in Python;
# - polars must return one row per line, and the first cell of every record whose first field is
#   not quoted must be the text before its first delimiter (the two readers are aligned).
# Anything else goes through the loop above, so every behaviour stays the same.
_QUOTED_FIELD = re.compile(rb'"(?:[^"]++|"")*+"')
_UNUSED_BYTE_CANDIDATES = (0x1F, 0x1E, 0x1D, 0x1C, 0x01, 0x02, 0x03)


def _utf8_body(data: bytes, text: str, encoding: str, body_start: int, nul_count: int) -> bytes:
    """The records after the header as UTF-8 bytes, without re-encoding a UTF-8 file."""
    if encoding in ("utf-8", "utf-8-sig"):
        bom = 3 if encoding == "utf-8-sig" else 0
        header = len(text[:body_start].encode("utf-8"))  # `text` is the file without its BOM and NULs
        if nul_count:
            return data[bom:].replace(b"\x00", b"")[header:]
        return data[bom + header :]  # one copy of the records (slicing the BOM off first made two)
    return text[body_start:].encode("utf-8")


def _well_formed_quotes(body: bytes, delimiter: bytes) -> bool:
    size, seen = len(body), 0
    before, after = delimiter + b"\n", delimiter + b"\r\n"
    for match in _QUOTED_FIELD.finditer(body):
        start, end = match.span()
        if (start > 0 and body[start - 1] not in before) or (end < size and body[end] not in after):
            return False
        seen += end - start - len(match.group().replace(b'"', b""))
    return seen == body.count(b'"')


@dataclass
class _ParsedLines:
    frame: pl.DataFrame  # c0..c<n> text, one row per line
    fields: pl.Series  # each line's field count
    first_cells: pl.Series  # each line's text up to its first delimiter
    line_count: int


def _fast_records(body: bytes, width: int, delimiter: str) -> _ParsedLines | None:
    """The records parsed by polars, or None when only the reference reader can tell; _fast_cells
    then checks them against the lines and makes them (cells, issues, records) as _python_records
    gives them."""
    if (
        not body
        or width < 1
        or body.count(b"\r") != body.count(b"\r\n")
        or not _well_formed_quotes(body, delimiter.encode())
    ):
        return None
    masked = _QUOTED_FIELD.sub(b'""', body)
    separator = next((chr(b) for b in _UNUSED_BYTE_CANDIDATES if bytes([b]) not in masked), None)
    if separator is None:
        return None
    try:  # one row per line: no quote is special and the separator does not occur
        lines = pl.read_csv(
            masked,
            has_header=False,
            schema={"masked": pl.String},
            separator=separator,
            quote_char=None,
            empty_string_is_null=False,
            infer_schema=False,
            missing_columns="insert",
            raise_if_empty=False,
        )["masked"]
    except Exception:
        return None
    del masked
    counts = lines.str.count_matches(delimiter, literal=True).cast(pl.Int64) + 1
    ncols = max(int(counts.max()), width)
    # Of each line only its first cell is kept for the alignment check below, not the whole text
    # (held while the records are parsed, that would be one more copy of the file).
    line_count = len(lines)
    first_cells = lines.str.split(delimiter, inclusive=False).list.first()
    del lines
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            schema={column_name(i): pl.String for i in range(ncols)},
            empty_string_is_null=False,
            infer_schema=False,
            truncate_ragged_lines=False,
            missing_columns="insert",
            raise_if_empty=False,
            quote_char='"',
            separator=delimiter,
        )
    except Exception:  # any disagreement is settled by the reference reader
        return None
    return _ParsedLines(frame, counts, first_cells, line_count)


def _fast_cells(parsed: _ParsedLines, width: int, used: list[int], delimiter: str, header_line: int):
    frame, counts, first_cells, line_count = parsed.frame, parsed.fields, parsed.first_cells, parsed.line_count
    del parsed.frame  # this function's own copies replace it
    if frame.height != line_count:
        return None
    if frame.select(pl.max_horizontal(pl.all().str.len_bytes().max())).item() > csv.field_size_limit():
        return None  # the csv module fails the file on such a field; let it say so
    frame = frame.with_columns(
        line=pl.int_range(header_line + 1, header_line + 1 + frame.height, dtype=pl.Int64),
        fields=counts,
        first_cell=first_cells,
    )
    # An unquoted first cell holds no delimiter: it must be exactly the line's text up to the first one.
    misaligned = frame.select(
        (~pl.col("first_cell").str.starts_with('"') & (pl.col("first_cell") != pl.col("c0"))).sum()
    ).item()
    if misaligned:
        return None
    frame = frame.drop("first_cell")  # not copied by the filters below
    blank = (pl.col("fields") == 1) & (pl.col("c0") == "")
    if frame.select(blank.any()).item():  # a filter copies every column: only when there is a blank line
        frame = frame.filter(~blank)
    issues: list[tuple] = []
    rejected: list[int] = []
    for row in frame.filter(pl.col("fields") > width).iter_rows(named=True):
        record = [row[column_name(i)] for i in range(row["fields"])]
        if any(cell.strip() for cell in record[width:]):
            rejected.append(row["line"])
            issues.append(
                (
                    row["line"],
                    "*",
                    delimiter.join(record)[:200],
                    "error",
                    f"record has {len(record)} fields but the header has {width}",
                )
            )
    if rejected:
        frame = frame.filter(~pl.col("line").is_in(rejected))
    cells = frame.select(
        "line",
        *(
            pl.when(pl.col("fields") > index).then(pl.col(column_name(index))).alias(column_name(index))
            for index in used
        ),
    )
    return cells, issues, frame.height + len(rejected)
