"""Phone normalisation to E.164.

`normalize_phone` is the reference: phonenumbers.parse with the program's
region, kept only if `is_valid_number`. `normalize_phone_column` must return
exactly that for every cell, but parse + is_valid_number cost ~30 µs and a
million-row file holds about a million distinct phones. So the column path:

1. rewrites cells made only of digits, ' ', '.', '-', '(', ')' with at most a
   leading '+' to bare '+digits' / 'digits' keys and dedupes them: parse()
   skips those separators, so the key parses exactly like the cell;
2. replays, in polars, the steps parse() and is_valid_number() take for such
   digit strings, using the library's own metadata regexes;
3. hands every key whose steps are not replayed (letters, extensions, prefix
   rewrite rules, leading zeros, ...) to the reference path.
"""

from __future__ import annotations

import phonenumbers
import polars as pl
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

# Longer cells are never phones, and parse() cost grows with input length.
MAX_PHONE_LENGTH = 64

# Exactly the characters str.strip() removes, so both paths trim alike
# (polars' default strip uses a different definition of whitespace).
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# phonenumberutil._MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN: parse() rejects
# national numbers outside these lengths.
_MIN_NSN, _MAX_NSN = 2, 17

_COUNTRY_CODES = [str(code) for code in COUNTRY_CODE_TO_REGION_CODE]
_MAIN_REGION = {str(code): regions[0] for code, regions in COUNTRY_CODE_TO_REGION_CODE.items()}

# The descriptions _number_type_helper tries; any match makes the type known.
_TYPE_DESCS = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
    "pager", "uan", "voicemail", "fixed_line",
)


def _check_region(region: str) -> str:
    code = region.upper()
    if code not in SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}")
    return code


def _reference_e164(text: str, region: str) -> str | None:
    if len(text) > MAX_PHONE_LENGTH:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _warning(text: str, region: str) -> str:
    return f"invalid phone_number '{text}' for region {region}"


def normalize_phone(value: str | None, region: str) -> tuple[str | None, str | None]:
    """(e164 or None, warning or None). Empty/None → (None, None) silently. Invalid → (None, "invalid phone_number '...' for region US")."""
    region = _check_region(region)
    if value is None:
        return None, None
    text = value.strip()
    if not text:
        return None, None
    e164 = _reference_e164(text, region)
    if e164 is None:
        return None, _warning(text, region)
    return e164, None


# --- polars replay of parse()/is_valid_number() for bare digit strings -----

def _full_match(col: pl.Expr, pattern: str | None) -> pl.Expr:
    if not pattern:
        return pl.lit(False)
    return col.str.contains(f"^(?:{pattern})$")


def _matches_general(col: pl.Expr, md) -> pl.Expr:
    # _match_national_number(number, general_desc): pattern only, no lengths.
    return _full_match(col, md.general_desc.national_number_pattern)


def _matches_desc(col: pl.Expr, desc) -> pl.Expr:
    # _is_number_matching_desc: possible lengths first, then the pattern.
    if desc is None:
        return pl.lit(False)
    matched = _full_match(col, desc.national_number_pattern)
    if desc.possible_length:
        matched = col.str.len_bytes().is_in(list(desc.possible_length)) & matched
    return matched


def _type_known(col: pl.Expr, md) -> pl.Expr:
    # _number_type_helper(...) != UNKNOWN; mobile is only consulted when its
    # pattern differs from fixed_line.
    names = _TYPE_DESCS if md.same_mobile_and_fixed_line_pattern else _TYPE_DESCS + ("mobile",)
    return _matches_desc(col, md.general_desc) & pl.any_horizontal(
        [_matches_desc(col, getattr(md, name)) for name in names]
    )


def _length_verdict(col: pl.Expr, md) -> tuple[pl.Expr, pl.Expr]:
    """(possible-or-too-long, too-long) as _test_number_length decides them."""
    lengths = md.general_desc.possible_length
    length = col.str.len_bytes()
    not_local = ~length.is_in(list(md.general_desc.possible_length_local_only))
    too_long = not_local & (length > max(lengths))
    return too_long | (not_local & length.is_in(list(lengths))), too_long


