"""Phone normalisation to E.164.

`normalize_phone` is the reference: phonenumbers.parse with the program's
region, kept only if `is_valid_number`. `normalize_phone_column` must return
exactly that for every cell, but parse + is_valid_number cost ~30 µs and a
million-row file holds about a million distinct phones. So the column path:

1. turns cells made of digits, one '+' and the separators ' ', '.', '-', '(',
   ')' into bare '+digits' / 'digits' keys and dedupes them: parse() starts
   reading at the first '+' or digit and skips those separators, so a key
   parses exactly like its cell;
2. replays in polars, with the library's own metadata regexes, the steps
   parse() and is_valid_number() take for such bare digit strings;
3. hands every key whose steps are not replayed (letters, extensions, prefix
   rewrite rules, leading zeros, ...) to the reference path.
"""

from __future__ import annotations

import traceback

import phonenumbers
import polars as pl
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

# Longer cells are never phones, and parse() cost grows with input length.
MAX_PHONE_LENGTH = 64

# Exactly the characters str.strip() removes, so both paths trim alike
# (polars' default strip_chars uses a different notion of whitespace).
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# phonenumberutil._MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN: parse() rejects
# national numbers outside these lengths.
_MIN_NSN, _MAX_NSN = 2, 17

_COUNTRY_CODES = [str(code) for code in COUNTRY_CODE_TO_REGION_CODE]
_MAIN_REGION = {str(code): regions[0] for code, regions in COUNTRY_CODE_TO_REGION_CODE.items()}

# The number types _number_type_helper tries; any match makes the type known.
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)
_LOOKUP_SCHEMA = {"key": pl.Utf8, "e164": pl.Utf8}
# phonenumbers reads letters as keypad digits ("+6681BgsTH5q" would become +66812478457); a customer's
# phone with letters is not a number, except for an extension marker (ext, x, #) before digits.
_EXTENSION = r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d+\s*$"
_LETTER = r"\p{L}"


def _check_region(region: str) -> str:
    code = region.upper()
    if code not in SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}")
    return code


def _reference_e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        # parse() keeps an exception in a local of its own frame, which that exception's traceback
        # holds: a reference cycle, and the frame links to its callers' frames, so the vectorised
        # caller's frames of a million rows would stay alive until the next garbage collection.
        traceback.clear_frames(exc.__traceback__)
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_phone(value: str | None, region: str) -> tuple[str | None, str | None]:
    """(e164 or None, warning or None). Empty/None → (None, None) silently. Invalid → (None, "invalid phone_number '...' for region US")."""
    region = _check_region(region)
    if value is None:
        return None, None
    text = value.strip()
    if not text:
        return None, None
    e164 = None
    if len(text) <= MAX_PHONE_LENGTH and not _has_letters(text):
        e164 = _reference_e164(text, region)
        if e164 is None and text.startswith("00"):
            # People dial abroad with 00 even where the local prefix differs
            # (US/CA use 011), so a leading 00 that led nowhere is read as '+'.
            e164 = _reference_e164("+" + text[2:], region)
    if e164 is None:
        return None, f"invalid phone_number '{text}' for region {region}"
    return e164, None


def _has_letters(text: str) -> bool:
    return pl.select(_lettered(pl.lit(text))).item()


def _lettered(text: pl.Expr) -> pl.Expr:
    return text.str.replace(_EXTENSION, "").str.contains(_LETTER)


# --- polars replay of parse() and is_valid_number() for bare digit strings --


def _full_match(col: pl.Expr, pattern: str | None) -> pl.Expr:
    if not pattern:
        return pl.lit(False)
    return col.str.contains(f"^(?:{pattern})$")


def _matches_general(col: pl.Expr, md) -> pl.Expr:
    # _match_national_number(number, general_desc): the pattern only, no lengths.
    return _full_match(col, md.general_desc.national_number_pattern)


def _matches_desc(col: pl.Expr, desc) -> pl.Expr:
    # _is_number_matching_desc: possible lengths, then the pattern.
    if desc is None:
        return pl.lit(False)
    matched = _full_match(col, desc.national_number_pattern)
    if desc.possible_length:
        matched = col.str.len_bytes().is_in(list(desc.possible_length)) & matched
    return matched


