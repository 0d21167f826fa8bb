"""Row validation: one pandera pass over the polars frame decides rejects, vectorised parsers
decide warnings, and a second schema is the contract of the validated_users table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandera.polars as pa
import polars as pl

from loyalty_pipeline.csv_reader import ISSUE_SCHEMA, RawCsv
from loyalty_pipeline.dates import parse_birth_date_column
from loyalty_pipeline.fields import COUNTRY, FIELDS, candidate_column
from loyalty_pipeline.phones import normalize_phone_column_in_regions
from loyalty_pipeline.regions import region_column

MAX_EMAIL_LENGTH = 254
MAX_CELL_LENGTH = 1000
ISSUE_VALUE_LENGTH = 200
# Warning reasons quote the cell (up to MAX_CELL_LENGTH characters, 4 UTF-8 bytes each), and the reason is
# part of upload_issues' unique btree index (2,704 bytes at most): a long cell must not fail the whole load.
ISSUE_REASON_LENGTH = 500
# Deliberately permissive about characters (international addresses exist) and strict about
# shape: one @, no spaces, a dotted domain ending in a 2+ letter top-level label.
# Control and invisible format characters (zero-width space, RTL override) are never part of an address.
# (Written as ranges both Python's re, which pandera compiles, and polars' Rust regex accept.)
_NOT_IN_EMAIL = (
    r"\s@\"(),:;<>\[\]\\\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\ufeff\ufff9-\ufffb"
)
EMAIL_PATTERN = rf"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}.]+(\.[^{_NOT_IN_EMAIL}.]+)*\.[^\W\d_]{{2,}}$"

USER_COLUMNS = ("line", "email", "first_name", "last_name", "birth_date", "birth_month", "birth_day", "phone_number")


def _not_null(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_not_null())


def _no_double_dots(data: pa.PolarsData) -> pl.LazyFrame:
    local = pl.col(data.key).str.split("@").list.first()
    bad = pl.col(data.key).str.contains("..", literal=True) | local.str.starts_with(".") | local.str.ends_with(".")
    return data.lazyframe.select((~bad).fill_null(True))  # a missing email is the not-null check's job


_cell_length = pa.Check.str_length(max_value=MAX_CELL_LENGTH, error=f"cell longer than {MAX_CELL_LENGTH} characters")

ROW_SCHEMA = pa.DataFrameSchema(
    {
        "email": pa.Column(
            str,
            nullable=True,
            checks=[
                pa.Check(_not_null, error="email is missing"),
                pa.Check.str_length(
                    max_value=MAX_EMAIL_LENGTH, error=f"email longer than {MAX_EMAIL_LENGTH} characters"
                ),
                pa.Check.str_matches(EMAIL_PATTERN, error="email is not a valid address"),
                pa.Check(_no_double_dots, error="email is not a valid address"),
            ],
        ),
        **{name: pa.Column(str, nullable=True, checks=[_cell_length]) for name in FIELDS if name != "email"},
    },
    name="upload_rows",
)

VALIDATED_USERS_SCHEMA = pa.DataFrameSchema(
    {
        "line": pa.Column(pl.Int64, pa.Check.ge(1)),  # a vCard's line is its card number
        "email": pa.Column(
            str,
            checks=[
                pa.Check.str_length(max_value=MAX_EMAIL_LENGTH),
                pa.Check(
                    lambda d: d.lazyframe.select(pl.col(d.key) == pl.col(d.key).str.strip_chars().str.to_lowercase()),
                    error="email must be trimmed and lower-case",
                ),
            ],
            unique=True,
        ),
        "first_name": pa.Column(str, nullable=True),
        "last_name": pa.Column(str, nullable=True),
        "birth_date": pa.Column(pl.Date, nullable=True),
        "birth_month": pa.Column(pl.Int16, pa.Check.in_range(1, 12), nullable=True),
        "birth_day": pa.Column(pl.Int16, pa.Check.in_range(1, 31), nullable=True),
        "phone_number": pa.Column(str, pa.Check.str_matches(r"^\+[1-9]\d{5,14}$"), nullable=True),
    },
    strict=True,
    name="validated_users",
)


@dataclass
class ValidatedUpload:
    users: pl.DataFrame  # VALIDATED_USERS_SCHEMA, one row per email
    issues: pl.DataFrame  # ISSUE_SCHEMA: rejects (error) and warnings
    rows_read: int
    rows_rejected: int
    sha256: str
    encoding: str = "utf-8"
    unknown_columns: list[str] = field(default_factory=list)
    encoding_confidence: float | None = 1.0
    file_warnings: list[str] = field(default_factory=list)  # the file-level warnings (also in issues)
    # field -> header name -> accepted rows whose value it fed, for the fields with several columns
    value_sources: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rows_accepted(self) -> int:
        return self.rows_read - self.rows_rejected

    @property
    def warnings(self) -> int:
        return self.issues.filter(pl.col("severity") == "warning").height


# A first or last name that is an email address or a domain (Stripe's Name, Outlook's First Name
# when the contact has no name): not a name.
_NOT_A_NAME = r"^[^\s@]+@[^\s@]+\.[^\s@]+$|^(?:www\.)?[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}$"


def _clean(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value).alias(name)


def _normalised(rows: pl.DataFrame) -> pl.DataFrame:
    emails = [name for name in rows.columns if name == "email" or name.startswith("email@")]
    others = [name for name in rows.columns if name not in ("line", *emails)]
    return rows.with_columns(*(_clean(name).str.to_lowercase() for name in emails), *(_clean(name) for name in others))


def _candidates(rows: pl.DataFrame, name: str) -> list[str]:
    return [c for c in (candidate_column(name, k) for k in range(len(rows.columns))) if c in rows.columns]


def _first_index(columns: list[str], usable: list[pl.Expr]) -> pl.Expr:
    return pl.coalesce([pl.when(ok).then(pl.lit(k, dtype=pl.Int16)) for k, ok in enumerate(usable)])


def _pick_valid_email(rows: pl.DataFrame, headers: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with the email of the first candidate column holding a valid address (else the first
    non-empty, which the schema then rejects), and a warning where an earlier one was skipped."""
    columns = _candidates(rows, "email")
    if not columns:
        return rows, pl.DataFrame(schema=ISSUE_SCHEMA)
    valid = [pl.col(c).str.contains(EMAIL_PATTERN) & ~pl.col(c).str.contains("..", literal=True) for c in columns]
    rows = rows.with_columns(
        _taken=_first_index(columns, valid), _first=_first_index(columns, [pl.col(c).is_not_null() for c in columns])
    )
    rows = rows.with_columns(
        email=pl.coalesce([pl.when(ok).then(pl.col(c)) for c, ok in zip(columns, valid, strict=True)]).fill_null(
            pl.col("email")
        )
    )
    return rows, _skipped(rows, "email", columns, headers, "holds no valid address")


