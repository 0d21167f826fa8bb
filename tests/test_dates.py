from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_pipeline.dates import BirthDate, parse_birth_date, parse_birth_date_column

TODAY = date(2025, 6, 1)


def parse(value, order="MDY", today=TODAY):
    return parse_birth_date(value, order, today)


def full(year, month, day):
    return BirthDate(date(year, month, day), month, day, None)


def yearless(month, day):
    return BirthDate(None, month, day, None)


def assert_rejected(result, *words):
    assert (result.birth_date, result.month, result.day) == (None, None, None)
    assert result.warning is not None
    for word in words:
        assert word in result.warning


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n"])
def test_empty_is_silently_no_birthday(value):
    assert parse(value) == BirthDate(None, None, None, None)


def test_values_are_trimmed():
    assert parse("  1990-03-14 \t") == full(1990, 3, 14)


@pytest.mark.parametrize("value", ["N/A", "NA", "n/a", "Unknown", "UNKNOWN", "-", "none", "None", "?", " n/a "])
def test_placeholders_warn_and_give_no_birthday(value):
    result = parse(value)
    assert_rejected(result, "placeholder", repr(value.strip()), "no birthday")


@pytest.mark.parametrize(
    "value",
    [
        "1990-03-14",
        "1990/03/14",
        "1990-3-14",
        "19900314",
        "1990-03-14T10:00:00",
        "1990-03-14 10:00",
        "1990-03-14T10:00:00Z",
        "1990-03-14T23:30:00+02:00",
        "1990-03-14T01:00:00.123-0500",
    ],
)
def test_iso_dates_and_datetimes_give_their_date(value):
    assert parse(value) == full(1990, 3, 14)


@pytest.mark.parametrize("value", ["03/14/1990", "3/14/1990", "03-14-1990"])
def test_slash_and_dash_dates_read_month_first_for_mdy(value):
    assert parse(value, "MDY") == full(1990, 3, 14)


@pytest.mark.parametrize("value", ["14/03/1990", "14/3/1990", "14-03-1990"])
def test_slash_and_dash_dates_read_day_first_for_dmy(value):
    assert parse(value, "DMY") == full(1990, 3, 14)


@pytest.mark.parametrize(
    "value, order",
    [
        ("3/14/1990 0:00", "MDY"),
        ("03/14/1990 00:00:00", "MDY"),
        ("14/03/1990 00:00", "DMY"),
        ("14.03.1990 00:00", "MDY"),
        ("14.03.1990 00:00:00", "DMY"),
    ],
)
def test_local_dates_saved_with_a_time_give_their_date(value, order):
    # Excel writes a date-time cell into its CSV as the short date and the time
    assert parse(value, order) == full(1990, 3, 14)


def test_date_order_decides_ambiguous_slash_dates():
    assert parse("04/05/1990", "MDY") == full(1990, 4, 5)
    assert parse("04/05/1990", "DMY") == full(1990, 5, 4)


@pytest.mark.parametrize("order", ["MDY", "DMY"])
def test_dotted_dates_are_always_day_first(order):
    assert parse("14.03.1990", order) == full(1990, 3, 14)
    assert parse("04.05.1990", order) == full(1990, 5, 4)


@pytest.mark.parametrize(
    "value",
    ["March 14, 1990", "14 Mar 1990", "Mar 14 1990", "14 March 1990", "march 14 1990", "14 MAR 1990", "Mar. 14, 1990"],
)
@pytest.mark.parametrize("order", ["MDY", "DMY"])
def test_english_month_names_in_any_case(value, order):
    assert parse(value, order) == full(1990, 3, 14)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3/14/90", full(1990, 3, 14)), ("3/14/05", full(2005, 3, 14)), ("14 Mar 90", full(1990, 3, 14))],
)
def test_two_digit_years_take_the_most_recent_past_year(value, expected):
    assert parse(value) == expected


def test_two_digit_year_that_would_be_after_today_goes_back_a_century():
    assert parse("06/01/25") == full(2025, 6, 1)  # today itself is not in the future
    assert parse("06/02/25") == full(1925, 6, 2)
    assert parse("12/31/30") == full(1930, 12, 31)


@pytest.mark.parametrize(
    ("value", "order", "month", "day"),
    [
        ("03/14", "MDY", 3, 14),
        ("14/03", "DMY", 3, 14),
        ("04/05", "DMY", 5, 4),
        ("14 March", "MDY", 3, 14),
        ("March 14", "DMY", 3, 14),
        ("--03-14", "MDY", 3, 14),
    ],
)
def test_day_and_month_without_year_is_a_birthday(value, order, month, day):
    assert parse(value, order) == yearless(month, day)


@pytest.mark.parametrize("value", ["02/29", "--02-29", "29 Feb"])
def test_yearless_february_29_is_valid(value):
    assert parse(value) == yearless(2, 29)