def _type_known(col: pl.Expr, md) -> pl.Expr:
    # _number_type_helper(...) != UNKNOWN; mobile is only consulted when its
    # pattern differs from fixed_line's.
    names = _TYPE_DESCS if md.same_mobile_and_fixed_line_pattern else _TYPE_DESCS + ("mobile",)
    return _matches_desc(col, md.general_desc) & pl.any_horizontal(
        [_matches_desc(col, getattr(md, name)) for name in names]
    )


def _length_verdict(col: pl.Expr, md) -> tuple[pl.Expr, pl.Expr]:
    """(possible or too long, too long) as _test_number_length decides them."""
    lengths = md.general_desc.possible_length
    length = col.str.len_bytes()
    not_local = ~length.is_in(list(md.general_desc.possible_length_local_only))
    too_long = not_local & (length > max(lengths))
    return too_long | (not_local & length.is_in(list(lengths))), too_long


def _starts_with_prefix(col: pl.Expr, md) -> pl.Expr:
    prefix = md.national_prefix_for_parsing
    if not prefix:
        return pl.lit(False)
    return (col.str.len_bytes() > 0) & col.str.contains(f"^(?:{prefix})")


def _strip_national_prefix(col: pl.Expr, md) -> tuple[pl.Expr, pl.Expr]:
    """(number, needs_reference) like _maybe_strip_national_prefix_carrier_code."""
    matched = _starts_with_prefix(col, md)
    if not md.national_prefix_for_parsing or md.national_prefix_transform_rule:
        return col, matched
    rest = col.str.replace(f"^(?:{md.national_prefix_for_parsing})", "")
    # Stripping is undone when it turns a well-formed number into a bad one.
    keep = _matches_general(col, md) & ~_matches_general(rest, md)
    return pl.when(matched & ~keep).then(rest).otherwise(col), pl.lit(False)


def _national_number(frame: pl.DataFrame, md) -> pl.DataFrame:
    """parse()'s last step: drop the national prefix if what remains has a usable length."""
    number = pl.col("number")
    # Only numbers starting with the prefix can change; filtering first keeps
    # the costly regexes off the bulk of the rows.
    may_change = _starts_with_prefix(number, md)
    stripped, needs_reference = _strip_national_prefix(number, md)
    possible, _ = _length_verdict(stripped, md)
    return pl.concat(
        [
            frame.filter(~may_change).with_columns(nsn=number),
            frame.filter(may_change).with_columns(
                nsn=pl.when(possible).then(stripped).otherwise(number),
                reference=pl.col("reference") | needs_reference,
            ),
        ]
    )


def _international(frame: pl.DataFrame) -> pl.DataFrame:
    """Numbers after '+' or an IDD: _extract_country_code tries 1, 2, then 3 digits."""
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
    """Numbers without '+'/IDD; the home country code may still be written in front."""
    home_cc = str(home.country_code)
    frame = frame.with_columns(cc=pl.lit(home_cc), md_region=pl.lit(home.id), number=pl.col("digits"))
    starts_with_cc = pl.col("digits").str.starts_with(home_cc)

    number = pl.col("digits")
    without_cc, needs_reference = _strip_national_prefix(number.str.slice(len(home_cc)), home)
    _, too_long = _length_verdict(number, home)
    # The code is dropped only when that turns a malformed or over-long number
    # into a well-formed one.
    take_cc = (~_matches_general(number, home) & _matches_general(without_cc, home)) | too_long
    # A code shared by several regions switches to its main region's metadata
    # (CA -> US); that is left to the reference path.
    switches_metadata = _MAIN_REGION[home_cc] != home.id
    return pl.concat(
        [
            frame.filter(~starts_with_cc).with_columns(reference=pl.lit(False)),
            frame.filter(starts_with_cc).with_columns(
                number=pl.when(take_cc).then(without_cc).otherwise(number),
                reference=needs_reference | (take_cc & ((without_cc.str.len_bytes() < _MIN_NSN) | switches_metadata)),
            ),
        ]
    )