def _strip_national_prefix(col: pl.Expr, md) -> tuple[pl.Expr, pl.Expr]:
    """(number, needs_reference) like _maybe_strip_national_prefix_carrier_code."""
    prefix = md.national_prefix_for_parsing
    if not prefix:
        return col, pl.lit(False)
    matched = (col.str.len_bytes() > 0) & col.str.contains(f"^(?:{prefix})")
    if md.national_prefix_transform_rule:
        return col, matched
    rest = col.str.replace(f"^(?:{prefix})", "")
    # Stripping is undone when it turns a well-formed number into a bad one.
    keep = _matches_general(col, md) & ~_matches_general(rest, md)
    return pl.when(matched & ~keep).then(rest).otherwise(col), pl.lit(False)


def _national_number(frame: pl.DataFrame, md) -> pl.DataFrame:
    """parse()'s last step: strip the national prefix if what remains has a usable length."""
    stripped, needs_reference = _strip_national_prefix(pl.col("number"), md)
    possible, _ = _length_verdict(stripped, md)
    return frame.with_columns(
        nsn=pl.when(possible).then(stripped).otherwise(pl.col("number")),
        reference=pl.col("reference") | needs_reference,
    )


def _split_country_code(keys: pl.DataFrame, home) -> pl.DataFrame:
    """Columns key, cc, md_region, number, reference as _maybe_extract_country_code leaves them."""
    frame = keys.with_columns(digits=pl.col("key").str.strip_prefix("+"))
    digits = pl.col("digits")
    idd = home.international_prefix
    if idd:
        after_idd = digits.str.replace(f"^(?:{idd})", "")
        # An IDD followed by 0 is not taken as one (country codes never start with 0).
        idd_used = digits.str.contains(f"^(?:{idd})") & ((after_idd == "") | ~after_idd.str.starts_with("0"))
    else:
        after_idd, idd_used = digits, pl.lit(False)
    frame = frame.with_columns(
        intl=pl.when(pl.col("key").str.starts_with("+")).then(digits).when(idd_used).then(after_idd)
    )
    columns = ["key", "cc", "md_region", "number", "reference"]
    return pl.concat(
        [
            _international(frame.filter(pl.col("intl").is_not_null())).select(columns),
            _national(frame.filter(pl.col("intl").is_null()), home).select(columns),
        ]
    )


def _international(frame: pl.DataFrame) -> pl.DataFrame:
    intl = pl.col("intl")
    cc = pl.lit(None, dtype=pl.Utf8)
    for width in (3, 2, 1):  # built inside-out, so the shortest code is tried first
        head = intl.str.slice(0, width)
        cc = pl.when((intl.str.len_bytes() >= width) & head.is_in(_COUNTRY_CODES)).then(head).otherwise(cc)
    return frame.with_columns(cc=cc).with_columns(
        md_region=pl.col("cc").replace_strict(_MAIN_REGION, default=None),
        number=intl.str.slice(pl.col("cc").str.len_bytes()),
        # Too short after the IDD, or an unknown country code: parse() raises
        # or retries without the '+'.
        reference=(intl.str.len_bytes() <= _MIN_NSN) | pl.col("cc").is_null(),
    )


def _national(frame: pl.DataFrame, home) -> pl.DataFrame:
    home_cc = str(home.country_code)
    frame = frame.with_columns(cc=pl.lit(home_cc), md_region=pl.lit(home.id), number=pl.col("digits"))
    starts_with_cc = pl.col("digits").str.starts_with(home_cc)
    plain = frame.filter(~starts_with_cc).with_columns(reference=pl.lit(False))

    number = pl.col("digits")
    without_cc, needs_reference = _strip_national_prefix(number.str.slice(len(home_cc)), home)
    _, too_long = _length_verdict(number, home)
    # The home country code written without '+' is dropped only when that
    # turns a malformed or over-long number into a well-formed one.
    take_cc = (~_matches_general(number, home) & _matches_general(without_cc, home)) | too_long
    # A country code shared with other regions switches to the main region's
    # metadata (e.g. CA -> US); leave that to the reference path.
    switches_metadata = _MAIN_REGION[home_cc] != home.id
    with_cc = frame.filter(starts_with_cc).with_columns(
        number=pl.when(take_cc).then(without_cc).otherwise(number),
        reference=needs_reference
        | (take_cc & ((without_cc.str.len_bytes() < _MIN_NSN) | switches_metadata)),
    )
    return pl.concat([plain, with_cc])


