"""Workbooks (.xlsx, legacy .xls, LibreOffice .ods) read with calamine (the `fastexcel` package, polars' calamine engine), cells
taken as the text a person sees in Excel.

The sheet read is the first whose header (one of its first non-blank rows: a title may come
first) has an email column. Every cell
is read as text by calamine: a phone stored as a number is "4155550134" (not "4155550134.0"), a
date cell is its date ("1990-03-14"; with its time when it has one). In a birthday column a whole
number of 5 to 7 digits is an Excel date serial (a date that lost its format: 32946 is
1990-03-14); shorter numbers stay as typed (1990 is a year, not a date). `line` is the sheet's row
number."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import fastexcel
import polars as pl

from loyalty_pipeline.errors import first_line
from loyalty_pipeline.fields import ColumnMatch, HeaderError, column_name

# An encrypted (password-protected) .xlsx is an OLE compound file, the container of legacy .xls.
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"
# Excel's day 0 for serials after its phantom 1900-02-29 (serial 60); a workbook in the 1904 date
# system (older Mac Excel, <workbookPr date1904="1"/>) counts from 1904-01-01.
_EXCEL_EPOCH = date(1899, 12, 30)
_EPOCH_1904 = date(1904, 1, 1)
_DATE_1904 = re.compile(rb"""<(?:\w+:)?workbookPr\b[^>]*\bdate1904\s*=\s*["'](?:1|true)["']""")
_SERIAL = r"^\d{5,7}(\.\d+)?$"
# A title or a note above the header is common in hand-made workbooks; the header is among the
# first few non-blank rows.
_HEADER_SEARCH_ROWS = 10


class WorkbookError(ValueError):
    """The workbook cannot be read as customers (the caller adds the file's name)."""


@dataclass
class Workbook:
    sheet: str
    match: ColumnMatch
    cells: pl.DataFrame  # line + c<index> text columns of the header columns read (match.read)
    header_line: int = 1  # the header's sheet row


def _epoch(data: bytes) -> date:
    """The day a date serial counts from (calamine converts date cells itself, not bare numbers)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            workbook_xml = archive.read("xl/workbook.xml")
    except (zipfile.BadZipFile, KeyError):
        return _EXCEL_EPOCH
    return _EPOCH_1904 if _DATE_1904.search(workbook_xml) else _EXCEL_EPOCH


def _serial_to_text(value: pl.Expr, epoch: date) -> pl.Expr:
    days = value.str.extract(r"^(\d+)", 1).cast(pl.Int64)
    as_date = pl.lit(epoch) + pl.duration(days=days)
    return pl.when(value.str.contains(_SERIAL)).then(as_date.dt.strftime("%Y-%m-%d")).otherwise(value)


def _sheet_text(sheet: pl.DataFrame) -> pl.DataFrame:
    """Date cells without a time read as the date alone, as Excel shows them."""
    return sheet.with_columns(pl.all().str.strip_suffix(" 00:00:00"))


def read_workbook(data: bytes, match_header: Callable[[list[str]], ColumnMatch], kind: str = "xlsx") -> Workbook:
    """The customers of a workbook of `kind` (xlsx, xls or ods: the upload's name says which)."""
    if kind == "xls":
        if not data.startswith(_OLE_SIGNATURE):
            raise WorkbookError("not a legacy .xls workbook; save it from Excel as .xlsx or CSV")
    elif kind == "ods":
        if not data.startswith(_ZIP_SIGNATURE):
            raise WorkbookError(
                "not an .ods spreadsheet (the file is not a zip archive); save it as .ods, .xlsx or CSV"
            )
    elif data.startswith(_OLE_SIGNATURE):
        raise WorkbookError(
            "the workbook is encrypted (password-protected) or is a legacy .xls file; "
            "remove the password or save it as .xlsx or CSV and upload that"
        )
    elif not data.startswith(_ZIP_SIGNATURE):
        raise WorkbookError("not an .xlsx workbook (the file is not a zip archive); save it from Excel as .xlsx or CSV")
    try:
        reader = fastexcel.read_excel(data)
        names = reader.sheet_names
    except fastexcel.FastExcelError as exc:
        raise WorkbookError(f"the workbook is damaged or not an .{kind} file ({first_line(exc)[:200]})") from exc
    problems: list[str] = []
    for name in names:
        try:
            # header_row=None with skip_rows=0 keeps leading blank rows: row index + 1 = sheet row.
            sheet = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string").to_polars()
        except fastexcel.FastExcelError as exc:
            raise WorkbookError(f"worksheet {name!r} cannot be read ({first_line(exc)[:200]})") from exc
        if sheet.width == 0 or sheet.height == 0:
            problems.append(f"{name!r} is empty")
            continue
        filled = sheet.select(pl.any_horizontal(pl.all().str.strip_chars() != "").fill_null(False)).to_series()
        candidates = filled.arg_true().head(_HEADER_SEARCH_ROWS).to_list()
        if not candidates:
            problems.append(f"{name!r} is empty")
            continue
        found = _find_header(sheet, candidates, match_header)
        if isinstance(found, str):
            problems.append(f"{name!r}: {found}")
            continue
        header_index, match = found
        body = _sheet_text(sheet.slice(header_index + 1))
        positions = {column_name(i): sheet.columns[i] for i in match.read}
        cells = body.select(
            pl.int_range(header_index + 2, header_index + 2 + body.height, dtype=pl.Int64).alias("line"),
            *(pl.col(source).alias(target) for target, source in positions.items()),
        ).filter(filled.slice(header_index + 1))  # a blank row keeps its number but holds no customer
        births = [column_name(i) for i in match.sources.get("birth_date", [])]
        if births:
            epoch = _epoch(data) if kind == "xlsx" else _EXCEL_EPOCH
            cells = cells.with_columns(_serial_to_text(pl.col(c), epoch).alias(c) for c in births)
        return Workbook(sheet=name, match=match, cells=cells, header_line=header_index + 1)
    if not names:
        raise WorkbookError("the workbook has no worksheets")
    if all(problem.endswith("is empty") for problem in problems):
        raise WorkbookError("the workbook is empty")
    raise WorkbookError("no worksheet has a usable header: " + "; ".join(problems))


def _find_header(sheet: pl.DataFrame, rows: list[int], match_header) -> tuple[int, ColumnMatch] | str:
    """The first of the sheet's first non-blank rows that reads as a header (a title or a note may
    come first), or the reason the first row does not."""
    first_problem = ""
    for index in rows:
        try:
            return index, match_header(["" if cell is None else cell for cell in sheet.row(index)])
        except HeaderError as exc:
            first_problem = first_problem or str(exc)
    return first_problem