def _skipped(rows: pl.DataFrame, name: str, columns: list[str], headers: list[str], why: str) -> pl.DataFrame:
    """A warning per row whose value came from a later column than its first non-empty one."""
    names = {k: header for k, header in enumerate(headers)}
    skipped = rows.filter(pl.col("_taken").is_not_null() & (pl.col("_taken") != pl.col("_first")))
    first_value = pl.coalesce([pl.when(pl.col("_first") == k).then(pl.col(c)) for k, c in enumerate(columns)])
    return skipped.select(
        "line",
        pl.lit(name).alias("column"),
        first_value.str.slice(0, ISSUE_VALUE_LENGTH).alias("value"),
        pl.lit("warning").alias("severity"),
        pl.concat_str(
            [
                pl.lit(f'{name} taken from "'),
                pl.col("_taken").replace_strict(names, return_dtype=pl.Utf8),
                pl.lit('": "'),
                pl.col("_first").replace_strict(names, return_dtype=pl.Utf8),
                pl.lit(f'" {why}'),
            ]
        )
        .str.slice(0, ISSUE_REASON_LENGTH)
        .alias("reason"),
    )


def _value_sources(rows: pl.DataFrame, name: str, headers: list[str]) -> dict[str, int]:
    counts = rows.filter(pl.col("_taken").is_not_null()).group_by("_taken").len().sort("_taken")
    return {headers[k]: n for k, n in counts.iter_rows()}