def _valid_keys(frame: pl.DataFrame, country_code: int) -> pl.DataFrame:
    """Rows whose (country_code, nsn) is_valid_number accepts."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    nsn = pl.col("nsn")
    if len(regions) == 1:
        md = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        return frame.filter(_type_known(nsn, md)) if md else frame.clear()
    # region_code_for_number: the first region that claims the number decides.
    valid, remaining = [], frame
    for region in regions:
        md = PhoneMetadata.metadata_for_region(region)
        if md is None or remaining.is_empty():
            continue
        if md.leading_digits:
            claimed = remaining.select(nsn.str.contains(f"^(?:{md.leading_digits})")).to_series()
            valid.append(remaining.filter(claimed).filter(_type_known(nsn, md)))
        else:
            claimed = remaining.select(_type_known(nsn, md)).to_series()
            valid.append(remaining.filter(claimed))
        remaining = remaining.filter(~claimed)
    return pl.concat(valid) if valid else frame.clear()


def _fast_e164(keys: pl.Series, region: str) -> tuple[pl.DataFrame, pl.Series]:
    """(key → e164 for keys decided here, keys left for the reference path)."""
    home = PhoneMetadata.metadata_for_region(region)
    frame = pl.DataFrame({"key": keys})
    bare = frame["key"].str.contains(r"^\+?[0-9]{3,}$")
    split = _split_country_code(frame.filter(bare), home)

    decided = []
    for (cc, md_region), group in split.filter(~pl.col("reference")).partition_by(
        ["cc", "md_region"], as_dict=True
    ).items():
        md = PhoneMetadata.metadata_for_region_or_calling_code(int(cc), md_region)
        decided.append(_national_number(group, md))
    if not decided:
        return pl.DataFrame(schema={"key": pl.Utf8, "e164": pl.Utf8}), keys

    numbers = pl.concat(decided)
    nsn = pl.col("nsn")
    # Leading zeros need the Italian-zero fields of PhoneNumber: not replayed.
    replayed = (
        ~pl.col("reference")
        & nsn.str.len_bytes().is_between(_MIN_NSN, _MAX_NSN)
        & ~nsn.str.starts_with("0")
    )
    answered = numbers.filter(replayed)
    valid = [
        _valid_keys(group, int(cc))
        for (cc,), group in answered.partition_by(["cc"], as_dict=True).items()
    ]
    valid_e164 = pl.concat([answered.clear(), *valid]).select(
        "key", e164=pl.concat_str([pl.lit("+"), "cc", "nsn"])
    )
    lookup = answered.select("key").join(valid_e164, on="key", how="left")
    left_over = frame.join(lookup, on="key", how="anti")["key"]
    return lookup, left_over


def _canonical_key(text: pl.Expr) -> pl.Expr:
    separators_only = text.str.contains(r"^\+?[0-9 .()\-]*$") & (text.str.count_matches(r"[0-9]") >= 3)
    return (
        pl.when((text == "") | (text.str.len_chars() > MAX_PHONE_LENGTH)).then(None)
        .when(separators_only).then(text.str.replace_all(r"[ .()\-]", ""))
        .otherwise(text)
    )


def normalize_phone_column(values: pl.Series, region: str) -> pl.DataFrame:
    """Vectorised: same length/order; columns phone_number (Utf8, E.164 or null) and phone_warning (Utf8)."""
    region = _check_region(region)
    text = values.cast(pl.Utf8).str.strip_chars(_PY_WHITESPACE)
    cells = pl.DataFrame({"text": text}).with_columns(key=_canonical_key(pl.col("text")))
    keys = cells["key"].drop_nulls().unique()

    lookup, left_over = _fast_e164(keys, region)
    reference = pl.DataFrame(
        {"key": left_over, "e164": [_reference_e164(key, region) for key in left_over]},
        schema={"key": pl.Utf8, "e164": pl.Utf8},
    )
    lookup = pl.concat([lookup, reference])

    invalid = (pl.col("text") != "") & pl.col("e164").is_null()
    return cells.join(lookup, on="key", how="left", maintain_order="left").select(
        phone_number=pl.col("e164"),
        phone_warning=pl.when(invalid).then(
            pl.concat_str([pl.lit("invalid phone_number '"), "text", pl.lit(f"' for region {region}")])
        ),
    )