@pytest.mark.parametrize("value", ["1990-02-30", "02/30", "13/13/1990", "1991-02-29", "--13-01", "31 April"])
def test_impossible_dates_are_rejected_with_reason(value):
    assert_rejected(parse(value), repr(value), "no such calendar date")


def test_dates_after_today_are_rejected():
    assert parse("2025-06-01") == full(2025, 6, 1)
    assert_rejected(parse("2025-06-02"), "after the processing date 2025-06-01")


def test_dates_before_1900_are_rejected():
    assert parse("1900-01-01") == full(1900, 1, 1)
    assert_rejected(parse("1899-12-31"), "before 1900-01-01")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1990", "missing day and month"),
        ("March 1990", "missing day"),
        ("1990-03", "missing day"),
        ("03/1990", "missing day"),
        ("March", "missing day"),
    ],
)
def test_missing_day_or_month_is_never_filled_in(value, reason):
    result = parse(value)
    assert_rejected(result, "unparseable", repr(value), reason)


@pytest.mark.parametrize(
    "value", ["hello", "'); DROP TABLE users;--", "14 Smarch 1990", "1990-03-14T25:00", "3/14/199"]
)
def test_garbage_is_rejected(value):
    assert_rejected(parse(value), "unparseable", "unrecognised date format")


@pytest.mark.parametrize("order", ["YMD", "mdy", ""])
def test_unknown_date_order_is_a_configuration_error(order):
    with pytest.raises(ValueError):
        parse("1990-03-14", order)


def _is_calendar_day(month, day):
    try:
        date(2000, month, day)
    except ValueError:
        return False
    return True


_FORMATS = ["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%d/%m/%y", "%d.%m.%Y", "%B %d, %Y", "%d %b %y", "%m/%d", "%d %B"]
date_like = st.tuples(
    st.dates(min_value=date(1850, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(_FORMATS)
).map(lambda pair: pair[0].strftime(pair[1]))
messy_text = st.one_of(st.text(), st.text(alphabet="0123456789/-.: TZ+marchMARCHjunJUN,", max_size=25), date_like)


@settings(max_examples=200, deadline=None)
@given(value=messy_text, order=st.sampled_from(["MDY", "DMY"]), today=st.dates(date(1950, 1, 1), date(2090, 12, 31)))
def test_any_text_gives_a_consistent_result_without_raising(value, order, today):
    result = parse_birth_date(value, order, today)
    if result.birth_date is not None:
        assert date(1900, 1, 1) <= result.birth_date <= today
        assert (result.month, result.day) == (result.birth_date.month, result.birth_date.day)
        assert parse_birth_date(result.birth_date.isoformat(), order, today) == result
    if result.month is not None or result.day is not None:
        assert _is_calendar_day(result.month, result.day)
        assert result.warning is None
    elif value is not None and value.strip():
        assert result.warning is not None


def test_column_matches_scalar_row_by_row_and_keeps_order():
    values = ["1990-03-14", None, "N/A", "", "03/14", "1990", "14.03.1990", "1990-03-14", "hello", "2030-01-01"]
    frame = parse_birth_date_column(pl.Series(values), "MDY", TODAY)
    assert frame.schema == pl.Schema(
        {"birth_date": pl.Date, "birth_month": pl.Int16, "birth_day": pl.Int16, "birth_date_warning": pl.Utf8}
    )
    expected = [parse(v) for v in values]
    assert frame.rows() == [(e.birth_date, e.month, e.day, e.warning) for e in expected]


def test_column_parses_each_distinct_value_once(monkeypatch):
    import loyalty_pipeline.dates as dates

    seen = []
    real = dates.parse_birth_date

    def counting(value, date_order, today):
        seen.append(value)
        return real(value, date_order, today)

    monkeypatch.setattr(dates, "parse_birth_date", counting)
    frame = dates.parse_birth_date_column(pl.Series(["1990-03-14", "03/14", None] * 1000), "MDY", TODAY)
    assert frame.height == 3000
    assert sorted(seen) == ["03/14", "1990-03-14"]


def test_empty_column_gives_empty_frame():
    frame = parse_birth_date_column(pl.Series([], dtype=pl.Utf8), "MDY", TODAY)
    assert frame.shape == (0, 4)


def test_column_of_only_nulls_keeps_length_and_types():
    frame = parse_birth_date_column(pl.Series([None, None], dtype=pl.Utf8), "DMY", TODAY)
    assert frame.height == 2
    assert frame["birth_date"].dtype == pl.Date
    assert frame.null_count().row(0) == (2, 2, 2, 2)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), messy_text), max_size=30), order=st.sampled_from(["MDY", "DMY"]))
def test_column_equals_scalar_for_any_values(values, order):
    frame = parse_birth_date_column(pl.Series(values, dtype=pl.Utf8), order, TODAY)
    expected = [parse(v, order) for v in values]
    assert frame.rows() == [(e.birth_date, e.month, e.day, e.warning) for e in expected]