def _split_country_code(keys: pl.DataFrame, home) -> pl.DataFrame:
    """Columns key, cc, md_region, number, reference as _maybe_extract_country_code leaves them."""
    frame = keys.with_columns(digits=pl.col("key").str.strip_prefix("+"))
    plus = pl.col("key").str.starts_with("+")
    international = [frame.filter(plus).with_columns(intl=pl.col("digits"))]
    national = frame.filter(~plus)
    if home.international_prefix:
        idd = f"^(?:{home.international_prefix})"
        has_idd = pl.col("digits").str.contains(idd)
        dialled = national.filter(has_idd).with_columns(intl=pl.col("digits").str.replace(idd, ""))
        # An IDD followed by 0 is not taken as one (country codes never start with 0).
        used = (pl.col("intl") == "") | ~pl.col("intl").str.starts_with("0")
        international.append(dialled.filter(used))
        national = pl.concat([national.filter(~has_idd), dialled.filter(~used).drop("intl")])
    columns = ["key", "cc", "md_region", "number", "reference"]
    return pl.concat(
        [
            _international(pl.concat(international)).select(columns),
            _national(national, home).select(columns),
        ]
    )


def _with_e164(frame: pl.DataFrame, country_code: int) -> pl.DataFrame:
    """key → E.164, or null where is_valid_number(country_code, nsn) is false."""
    nsn = pl.col("nsn")
    e164 = pl.concat_str([pl.lit("+"), pl.col("cc"), nsn])
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:
        md = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        return frame.select("key", e164=pl.when(_type_known(nsn, md)).then(e164) if md else pl.lit(None, pl.Utf8))
    # region_code_for_number: the first region claiming the number decides.
    decided, remaining = [], frame
    for region in regions:
        md = PhoneMetadata.metadata_for_region(region)
        if md is None or remaining.is_empty():
            continue
        if md.leading_digits:
            claimed = remaining.select(nsn.str.contains(f"^(?:{md.leading_digits})")).to_series()
            decided.append(remaining.filter(claimed).select("key", e164=pl.when(_type_known(nsn, md)).then(e164)))
        else:
            claimed = remaining.select(_type_known(nsn, md)).to_series()
            decided.append(remaining.filter(claimed).select("key", e164=e164))
        remaining = remaining.filter(~claimed)
    decided.append(remaining.select("key", e164=pl.lit(None, pl.Utf8)))
    return pl.concat(decided)


def _fast_e164(keys: pl.Series, region: str) -> tuple[pl.DataFrame, pl.Series]:
    """(key → e164 for the keys replayed here, the keys left for the reference path)."""
    home = PhoneMetadata.metadata_for_region(region)
    frame = pl.DataFrame({"key": keys}, schema={"key": pl.Utf8})
    bare = pl.col("key").str.contains(r"^\+?[0-9]{3,}$")
    split = _split_country_code(frame.filter(bare), home)

    numbers = [split.filter(pl.col("reference")).with_columns(nsn=pl.col("number"))]
    for (cc, md_region), group in (
        split.filter(~pl.col("reference")).partition_by(["cc", "md_region"], as_dict=True).items()
    ):
        md = PhoneMetadata.metadata_for_region_or_calling_code(int(cc), md_region)
        numbers.append(_national_number(group, md))
    numbers = pl.concat(numbers)

    nsn = pl.col("nsn")
    # Leading zeros need PhoneNumber's Italian-zero fields: not replayed.
    replayed = ~pl.col("reference") & nsn.str.len_bytes().is_between(_MIN_NSN, _MAX_NSN) & ~nsn.str.starts_with("0")
    lookup = [pl.DataFrame(schema=_LOOKUP_SCHEMA)] + [
        _with_e164(group, int(cc))
        for (cc,), group in numbers.filter(replayed).partition_by(["cc"], as_dict=True).items()
    ]
    left_over = pl.concat([frame.filter(~bare)["key"], numbers.filter(~replayed)["key"]])
    return pl.concat(lookup), left_over


