"""Deterministic generator of large, messy customer CSVs for load tests.

    python benchmarks/generate_csv.py OUT.csv --rows 1000000 [--seed 42] [--bad-fraction 0.1]

Generated files are meant for a program with date_order MDY and default region US. About
bad_fraction of the rows are rejected by the pipeline (the summary gives the exact count), 1%
repeat a recent row's address in another case, and the rest carry warnings at realistic rates.

Randomness is an integer hash of (seed, stream, row index) evaluated by polars, not a stateful
generator, so a row's content does not depend on chunk size, and plain integer arithmetic keeps
the output independent of polars' own random number generator, which may change between versions.

Emails and overlap between files: row i belongs to user number i and its address is
`user{i}@example{i % 10 + 10 * o}.com`. `o` is 0 for rows picked as "existing" and
`email_domain_offset` for the others; `existing_emails_fraction` of the rows, evenly spread,
are existing. So a file made with the defaults is the "first" file, and

    generate_csv(second, rows, existing_emails_fraction=0.5, email_domain_offset=1)

reuses the address of every other row of the first file and gives the rest addresses no
offset-0 file contains, so about half of the accepted addresses are shared (measured: 49.9% at
200k rows). Which rows are bad or duplicated depends only on the seed and the row number: with
the same seed, existing rows also repeat the first file's names, dates and phones; a different
seed gives the same users with different details.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

CHUNK_ROWS = 250_000
_M = 2**31 - 1  # prime modulus: every product below stays far inside Int64

CLEAN_HEADER = ["email", "first_name", "last_name", "birth_date", "phone_number"]
# Column order differs from the clean one so the pipeline has to map by name; "Home Store" is unknown.
MESSY_HEADER = ["Mobile", "Surname", "First Name", " Email ", "DOB", "Home Store"]

# Common names are repeated so the unicode and messy ones stay a realistic minority.
FIRST_NAMES = 8 * [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Maria",
    "Wei",
    "Aisha",
    "Priya",
    "Kenji",
    "Fatima",
    "Luis",
    "Ana",
    "Olga",
    "Chen",
] + [
    "José",
    "Zoë",
    "Renée",
    "Łukasz",
    "Søren",
    "Nguyễn",
    "Björk",
    "محمد",
    "فاطمة",
    "דוד",
    "נועה",
    "李",
    "さくら",
    "Олег",
    "😀 Sam",
    "Jo 🍕",
    " Anna ",
    "Tom  ",
    "",
    "   ",
    "Mary\nAnn",
    '=HYPERLINK("http://x","y")',
]
LAST_NAMES = 8 * [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Lee",
] + [
    "O'Brien",
    "Müller",
    "García-López",
    "Nowak",
    "da Silva",
    "van der Berg",
    "Smith, Jr.",
    'Bob "The Builder"',
    "عبد الله",
    "כהן",
    "王",
    "Иванова",
    "Ng 🎉",
    " Patel ",
    "",
    "   ",
]
STORES = ["Downtown", "Airport", "", "Mall", "Online"]
LONG_CELL = "Lorem ipsum dolor sit amet. " * 40  # 1,120 chars: over the 1,000-char cell limit

AREA_CODES = [212, 415, 617, 312, 646, 718, 213, 305, 206, 512, 303, 404]
# Eight US styles, one per position of the three lists: (212) 555-0100, 212.555.0100, +1 212 555 0100,
# 2125550100, 212-555-0100, 1-212-555-0100, +1 (212) 555-0100 and 212 555 0100.
PHONE_BEFORE_AREA = ["(", "", "+1 ", "", "", "1-", "+1 (", ""]
PHONE_AREA_TO_EXCHANGE = [") ", ".", " ", "", "-", "-", ") ", " "]
PHONE_EXCHANGE_TO_LINE = ["-", ".", " ", "", "-", "-", "-", " "]
INVALID_PHONES = ["555-0142", "12345", "212 123 4567", "call me", "+1 212 555 01", "000-000-0000", "911"]

PLACEHOLDER_DATES = ["N/A", "NA", "n/a", "Unknown", "-", "none", "?"]
INVALID_DATES = ["1990-02-30", "02/30/1990", "2091-05-01", "1850-01-01", "1990", "March 1990", "13/45/1990"]
DATE_POOL = 2000  # x ~11 year-bearing formats gives ~20k distinct birth_date strings
DATE_START = date(1945, 1, 1)
DATE_STEP_DAYS = 11

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _date_formats(d: date) -> list[str]:
    m, dd, y = d.month, d.day, d.year
    mon = _MONTHS[m - 1]
    # Two-digit years only where every sensible pivot agrees on the century.
    short_year = f"{m}/{dd}/{y % 100:02d}" if 1970 <= y <= 2005 else f"{m}/{dd}/{y}"
    return [
        f"{y}-{m:02d}-{dd:02d}",
        f"{y}/{m:02d}/{dd:02d}",
        f"{y}{m:02d}{dd:02d}",
        f"{y}-{m:02d}-{dd:02d}T00:00:00",
        f"{y}-{m:02d}-{dd:02d} 08:30:00",
        f"{m:02d}/{dd:02d}/{y}",
        f"{m}/{dd}/{y}",
        f"{dd:02d}.{m:02d}.{y}",
        f"{mon} {dd}, {y}",
        f"{dd} {mon[:3]} {y}",
        short_year,
        f"{m:02d}/{dd:02d}",
        f"{dd} {mon}",
        f"--{m:02d}-{dd:02d}",
    ]


# Percent of valid dates per format index above; ISO and US slashes dominate real exports.
_FORMAT_WEIGHTS = [30, 5, 4, 4, 2, 15, 8, 5, 6, 5, 8, 4, 2, 2]


def _build_date_table() -> pl.Series:
    values: list[str] = []
    for p in range(DATE_POOL):
        values.extend(_date_formats(DATE_START + timedelta(days=p * DATE_STEP_DAYS)))
    values += PLACEHOLDER_DATES + INVALID_DATES + [""]
    # Quoted once here rather than per row: "March 14, 1990" carries a comma.
    return pl.Series([f'"{v}"' if "," in v else v for v in values])


_FORMAT_BY_PERCENT = pl.Series([i for i, w in enumerate(_FORMAT_WEIGHTS) for _ in range(w)], dtype=pl.Int64)
assert len(_FORMAT_BY_PERCENT) == 100


def _rand(i: pl.Series, seed: int, stream: int) -> pl.Series:
    x = (i * 2654435761 + (seed * 1000003 + stream * 7919) % _M) % _M
    x = (x * 48271) % _M
    x = x ^ (x // 8192)
    x = (x * 69621) % _M
    x = x ^ (x // 65536)
    return (x * 48271) % _M


def _existing(i: pl.Series, fraction: float) -> pl.Series:
    # Bresenham spread: exactly floor(rows * fraction) rows, evenly interleaved.
    return ((i + 1).cast(pl.Float64) * fraction).floor() - (i.cast(pl.Float64) * fraction).floor() >= 1


def _quoted(s: pl.Series) -> pl.Series:
    needs = s.str.contains(r'[",\r\n]')
    wrapped = '"' + s.str.replace_all('"', '""', literal=True) + '"'
    return pl.select(pl.when(needs).then(wrapped).otherwise(s)).to_series()


def _pick(pool: list[str], r: pl.Series) -> pl.Series:
    return pl.Series(pool).gather(r % len(pool))


def _chunk(
    start: int,
    stop: int,
    *,
    seed: int,
    bad_fraction: float,
    existing_fraction: float,
    domain_offset: int,
    date_table: pl.Series,
    messy: bool,
):
    i = pl.int_range(start, stop, dtype=pl.Int64, eager=True)
    r = lambda stream: _rand(i, seed, stream)  # noqa: E731

    # A few valid rows repeat a recent user's address, usually re-cased: in-file duplicates.
    is_dup = (r(1) % 1000 < 10) & (i > 0)
    n = pl.select(pl.when(is_dup).then((i - 1 - r(2) % 500).clip(0)).otherwise(i)).to_series()
    existing = _existing(n, existing_fraction)
    k = n % 10 + pl.select(pl.when(existing).then(0).otherwise(domain_offset)).to_series() * 10
    ns, ks = n.cast(pl.String), k.cast(pl.String)
    # 90% canonical; the rest re-cased or padded, which the pipeline must normalise away.
    style = pl.select(pl.when(is_dup).then(2).otherwise(r(3) % 100 // 90 * (1 + r(4) % 3))).to_series()
    email = pl.select(
        pl.when(style == 0)
        .then("user" + ns + "@example" + ks + ".com")
        .when(style == 1)
        .then("User" + ns + "@Example" + ks + ".com")
        .when(style == 2)
        .then("USER" + ns + "@EXAMPLE" + ks + ".COM")
        .otherwise("  user" + ns + "@example" + ks + ".com ")
    ).to_series()
    key = n * 2 + (~existing & (domain_offset != 0)).cast(pl.Int64)

    is_bad = r(5).cast(pl.Float64) / _M < bad_fraction
    kind = r(6) % 100
    # Rejected rows by kind: 0-54 malformed email, 55-89 empty or blank email, 90-93 email over 254
    # chars, 94-96 a cell over 1,000 chars, 97-99 an extra field. All other rows are accepted.
    bad_email = pl.select(
        pl.when(kind % 6 == 0)
        .then("user" + ns + ".example" + ks + ".com")
        .when(kind % 6 == 1)
        .then("user" + ns + "@@example" + ks + ".com")
        .when(kind % 6 == 2)
        .then("user " + ns + "@example" + ks + ".com")
        .when(kind % 6 == 3)
        .then("@example" + ks + ".com")
        .when(kind % 6 == 4)
        .then("user" + ns + "@")
        .otherwise("user" + ns + "@example" + ks + ",com")
    ).to_series()
    email = pl.select(
        pl.when(is_bad & (kind < 55))
        .then(bad_email)
        .when(is_bad & (kind < 75))
        .then(pl.lit(""))
        .when(is_bad & (kind < 90))
        .then(pl.lit("   "))
        .when(is_bad & (kind < 94))
        .then("user" + ns + "x" * 250 + "@example" + ks + ".com")
        .otherwise(email)
    ).to_series()

    first = _pick(FIRST_NAMES, r(7))
    last = _pick(LAST_NAMES, r(8))
    last = pl.select(pl.when(is_bad & (kind >= 94) & (kind < 97)).then(pl.lit(LONG_CELL)).otherwise(last)).to_series()

    bucket = r(9) % 1000  # 6% empty, 1.5% placeholders, 0.5% invalid (warnings, rows kept)
    valid_date = (r(10) % DATE_POOL) * len(_FORMAT_WEIGHTS) + _FORMAT_BY_PERCENT.gather(r(11) % 100)
    base = DATE_POOL * len(_FORMAT_WEIGHTS)
    date_idx = pl.select(
        pl.when(bucket < 60)
        .then(base + len(PLACEHOLDER_DATES) + len(INVALID_DATES))
        .when(bucket < 75)
        .then(base + r(12) % len(PLACEHOLDER_DATES))
        .when(bucket < 80)
        .then(base + len(PLACEHOLDER_DATES) + r(12) % len(INVALID_DATES))
        .otherwise(valid_date)
    ).to_series()
    birth = date_table.gather(date_idx)

    ps = r(13) % len(PHONE_BEFORE_AREA)
    area = _pick([str(a) for a in AREA_CODES], r(14))
    exchange = (200 + r(15) % 800).cast(pl.String)
    line = (r(16) % 10000).cast(pl.String).str.zfill(4)
    phone = (
        _pick(PHONE_BEFORE_AREA, ps)
        + area
        + _pick(PHONE_AREA_TO_EXCHANGE, ps)
        + exchange
        + _pick(PHONE_EXCHANGE_TO_LINE, ps)
        + line
    )
    pbucket = r(17) % 100  # 10% empty, 3% invalid
    phone = pl.select(
        pl.when(pbucket < 10).then(pl.lit("")).when(pbucket < 13).then(_pick(INVALID_PHONES, r(18))).otherwise(phone)
    ).to_series()

    email_q, first_q, last_q = _quoted(email), _quoted(first), _quoted(last)
    if messy:
        cells = [phone, last_q, first_q, email_q, birth, _pick(STORES, r(19))]
    else:
        cells = [email_q, first_q, last_q, birth, phone]
    extra = is_bad & (kind >= 97)
    lines = (
        pl.select(pl.concat_str(cells, separator=",") + pl.when(extra).then(pl.lit(",surplus")).otherwise(pl.lit("")))
        .to_series()
        .rename("line")
    )
    return lines, int(is_bad.sum()), key.filter(~is_bad)


def generate_csv(
    path,
    rows: int,
    *,
    seed: int = 42,
    bad_fraction: float = 0.10,
    existing_emails_fraction: float = 0.0,
    email_domain_offset: int = 0,
    header_style: str = "messy",
) -> dict:
    if header_style not in ("messy", "clean"):
        raise ValueError(f"header_style must be 'messy' or 'clean', got {header_style!r}")
    messy = header_style == "messy"
    started = time.perf_counter()
    date_table = _build_date_table()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = 0
    keys = []
    with path.open("wb") as out:
        # Spreadsheet exports carry a BOM; the messy style imitates one.
        out.write(
            ("\ufeff" if messy else "").encode() + (",".join(MESSY_HEADER if messy else CLEAN_HEADER) + "\n").encode()
        )
        for start in range(0, rows, CHUNK_ROWS):
            lines, chunk_bad, chunk_keys = _chunk(
                start,
                min(rows, start + CHUNK_ROWS),
                seed=seed % _M,
                bad_fraction=bad_fraction,
                existing_fraction=existing_emails_fraction,
                domain_offset=email_domain_offset,
                date_table=date_table,
                messy=messy,
            )
            lines.to_frame().write_csv(out, include_header=False, quote_style="never")
            bad += chunk_bad
            keys.append(chunk_keys)
    distinct = pl.concat(keys).n_unique() if keys else 0
    return {
        "path": str(path),
        "rows": rows,
        "expected_bad_rows": bad,
        "distinct_emails": distinct,
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-fraction", type=float, default=0.10)
    parser.add_argument("--existing-emails-fraction", type=float, default=0.0)
    parser.add_argument("--email-domain-offset", type=int, default=0)
    parser.add_argument("--header-style", choices=("messy", "clean"), default="messy")
    args = parser.parse_args(argv)
    summary = generate_csv(
        args.out,
        args.rows,
        seed=args.seed,
        bad_fraction=args.bad_fraction,
        existing_emails_fraction=args.existing_emails_fraction,
        email_domain_offset=args.email_domain_offset,
        header_style=args.header_style,
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
