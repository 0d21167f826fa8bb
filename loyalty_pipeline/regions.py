"""The row's own country as a phone region: what the country column of an export holds (an ISO
3166 code, "US", "USA", or the country's name in the file's language, "Deutschland", "Allemagne",
"日本") mapped to the region phonenumbers parses a national number in.

No hand-written country list: the names are CLDR's territory names (through Babel) in every
language of the field table, the three-letter and legacy codes are CLDR's territory aliases, and
only the regions phonenumbers knows are kept. Names compare like headers (case, accents, spaces and
punctuation ignored); a name two languages give different countries is left out."""

from __future__ import annotations

from functools import cache

import polars as pl
from babel import Locale
from babel.core import get_global
from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

from loyalty_pipeline.dates import MONTH_LANGUAGES
from loyalty_pipeline.fields import header_key

# The field table's languages; Chinese in both scripts (Outlook writes simplified and traditional).
COUNTRY_LANGUAGES = (*MONTH_LANGUAGES, "zh_Hant", "pt_PT")


@cache
def _names() -> dict[str, str]:
    """Comparison key -> region, for codes, aliases and CLDR names."""
    seen: dict[str, set[str]] = {}
    for language in COUNTRY_LANGUAGES:
        locale = Locale.parse(language)
        for code, name in locale.territories.items():
            if code in SUPPORTED_REGIONS:
                seen.setdefault(header_key(name), set()).add(code)
    names = {key: codes.pop() for key, codes in seen.items() if len(codes) == 1 and key}
    for alias, targets in get_global("territory_aliases").items():
        # USA -> US, UK -> GB; a numeric alias ("840") or one split over several regions is not used
        if alias.isalpha() and len(targets) == 1 and targets[0] in SUPPORTED_REGIONS:
            names.setdefault(header_key(alias), targets[0])
    names.update({code.casefold(): code for code in SUPPORTED_REGIONS})  # a code is never a name
    return names


def region_of(value: str | None) -> str | None:
    """The phone region of one country cell, or None when it names no country phonenumbers knows."""
    if value is None:
        return None
    return _names().get(header_key(value))


def region_column(values: pl.Series) -> pl.Series:
    """region_of for a column, each distinct value looked up once (Utf8, null where unknown)."""
    distinct = values.drop_nulls().unique()
    table = pl.DataFrame(
        {"value": distinct, "region": [region_of(value) for value in distinct]},
        schema={"value": pl.Utf8, "region": pl.Utf8},
    )
    return values.to_frame("value").join(table, on="value", how="left", maintain_order="left")["region"]
