"""Birth-date parsing for messy CSV cells.

Every accepted shape has its own strict regex, so a component that is not in
the input can never be invented (dateutil.parser.parse would happily turn
"1990" into a full date by borrowing month and day from today).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import polars as pl
from babel.dates import get_month_names

DATE_ORDERS = ("MDY", "DMY")
EARLIEST = date(1900, 1, 1)
# Year-less birthdays are checked against a leap year so that 02/29 is allowed.
_LEAP_YEAR = 2000

_PLACEHOLDERS = frozenset({"n/a", "na", "unknown", "-", "none", "?"})
# Outlook's and Excel's empty date: 0/0/00, 00/00/0000, 0000-00-00, 00.00.0000 (maybe with a zero time).
_ZERO_DATE = re.compile(r"0+(?P<sep>[-/.])0+(?:(?P=sep)0+)?(?:[T ]0?0:00(?::00)?)?", re.ASCII)
# Years that mean "no year": Square writes 0000-MM-DD, Apple Contacts 1604-MM-DD.
_NO_YEAR = frozenset({"0000", "1604"})

# Month names, full and abbreviated, in every language of the field table (CLDR data through Babel,
# formatting and stand-alone forms: Russian "марта" and "март"). Compared case- and accent-free; a
# name two languages give different months is left out.
MONTH_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "zh", "ja", "ko", "ru", "el", "pl", "tr")


def _month_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold().strip().rstrip("."))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _month_names() -> dict[str, int]:
    seen: dict[str, set[int]] = {}
    for language in MONTH_LANGUAGES:
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for number, name in get_month_names(width, context, language).items():
                    if not re.search(r"\d", name):  # "3月" is a number, read by the CJK pattern
                        seen.setdefault(_month_key(name), set()).add(number)
    seen.setdefault("sept", {9})
    return {name: numbers.pop() for name, numbers in seen.items() if len(numbers) == 1}


_MONTHS = _month_names()


def _month(name: str) -> int | None:
    return _MONTHS.get(_month_key(name))


_FLAGS = re.ASCII | re.IGNORECASE
_TIME = r"(?:[T ](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
_ISO = re.compile(r"(?P<y>\d{4})(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME, _FLAGS)
_COMPACT = re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})", _FLAGS)
_ISO_YEARLESS = re.compile(r"--(?P<m>\d{2})-?(?P<d>\d{2})", _FLAGS)
# Square's import format for a birthday without a year: MM-DD, always month first.
_MONTH_DAY = re.compile(r"(?P<m>\d{2})-(?P<d>\d{2})", _FLAGS)
# Slash/dash dates: a and b are month/day in the order the program declares. A full date may carry
# a time (Excel writes a date-time cell into its CSV as "3/14/1990 0:00").
_NUMERIC = re.compile(r"(?P<a>\d{1,2})(?P<sep>[/-])(?P<b>\d{1,2})(?:(?P=sep)(?P<y>\d{4}|\d{2})" + _TIME + ")?", _FLAGS)
# Dotted dates are a European convention, so they are always day first.
_DOTTED = re.compile(r"(?P<d>\d{1,2})\.(?P<m>\d{1,2})(?:\.(?P<y>\d{4}|\d{2})" + _TIME + r"|\.?)", _FLAGS)

_SEP = r"[\s,/-]+"
# Month names are letters of any script ("März", "марта"); digits stay ASCII.
_NAME_FLAGS = re.IGNORECASE
_MON = r"(?P<mon>[^\W\d_]+)\.?"
_DAY = r"(?P<d>[0-9]{1,2})(?:st|nd|rd|th|er|\.)?"
_YEAR = r"(?P<y>[0-9]{4}|[0-9]{2})"
_OF = r"(?:(?:of|de|del)\s+)?"  # "14 de marzo de 1990"
_MONTH_FIRST = re.compile(rf"{_MON}{_SEP}{_DAY}(?:{_SEP}{_YEAR})?", _NAME_FLAGS)
_DAY_FIRST = re.compile(rf"{_DAY}{_SEP}{_OF}{_MON}(?:{_SEP}{_OF}{_YEAR})?", _NAME_FLAGS)
# Chinese, Japanese and Korean dates: 1990年3月14日, 1990년 3월 14일, 3月14日.
_CJK = re.compile(r"(?:(?P<y>[0-9]{4})\s*[年년]\s*)?(?P<m>[0-9]{1,2})\s*[月월]\s*(?P<d>[0-9]{1,2})\s*[日일]?")

# Shapes that clearly are dates with a part missing, to give a precise warning.
_YEAR_ONLY = re.compile(r"\d{4}", _FLAGS)
_YEAR_AND_MONTH = re.compile(r"\d{4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{4}", _FLAGS)
_MONTH_NAME_YEAR = re.compile(rf"{_MON}(?:{_SEP}[0-9]{{4}})?", _NAME_FLAGS)
_YEAR_MONTH_NAME = re.compile(rf"[0-9]{{4}}{_SEP}{_MON}", _NAME_FLAGS)


@dataclass(frozen=True)
class BirthDate:
    birth_date: date | None
    month: int | None
    day: int | None
    warning: str | None


_NOTHING = BirthDate(None, None, None, None)


def _rejected(reason: str) -> BirthDate:
    return BirthDate(None, None, None, reason)


def _check_order(date_order: str) -> None:
    if date_order not in DATE_ORDERS:
        raise ValueError(f"date_order must be one of {DATE_ORDERS}, got {date_order!r}")


def _resolve_two_digit_year(yy: int, month: int, day: int, today: date) -> int:
    # The most recent year ending in yy whose birthday is not after today.
    year = today.year - (today.year - yy) % 100
    if year == today.year and (month, day) > (today.month, today.day):
        year -= 100
    return year


def _build(text: str, year: str | None, month: int, day: int, today: date) -> BirthDate:
    if year in _NO_YEAR:
        year = None
    if year is None:
        try:
            date(_LEAP_YEAR, month, day)
        except ValueError:
            return _rejected(f"invalid birth_date {text!r}: no such calendar date")
        return BirthDate(None, month, day, None)

    full_year = int(year) if len(year) == 4 else _resolve_two_digit_year(int(year), month, day, today)
    try:
        parsed = date(full_year, month, day)
    except ValueError:
        return _rejected(f"invalid birth_date {text!r}: no such calendar date")
    if parsed > today:
        return _rejected(f"invalid birth_date {text!r}: after the processing date {today.isoformat()}")
    if parsed < EARLIEST:
        return _rejected(f"invalid birth_date {text!r}: before {EARLIEST.isoformat()}")
    return BirthDate(parsed, month, day, None)


def _missing_part_reason(text: str) -> str:
    if _YEAR_ONLY.fullmatch(text):
        return "missing day and month"
    if _YEAR_AND_MONTH.fullmatch(text):
        return "missing day"
    for pattern in (_MONTH_NAME_YEAR, _YEAR_MONTH_NAME):
        match = pattern.fullmatch(text)
        if match and _month(match["mon"]):
            return "missing day"
    return "unrecognised date format"


def parse_birth_date(value: str | None, date_order: str, today: date) -> BirthDate:
    """Parse one birth-date cell; never raises for any string value."""
    _check_order(date_order)
    if value is None:
        return _NOTHING
    text = value.strip()
    if not text:
        return _NOTHING
    if text.lower() in _PLACEHOLDERS or _ZERO_DATE.fullmatch(text):
        return _rejected(f"birth_date placeholder {text!r}: no birthday recorded")

    match = _MONTH_DAY.fullmatch(text)
    if match:  # "14-03" is not MM-DD: then it is a dash date in the program's order, below
        parsed = _build(text, None, int(match["m"]), int(match["d"]), today)
        if parsed.warning is None:
            return parsed

    for pattern in (_ISO, _COMPACT, _ISO_YEARLESS, _DOTTED, _CJK):
        match = pattern.fullmatch(text)
        if match:
            parts = match.groupdict()
            return _build(text, parts.get("y"), int(parts["m"]), int(parts["d"]), today)

    match = _NUMERIC.fullmatch(text)
    if match:
        first, second = int(match["a"]), int(match["b"])
        month, day = (first, second) if date_order == "MDY" else (second, first)
        if month > 12 and day <= 12:  # the other order would make sense: say which one the program uses
            kind = "slash" if match["sep"] == "/" else "dash"
            first_part = "month-first" if date_order == "MDY" else "day-first"
            return _rejected(
                f"invalid birth_date {text!r}: month {month} does not exist; this program reads "
                f"{kind} dates {first_part} (date_order {date_order})"
            )
        return _build(text, match["y"], month, day, today)

    for pattern in (_MONTH_FIRST, _DAY_FIRST):
        match = pattern.fullmatch(text)
        if match and _month(match["mon"]):
            return _build(text, match["y"], _month(match["mon"]), int(match["d"]), today)

    return _rejected(f"unparseable birth_date {text!r}: {_missing_part_reason(text)}")


_COLUMN_SCHEMA = {
    "birth_date": pl.Date,
    "birth_month": pl.Int16,
    "birth_day": pl.Int16,
    "birth_date_warning": pl.Utf8,
}


def parse_birth_date_column(values: pl.Series, date_order: str, today: date) -> pl.DataFrame:
    """Same rules, vectorised: returns a frame with the same length/order as `values` and columns
    birth_date (pl.Date), birth_month (pl.Int16), birth_day (pl.Int16), birth_date_warning (pl.Utf8).
    Parses each DISTINCT value once (a million-row file has few distinct dates): unique() then join/replace back."""
    _check_order(date_order)
    text = values.cast(pl.Utf8).rename("_value")
    distinct = text.drop_nulls().unique()
    parsed = [parse_birth_date(v, date_order, today) for v in distinct]
    lookup = pl.DataFrame(
        {
            "_value": distinct,
            "birth_date": [p.birth_date for p in parsed],
            "birth_month": [p.month for p in parsed],
            "birth_day": [p.day for p in parsed],
            "birth_date_warning": [p.warning for p in parsed],
        },
        schema={"_value": pl.Utf8, **_COLUMN_SCHEMA},
    )
    return text.to_frame().join(lookup, on="_value", how="left", maintain_order="left").select(list(_COLUMN_SCHEMA))
