"""Reading a customer CSV into a table of strings: encoding, headers, ragged records.

The output keeps every cell as text; deciding what a cell means is validation's job. `line` is
the row number a person sees in a spreadsheet (header = 1, first record = 2), which is the record
index, not the physical line, because quoted fields may span several lines."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

FIELDS = ("email", "first_name", "last_name", "birth_date", "phone_number")
HEADER_ALIASES = {
    "dob": "birth_date",
    "birthday": "birth_date",
    "date_of_birth": "birth_date",
    "birthdate": "birth_date",
    "phone": "phone_number",
    "mobile": "phone_number",
    "firstname": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "e_mail": "email",
    "email_address": "email",
}
ISSUE_SCHEMA = {
    "line": pl.Int64,
    "column": pl.Utf8,
    "value": pl.Utf8,
    "severity": pl.Utf8,
    "reason": pl.Utf8,
}
# Signatures of files people upload by mistake instead of a CSV export.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "a legacy Excel/Office document",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
}
_CHUNK = 200_000


class CsvFileError(ValueError):
    """The whole file is unusable; nothing from it may be written."""


@dataclass
class RawCsv:
    rows: pl.DataFrame  # line + the FIELDS present, all Utf8 (missing columns are null)
    issues: pl.DataFrame  # ISSUE_SCHEMA
    rows_read: int
    encoding: str
    sha256: str
    unknown_columns: list[str] = field(default_factory=list)
    nul_bytes_stripped: int = 0


def empty_issues() -> pl.DataFrame:
    return pl.DataFrame(schema=ISSUE_SCHEMA)


def normalize_header(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.replace("\ufeff", "").strip().lower())
    key = re.sub(r"_+", "_", key).strip("_")
    return HEADER_ALIASES.get(key, key)


def decode(data: bytes, file_label: str) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252."""
    for signature, what in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise CsvFileError(f"{file_label}: not a CSV file, it looks like {what}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        data, bom = data[3:], True
    else:
        bom = False
    try:
        return data.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; they become U+FFFD rather than failing the file.
        return data.decode("cp1252", errors="replace"), "windows-1252"


def read_csv(path: Path, file_label: str | None = None) -> RawCsv:
    label = file_label or Path(path).name
    data = Path(path).read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    text, encoding = decode(data, label)
    nul_count = text.count("\x00")
    if nul_count:
        text = text.replace("\x00", "")
    if not text.strip():
        raise CsvFileError(f"{label}: the file is empty")
    if sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t") > 8:
        raise CsvFileError(f"{label}: not a CSV file, it contains binary data")

    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise CsvFileError(f"{label}: not a readable CSV file ({exc})") from exc
    names = [normalize_header(name) for name in header]
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise CsvFileError(f"{label}: duplicate column names in the header: {', '.join(duplicates)}")
    if "email" not in names:
        raise CsvFileError(
            f"{label}: no email column in the header (found: {', '.join(n for n in names if n) or 'nothing'})"
        )
    positions = {name: index for index, name in enumerate(names) if name in FIELDS}
    unknown = [header[i].strip() for i, n in enumerate(names) if n not in FIELDS and n]
    width = len(header)

    chunks: list[pl.DataFrame] = []
    issues: list[tuple] = []
    columns: dict[str, list] = {name: [] for name in ("line", *positions)}
    line = 1
    records = 0
    try:
        for record in reader:
            line += 1
            if not record or (len(record) == 1 and not record[0]):
                continue  # a blank row: nothing to load, nothing to complain about
            records += 1
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                issues.append(
                    (line, "*", ",".join(record)[:200], "error",
                     f"record has {len(record)} fields but the header has {width}")
                )
                continue
            columns["line"].append(line)
            for name, index in positions.items():
                columns[name].append(record[index] if index < len(record) else None)
            if len(columns["line"]) >= _CHUNK:
                chunks.append(_frame(columns))
                columns = {name: [] for name in columns}
    except csv.Error as exc:
        raise CsvFileError(f"{label}: not a readable CSV file at line {line} ({exc})") from exc
    chunks.append(_frame(columns))
    rows = pl.concat(chunks, how="vertical")
    for name in FIELDS:
        if name not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))
    return RawCsv(
        rows=rows.select("line", *FIELDS),
        issues=pl.DataFrame(issues, schema=ISSUE_SCHEMA, orient="row"),
        rows_read=records,
        encoding=encoding,
        sha256=sha256,
        unknown_columns=unknown,
        nul_bytes_stripped=nul_count,
    )


def _frame(columns: dict[str, list]) -> pl.DataFrame:
    return pl.DataFrame(
        {name: pl.Series(name, values, dtype=pl.Int64 if name == "line" else pl.Utf8)
         for name, values in columns.items()}
    )