def _names(parsed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """First and last names that are an email or a domain are dropped, each with a warning."""
    names = ("first_name", "last_name")
    flagged = parsed.with_columns(pl.col(name).str.contains(_NOT_A_NAME).alias(f"_bad_{name}") for name in names)
    warnings = [
        flagged.filter(pl.col(f"_bad_{name}")).select(
            "line",
            pl.lit(name).alias("column"),
            pl.col(name).str.slice(0, ISSUE_VALUE_LENGTH).alias("value"),
            pl.lit("warning").alias("severity"),
            pl.lit(f"{name} is an email address or a domain, not a name: not stored").alias("reason"),
        )
        for name in names
    ]
    cleaned = flagged.with_columns(
        pl.when(pl.col(f"_bad_{name}")).then(None).otherwise(pl.col(name)).alias(name) for name in names
    ).drop(*(f"_bad_{name}" for name in names))
    return cleaned, pl.concat(warnings)


def _phones(
    accepted: pl.DataFrame, region: str, regions: pl.Series | None, headers: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """phone_number + phone_warning per row: the first candidate column with a valid number (each
    distinct (value, region) pair parsed once, all columns together), else the first non-empty
    one's warning. `regions` is each row's own region (its country), null for the default one."""
    columns = _candidates(accepted, "phone_number")
    if not columns:
        parsed = normalize_phone_column_in_regions(accepted["phone_number"], regions, region)
        return parsed, pl.DataFrame(schema=ISSUE_SCHEMA), {}
    stacked = pl.concat([accepted[c] for c in columns])
    stacked_regions = pl.concat([regions] * len(columns)) if regions is not None else None
    parsed = normalize_phone_column_in_regions(stacked, stacked_regions, region)
    height = accepted.height
    numbers = {c: parsed["phone_number"].slice(k * height, height) for k, c in enumerate(columns)}
    warnings = {c: parsed["phone_warning"].slice(k * height, height) for k, c in enumerate(columns)}
    frame = accepted.select("line", *columns).with_columns(
        *(numbers[c].alias(f"_n{k}") for k, c in enumerate(columns)),
        *(warnings[c].alias(f"_w{k}") for k, c in enumerate(columns)),
    )
    frame = frame.with_columns(
        _taken=_first_index(columns, [pl.col(f"_n{k}").is_not_null() for k in range(len(columns))]),
        _first=_first_index(columns, [pl.col(c).is_not_null() for c in columns]),
    )
    skipped = _skipped(frame, "phone_number", columns, headers, "holds no valid phone number")
    chosen = frame.select(
        phone_number=pl.coalesce([pl.col(f"_n{k}") for k in range(len(columns))]),
        phone_warning=pl.when(pl.col("_taken").is_null()).then(
            pl.coalesce([pl.when(pl.col("_first") == k).then(pl.col(f"_w{k}")) for k in range(len(columns))])
        ),
    )
    return chosen, skipped, _value_sources(frame, "phone_number", headers)


def _row_regions(accepted: pl.DataFrame, default_region: str) -> tuple[pl.Series | None, pl.DataFrame]:
    """Each row's phone region from its country cell (each distinct value mapped once), and a
    warning where a national phone was read in the default region because the country is unknown."""
    if COUNTRY not in accepted.columns:
        return None, pl.DataFrame(schema=ISSUE_SCHEMA)
    regions = region_column(accepted[COUNTRY])
    phone = pl.col("phone_number").str.strip_chars()
    unknown = accepted.with_columns(_region=regions).filter(
        pl.col(COUNTRY).is_not_null() & pl.col("_region").is_null() & phone.is_not_null() & ~phone.str.starts_with("+")
    )
    warnings = unknown.select(
        "line",
        pl.lit(COUNTRY).alias("column"),
        pl.col(COUNTRY).str.slice(0, ISSUE_VALUE_LENGTH).alias("value"),
        pl.lit("warning").alias("severity"),
        pl.lit(
            f"country is not one we know, so the phone was read in region {default_region} (default_phone_region)"
        ).alias("reason"),
    )
    return regions, warnings


def _rejects(rows: pl.DataFrame) -> pl.DataFrame:
    try:
        ROW_SCHEMA.validate(rows.drop("line"), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.filter(pl.col("index").is_not_null())
        lines = rows.select(pl.col("line"), pl.int_range(pl.len(), dtype=pl.Int32).alias("index"))
        return (
            cases.join(lines, on="index")
            .select(
                "line",
                "column",
                pl.col("failure_case").str.slice(0, ISSUE_VALUE_LENGTH).alias("value"),
                pl.lit("error").alias("severity"),
                pl.col("check").alias("reason"),
            )
            .unique(subset=["line", "column", "reason"], keep="first")
        )
    return pl.DataFrame(schema=ISSUE_SCHEMA)


def _warning(frame: pl.DataFrame, column: str, reason_column: str) -> pl.DataFrame:
    return frame.filter(pl.col(reason_column).is_not_null()).select(
        "line",
        pl.lit(column).alias("column"),
        pl.col(f"raw_{column}").str.slice(0, ISSUE_VALUE_LENGTH).alias("value"),
        pl.lit("warning").alias("severity"),
        pl.col(reason_column).str.slice(0, ISSUE_REASON_LENGTH).alias("reason"),
    )


def validate_upload(raw: RawCsv, *, date_order: str, phone_region: str, today: date) -> ValidatedUpload:
    """The upload's users and issues. Takes `raw`'s rows (RawCsv.take_rows): read them before."""
    rows, email_skipped = _pick_valid_email(_normalised(raw.take_rows()), raw.sources.get("email", []))
    rejects = _rejects(rows.select("line", *FIELDS))
    accepted = rows.join(rejects.select("line").unique(), on="line", how="anti")
    del rows  # each full-size intermediate is dropped once the next one is built (peak memory)
    value_sources = {}
    if "_taken" in accepted.columns:
        value_sources["email"] = _value_sources(accepted, "email", raw.sources["email"])
        email_skipped = email_skipped.join(accepted.select("line"), on="line", how="semi")

    births = parse_birth_date_column(accepted["birth_date"], date_order, today)
    regions, country_warnings = _row_regions(accepted, phone_region)
    phones, phone_skipped, phone_sources = _phones(accepted, phone_region, regions, raw.sources.get("phone_number", []))
    if phone_sources:
        value_sources["phone_number"] = phone_sources
    parsed = pl.concat(
        [
            accepted.select(
                "line",
                "email",
                "first_name",
                "last_name",
                pl.col("birth_date").alias("raw_birth_date"),
                pl.col("phone_number").alias("raw_phone_number"),
            ),
            births,
            phones,
        ],
        how="horizontal",
    )
    del accepted, births, phones
    parsed, name_warnings = _names(parsed)
    # Only the rows whose email repeats are joined (not a copy of the whole upload).
    repeated = parsed.select("line", "email").filter(pl.col("email").is_duplicated())
    first_lines = repeated.group_by("email").agg(pl.col("line").min().alias("first_line"))
    duplicates = (
        repeated.join(first_lines, on="email")
        .filter(pl.col("line") != pl.col("first_line"))
        .select(
            "line",
            pl.lit("email").alias("column"),
            pl.col("email").alias("value"),
            pl.lit("warning").alias("severity"),
            pl.format("duplicate email (first on line {}): later non-empty values win", "first_line").alias("reason"),
        )
    )
    issues = pl.concat(
        [
            raw.issues,
            raw.warnings,
            email_skipped,
            phone_skipped,
            country_warnings,
            name_warnings,
            rejects,
            _warning(parsed, "birth_date", "birth_date_warning"),
            _warning(parsed, "phone_number", "phone_warning"),
            duplicates,
        ],
        how="vertical_relaxed",
    ).sort("line", "column", "reason")

    # A birthday is one fact: take date, month and day together from the last row that had one.
    birthday = pl.when(pl.col("birth_month").is_not_null()).then(pl.struct("birth_date", "birth_month", "birth_day"))
    users = (
        parsed.select(USER_COLUMNS)
        .sort("line")
        .group_by("email", maintain_order=True)
        .agg(
            pl.col("line").last(),
            pl.col("first_name").drop_nulls().last(),
            pl.col("last_name").drop_nulls().last(),
            birthday.drop_nulls().last().alias("birthday"),
            pl.col("phone_number").drop_nulls().last(),
        )
        .unnest("birthday")
        .with_columns(pl.col("birth_month").cast(pl.Int16), pl.col("birth_day").cast(pl.Int16))
        .select(USER_COLUMNS)
    )
    users = VALIDATED_USERS_SCHEMA.validate(users)
    return ValidatedUpload(
        users=users,
        issues=issues.select(list(ISSUE_SCHEMA)).cast(ISSUE_SCHEMA),
        rows_read=raw.rows_read,
        rows_rejected=raw.issues.height + rejects.select("line").n_unique(),
        sha256=raw.sha256,
        encoding=raw.encoding,
        unknown_columns=raw.unknown_columns,
        encoding_confidence=raw.encoding_confidence,
        file_warnings=raw.file_warnings,
        value_sources=value_sources,
    )
