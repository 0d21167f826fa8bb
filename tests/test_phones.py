import random

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from loyalty_pipeline import phones
from loyalty_pipeline.phones import normalize_phone, normalize_phone_column

REGIONS = ["US", "GB", "FR", "DE", "IN"]


def column(values, region):
    frame = normalize_phone_column(pl.Series(values, dtype=pl.Utf8), region)
    return list(zip(frame["phone_number"].to_list(), frame["phone_warning"].to_list(), strict=True))


def scalar(values, region):
    return [normalize_phone(value, region) for value in values]


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_empty_is_silently_no_phone(value):
    assert normalize_phone(value, "US") == (None, None)


@pytest.mark.parametrize(
    "value",
    [
        "(212) 555-0100",
        "212.555.0100",
        "212-555-0100",
        "2125550100",
        "+1 212 555 0100",
        "1-212-555-0100",
        " 212 555 0100 ",
    ],
)
def test_us_formats_become_e164(value):
    assert normalize_phone(value, "US") == ("+12125550100", None)


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("0121 234 5678", "GB", "+441212345678"),
        ("07400 123456", "GB", "+447400123456"),
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("030 123456", "DE", "+4930123456"),
        ("01512 3456789", "DE", "+4915123456789"),
        ("081234 56789", "IN", "+918123456789"),
    ],
)
def test_national_numbers_use_the_program_region(value, region, expected):
    assert normalize_phone(value, region) == (expected, None)


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("+44 121 234 5678", "US"),
        ("+44 121 234 5678", "FR"),
        ("0044 121 234 5678", "FR"),
        ("0044 121 234 5678", "DE"),
        ("011 44 121 234 5678", "US"),
        # 00 is not the US dialling-out prefix, but is still read as '+'.
        ("0044 121 234 5678", "US"),
    ],
)
def test_international_prefix_keeps_its_own_country(value, region):
    assert normalize_phone(value, region) == ("+441212345678", None)


@pytest.mark.parametrize("value", ["555-123-4567", "123", "hello", "2125550100000000", "+999 123 4567", "0044"])
def test_invalid_numbers_warn(value):
    assert normalize_phone(value, "US") == (None, f"invalid phone_number '{value}' for region US")


def test_warning_shows_the_trimmed_cell():
    assert normalize_phone("  call me  ", "GB") == (None, "invalid phone_number 'call me' for region GB")


def test_cells_longer_than_64_characters_are_invalid():
    text = "Customer mobile number (preferred contact, evenings only): 212-555-0100"
    assert len(text) > phones.MAX_PHONE_LENGTH
    assert phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))  # the library alone would accept it
    expected = (None, f"invalid phone_number '{text}' for region US")
    assert normalize_phone(text, "US") == expected
    assert column([text], "US") == [expected]
    padded = "0044" + " " * 50 + "121 234 5678"  # no second chance through the leading 00 either
    assert normalize_phone(padded, "US") == (None, f"invalid phone_number '{padded}' for region US")
    assert column([padded], "US") == [normalize_phone(padded, "US")]
    assert normalize_phone(padded.replace(" " * 50, " "), "US") == ("+441212345678", None)


def test_region_is_case_insensitive_and_must_exist():
    assert normalize_phone("2125550100", "us") == ("+12125550100", None)
    with pytest.raises(ValueError):
        normalize_phone("2125550100", "XX")
    with pytest.raises(ValueError):
        normalize_phone_column(pl.Series(["2125550100"]), "XX")


def test_column_keeps_length_order_and_types():
    values = [
        "(212) 555-0100",
        None,
        "0044 121 234 5678",
        "",
        "hello",
        "+44 121 234 5678",
        "(212) 555-0100",
        "  ",
        "00 1",
    ]
    frame = normalize_phone_column(pl.Series(values), "US")
    assert frame.schema == pl.Schema({"phone_number": pl.Utf8, "phone_warning": pl.Utf8})
    assert list(zip(frame["phone_number"].to_list(), frame["phone_warning"].to_list(), strict=True)) == [
        ("+12125550100", None),
        (None, None),
        ("+441212345678", None),
        (None, None),
        (None, "invalid phone_number 'hello' for region US"),
        ("+441212345678", None),
        ("+12125550100", None),
        (None, None),
        (None, "invalid phone_number '00 1' for region US"),
    ]