def _canonical_key(text: pl.Expr) -> pl.Expr:
    # parse() reads from the first '+' or digit and skips these separators,
    # so a bare key parses exactly like its cell.
    bare = text.str.replace_all(r"[ .()\-]", "")
    return (
        pl.when((text == "") | (text.str.len_chars() > MAX_PHONE_LENGTH))
        .then(None)
        .when(bare.str.contains(r"^\+?[0-9]{3,}$"))
        .then(bare)
        .otherwise(text)
    )


def _lookup(keys: pl.Series, table: pl.DataFrame) -> pl.Series:
    return keys.to_frame("key").join(table, on="key", how="left", maintain_order="left")["e164"]


_REPLAY_SLICE = 200_000


def normalize_phone_column(values: pl.Series, region: str) -> pl.DataFrame:
    """Vectorised: same length/order; columns phone_number (Utf8, E.164 or null) and phone_warning (Utf8)."""
    region = _check_region(region)
    text = values.cast(pl.Utf8).str.strip_chars(_PY_WHITESPACE).rename("text")
    key = text.to_frame().select(key=_canonical_key(pl.col("text")))["key"]
    # normalize_phone's second chance for a leading 00, only where it applies.
    rows_00 = (text.str.starts_with("00") & (text.str.len_chars() <= MAX_PHONE_LENGTH)).arg_true()
    key_00 = (
        text.gather(rows_00)
        .to_frame()
        .select(key=_canonical_key(pl.concat_str([pl.lit("+"), pl.col("text").str.slice(2)])))["key"]
    )

    # Each key is decided on its own, so the distinct keys go through the replay in slices: its
    # intermediate frames (a dozen columns per key) stay a slice's size, not a million keys'.
    keys = pl.concat([key, key_00]).drop_nulls().unique()
    parts = []
    for offset in range(0, keys.len(), _REPLAY_SLICE):
        table, left_over = _fast_e164(keys.slice(offset, _REPLAY_SLICE), region)
        parts += [
            table,
            pl.DataFrame(
                {"key": left_over, "e164": [_reference_e164(k, region) for k in left_over]}, schema=_LOOKUP_SCHEMA
            ),
        ]
    table = pl.concat(parts) if parts else pl.DataFrame(schema=_LOOKUP_SCHEMA)

    e164 = _lookup(key, table)
    if rows_00.len():
        e164 = e164.scatter(rows_00, pl.select(pl.coalesce(e164.gather(rows_00), _lookup(key_00, table))).to_series())
    numbers = pl.DataFrame({"text": text, "phone_number": e164})
    return numbers.with_columns(
        pl.when(_lettered(pl.col("text"))).then(None).otherwise(pl.col("phone_number")).alias("phone_number")
    ).select(
        "phone_number",
        phone_warning=pl.when((pl.col("text") != "") & pl.col("phone_number").is_null()).then(
            pl.concat_str([pl.lit("invalid phone_number '"), pl.col("text"), pl.lit(f"' for region {region}")])
        ),
    )


def normalize_phone_column_in_regions(
    values: pl.Series, regions: pl.Series | None, default_region: str
) -> pl.DataFrame:
    """normalize_phone_column with each row's own region (the row's country; null: default_region).
    The rows are grouped by region and each group goes through the column path, so each distinct
    (phone, region) pair is parsed once; a file without a country column is one group."""
    default_region = _check_region(default_region)
    if regions is None:
        return normalize_phone_column(values, default_region)
    frame = pl.DataFrame({"value": values.cast(pl.Utf8), "region": regions.cast(pl.Utf8)})
    has_phone = frame["value"].str.strip_chars(_PY_WHITESPACE).fill_null("") != ""
    # A row without a phone needs no region: it stays in the default group (fewer groups to parse).
    frame = frame.with_columns(region=pl.when(has_phone).then(pl.col("region")).fill_null(default_region))
    if frame["region"].n_unique() == 1:
        return normalize_phone_column(values, frame["region"][0])
    frame = frame.with_row_index("_row")
    parts = [
        group.select("_row").hstack(normalize_phone_column(group["value"], region))
        for (region,), group in frame.partition_by("region", as_dict=True).items()
    ]
    return pl.concat(parts).sort("_row").drop("_row")
