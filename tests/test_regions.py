"""The row's own country as a phone region (regions.py) and phones parsed in each row's region."""

import polars as pl
import pytest

import loyalty_pipeline.phones as phones
from loyalty_pipeline.phones import normalize_phone, normalize_phone_column_in_regions
from loyalty_pipeline.regions import region_column, region_of


@pytest.mark.parametrize(
    "cell, region",
    [
        # ISO codes, any case, and CLDR's aliases (three letters, the legacy UK)
        ("IN", "IN"),
        ("in", "IN"),
        (" cl ", "CL"),
        ("IND", "IN"),
        ("USA", "US"),
        ("UK", "GB"),
        # CLDR names in the table's languages, compared loosely
        ("India", "IN"),
        ("Indien", "IN"),
        ("Inde", "IN"),
        ("インド", "IN"),
        ("United Kingdom", "GB"),
        ("united kingdom", "GB"),
        ("Royaume-Uni", "GB"),
        ("Österreich", "AT"),
        ("Osterreich", "AT"),
        ("Deutschland", "DE"),
        ("Estados Unidos", "US"),
        ("中国", "CN"),
        ("台灣", "TW"),
        ("대한민국", "KR"),
        ("Россия", "RU"),
        ("Ελλάδα", "GR"),
        ("Niemcy", "DE"),
        ("Türkiye", "TR"),
    ],
)
def test_a_country_cell_names_its_phone_region(cell, region):
    assert region_of(cell) == region


@pytest.mark.parametrize("cell", [None, "", "XX", "Narnia", "840", "Europe", "001"])
def test_what_names_no_country_phonenumbers_knows_has_no_region(cell):
    assert region_of(cell) is None


def test_a_column_maps_each_distinct_value_once(monkeypatch):
    import loyalty_pipeline.regions as regions

    seen = []
    real = regions.region_of
    monkeypatch.setattr(regions, "region_of", lambda value: seen.append(value) or real(value))
    column = region_column(pl.Series(["IN", "India", None, "IN", "Narnia", "India"]))
    assert column.to_list() == ["IN", "IN", None, "IN", None, "IN"]
    assert sorted(seen) == ["IN", "India", "Narnia"]


def test_a_national_phone_is_read_in_the_rows_region_else_the_default():
    values = ["098765 43210", "9 6123 4567", "9 6123 4567", "098765 43210", "+44 20 7946 0018", None, "098765 43210"]
    regions = ["IN", "CL", None, None, "IN", "IN", "XX-unknown-is-null"]
    regions = [r if r != "XX-unknown-is-null" else None for r in regions]
    frame = normalize_phone_column_in_regions(pl.Series(values), pl.Series(regions, dtype=pl.Utf8), "CL")
    expected = [normalize_phone(v, r or "CL") for v, r in zip(values, regions, strict=True)]
    assert frame["phone_number"].to_list() == [e164 for e164, _ in expected]
    assert frame["phone_warning"].to_list() == [warning for _, warning in expected]
    assert frame["phone_number"].to_list()[:4] == ["+919876543210", "+56961234567", "+56961234567", None]


def test_each_region_is_parsed_once_with_its_distinct_phones(monkeypatch):
    calls = []
    real = phones.normalize_phone_column
    monkeypatch.setattr(phones, "normalize_phone_column", lambda v, r: calls.append((r, v.len())) or real(v, r))
    values = pl.Series(["098765 43210"] * 3 + ["9 6123 4567"] * 2 + [None] * 4)
    regions = pl.Series(["IN"] * 3 + [None] * 2 + ["IN", "GB", None, "JP"], dtype=pl.Utf8)
    frame = normalize_phone_column_in_regions(values, regions, "CL")
    assert sorted(calls) == [("CL", 6), ("IN", 3)]  # rows without a phone go with the default region
    assert frame["phone_number"].to_list() == ["+919876543210"] * 3 + ["+56961234567"] * 2 + [None] * 4


def test_without_a_country_column_it_is_the_one_region_path():
    values = pl.Series(["(312) 555-0123", "bad"])
    assert normalize_phone_column_in_regions(values, None, "US").equals(phones.normalize_phone_column(values, "US"))