def test_empty_column_gives_empty_frame():
    frame = normalize_phone_column(pl.Series([], dtype=pl.Utf8), "GB")
    assert frame.shape == (0, 2)
    assert frame.schema == pl.Schema({"phone_number": pl.Utf8, "phone_warning": pl.Utf8})


def test_column_trims_exactly_like_str_strip():
    everything = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    assert set(phones._PY_WHITESPACE) == set(everything)
    values = ["\x1c2125550100\x1f", "\u3000+44 121 234 5678\u2028", "\x1c\x1d"]
    assert column(values, "US") == scalar(values, "US")


def _generated_numbers(seed=2024):
    """A few thousand phone-ish strings in the shapes people type, valid and not."""
    rng = random.Random(seed)
    types = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP]
    bases = []
    for region in REGIONS + ["CA", "IT", "RU", "BR", "JP", "AU", "MX", "AR", "NL", "CH", "BY"]:
        for kind in types:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                bases.append((example.country_code, phonenumbers.national_significant_number(example)))
    out = set()
    for _ in range(600):
        cc, nsn = rng.choice(bases)
        digits = list(nsn)
        for _ in range(rng.randint(0, 2)):  # typos, so some are invalid
            digits[rng.randrange(len(digits))] = str(rng.randrange(10))
        if rng.random() < 0.2:
            del digits[rng.randrange(len(digits))]
        nsn = "".join(digits)
        prefix = rng.choice(["", "0", "1", "+{cc}", "+{cc} ", "00{cc} ", "011 {cc} ", "{cc}", "{cc} 0", "+{cc} (0)"])
        body = rng.choice(
            [
                nsn,
                " ".join([nsn[:3], nsn[3:6], nsn[6:]]),
                f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
                ".".join([nsn[:3], nsn[3:]]),
            ]
        )
        number = (prefix.format(cc=cc) + body).strip()
        out.add(number)
        if rng.random() < 0.3:  # extensions and second numbers: the reference path's job
            out.add(number + rng.choice([" x12", " ext. 345", " #7", ",,12", "/x9", "-12#"]))
    for _ in range(800):
        lead = rng.choice(["", "+", "0", "00", "011", "1", "44", "33", "49", "91", "+1", "+44"])
        out.add(lead + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15))))
    # Shapes where the national-prefix and length rules of parse() decide the
    # outcome (found by breaking those rules in the fast path on purpose).
    out.update(["+375 80 1123 4367", "+1 1 310 1214", "(+44) 20 7946 0958", "1-800-FLOWERS", "+1 800 FLOWERS"])
    return sorted(out)


@pytest.mark.parametrize("region", REGIONS)
def test_fast_path_equals_reference_on_generated_numbers(region):
    numbers = _generated_numbers()
    keys = (
        pl.DataFrame({"text": numbers}).select(key=phones._canonical_key(pl.col("text")))["key"].drop_nulls().unique()
    )
    decided, left_over = phones._fast_e164(keys, region)
    # The fast path must actually carry the load, or this test proves nothing.
    assert decided.height > 0.6 * keys.len()
    assert decided.height + left_over.len() == keys.len()
    assert decided["e164"].is_not_null().sum() > 100
    mismatches = [(key, e164) for key, e164 in decided.iter_rows() if e164 != phones._reference_e164(key, region)]
    assert mismatches == []
    assert column(numbers, region) == scalar(numbers, region)


def test_fast_path_handles_every_country_code_in_international_form():
    examples = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                examples.add(phonenumbers.format_number(example, PhoneNumberFormat.E164))
                examples.add(phonenumbers.format_number(example, PhoneNumberFormat.E164)[:-1])
    keys = pl.Series(sorted(examples))
    decided, _ = phones._fast_e164(keys, "US")
    assert decided.height > 0.8 * keys.len()
    assert [e164 for _, e164 in decided.iter_rows()] == [
        phones._reference_e164(k, "US") for k, _ in decided.iter_rows()
    ]


phone_like = st.text(alphabet="0123456789 +-().x#,;/extEXT", max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=80), phone_like), max_size=20),
    region=st.sampled_from(REGIONS),
)
def test_column_equals_scalar_for_any_text(values, region):
    assert column(values, region) == scalar(values, region)
