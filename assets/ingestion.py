"""Ingestion: an uploaded CSV becomes validated users, then users and their passes."""

from dataclasses import dataclass

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
    asset,
    define_asset_job,
    multi_asset,
)

from assets.metadata import OWNERS, markdown_table
from assets.partitions import uploads_partitions
from assets.resources import DATABASE_RETRY, Clock, LoyaltyDatabase, LoyaltySettings, only_transient_errors_retry
from loyalty_pipeline.csv_reader import CsvFileError, RawCsv, read_upload
from loyalty_pipeline.ingest import load_upload
from loyalty_pipeline.names import InvalidName, split_upload_key, upload_path
from loyalty_pipeline.programs import InvalidProgramConfig, ProgramNotFound, csv_column_mapping, get_program
from loyalty_pipeline.reports import write_issue_report
from loyalty_pipeline.validation import ValidatedUpload, validate_upload

USERS_SCHEMA = TableSchema(
    columns=[
        TableColumn("email", "text", description="trimmed, lower-cased; unique"),
        TableColumn("first_name", "text"),
        TableColumn("last_name", "text"),
        TableColumn("birth_date", "date", description="null when the year is unknown"),
        TableColumn("birth_month", "smallint"),
        TableColumn("birth_day", "smallint"),
        TableColumn("birth_date_set_at", "timestamptz", description="when the birthday last changed"),
        TableColumn("phone_number", "text", description="E.164"),
    ]
)
PASSES_SCHEMA = TableSchema(
    columns=[
        TableColumn("program_id", "uuid"),
        TableColumn("user_id", "uuid"),
        TableColumn("status", "text", description="active | inactive"),
        TableColumn("points_balance", "integer"),
    ]
)


@dataclass
class RawUpload:
    key: str
    file_name: str
    csv: RawCsv


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def columns_fed(raw: RawCsv) -> str:
    """One line per field: which header fed it (email ← "E-mail 1 - Value"), most preferred first."""
    lines = [f"{name} ← " + ", ".join(f'"{header}"' for header in headers) for name, headers in raw.sources.items()]
    return "\n".join(lines) or "none"


def _column_mapping(database: LoyaltyDatabase, slug: str) -> dict[str, list[str]] | None:
    """The program's csv_columns; an unknown program reads with the field table (validated_users,
    the step that needs the program's rules, fails it)."""
    with database.engine().connect() as conn:
        try:
            return csv_column_mapping(get_program(conn, slug))
        except ProgramNotFound:
            return None


@asset(
    partitions_def=uploads_partitions,
    group_name="ingestion",
    owners=OWNERS,
    retry_policy=DATABASE_RETRY,  # it reads the program's csv_columns
    description="An uploaded customer file (LOYALTY_UPLOADS_DIR/<program>/<file>: .csv, .tsv, .txt or "
    ".xlsx) read as text: encoding and delimiter (or worksheet) detected, headers matched to fields, "
    "ragged records set aside.",
)
def raw_upload(
    context: AssetExecutionContext, settings: LoyaltySettings, database: LoyaltyDatabase
) -> Output[RawUpload]:
    key = context.partition_key
    try:
        slug, file_name = split_upload_key(key)
        path = upload_path(settings.uploads_path, key)
        if not path.is_file():
            raise Failure(description=f"{key}: file not found at {path}", allow_retries=False)
        columns = _column_mapping(database, slug)
        csv = read_upload(path, file_label=key, columns=columns)
    except InvalidProgramConfig as exc:
        raise Failure(description=f"{key}: {exc}", allow_retries=False) from exc
    except (InvalidName, CsvFileError) as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    layout = (
        {"sheet": csv.sheet}
        if csv.sheet is not None
        else {"delimiter": _DELIMITER_NAMES.get(csv.delimiter, csv.delimiter), "encoding": csv.encoding}
    )
    return Output(
        RawUpload(key=key, file_name=file_name, csv=csv),
        metadata={
            "program": slug,
            "path": str(path),
            "sha256": csv.sha256,
            "file_kind": csv.file_kind,
            **layout,
            "rows_read": csv.rows_read,
            "columns": MetadataValue.text(columns_fed(csv)),
            "column_mapping": "programs.csv_columns" if columns else "detected (field table)",
            "unknown_columns": ", ".join(csv.unknown_columns) or "none",
            "nul_bytes_stripped": csv.nul_bytes_stripped,
        },
    )


@asset(
    partitions_def=uploads_partitions,
    group_name="ingestion",
    owners=OWNERS,
    retry_policy=DATABASE_RETRY,
    description="The upload's rows checked by a pandera schema: one row per email, dates and phones "
    "normalised, rejects and warnings with reasons.",
    check_specs=[
        AssetCheckSpec("unique_emails", asset="validated_users", description="one row per email"),
        AssetCheckSpec(
            "reject_rate", asset="validated_users", description="share of rejected rows under the threshold"
        ),
    ],
    metadata={"dagster/column_schema": USERS_SCHEMA},
)
def validated_users(
    context: AssetExecutionContext,
    raw_upload: RawUpload,
    database: LoyaltyDatabase,
    settings: LoyaltySettings,
    clock: Clock,
):
    slug, _ = split_upload_key(raw_upload.key)
    try:
        with database.engine().connect() as conn:
            program = get_program(conn, slug)
    except ProgramNotFound as exc:
        raise Failure(description=f"{raw_upload.key}: {exc}", allow_retries=False) from exc
    today = clock.now().astimezone(program.zone(settings.timezone)).date()
    validated = validate_upload(
        raw_upload.csv, date_order=program.date_order, phone_region=program.default_phone_region, today=today
    )
    reject_rate = validated.rows_rejected / validated.rows_read if validated.rows_read else 0.0
    report = write_issue_report(validated.issues, settings.reports_path / f"{raw_upload.key}.issues.csv")
    rejects = validated.issues.filter(pl.col("severity") == "error")
    yield Output(
        validated,
        metadata={
            "rows_read": validated.rows_read,
            "accepted": validated.rows_accepted,
            "rejected": validated.rows_rejected,
            "warnings": validated.warnings,
            "unique_users": validated.users.height,
            "reject_rate": MetadataValue.float(round(reject_rate, 4)),
            "unknown_columns": ", ".join(validated.unknown_columns) or "none",
            "issues_report": MetadataValue.path(str(report)),
            "first_rejects": MetadataValue.md(markdown_table(rejects.select("line", "column", "value", "reason"))),
            "first_warnings": MetadataValue.md(
                markdown_table(
                    validated.issues.filter(pl.col("severity") == "warning").select("line", "column", "value", "reason")
                )
            ),
        },
    )
    yield AssetCheckResult(
        check_name="unique_emails",
        passed=validated.users["email"].is_unique().all(),
        metadata={"users": validated.users.height},
    )
    yield AssetCheckResult(
        check_name="reject_rate",
        passed=reject_rate <= settings.max_reject_rate,
        severity=AssetCheckSeverity.WARN,
        metadata={"reject_rate": reject_rate, "threshold": settings.max_reject_rate},
    )


@multi_asset(
    partitions_def=uploads_partitions,
    group_name="ingestion",
    retry_policy=DATABASE_RETRY,
    ins={"validated_users": AssetIn()},
    specs=[
        AssetSpec(
            "users",
            deps=["validated_users"],
            owners=OWNERS,
            group_name="ingestion",
            description="Customers, one per email, merged from every upload: a value in a new upload "
            "overwrites, a blank never erases.",
            metadata={"dagster/column_schema": USERS_SCHEMA},
        ),
        AssetSpec(
            "passes",
            deps=["users"],
            owners=OWNERS,
            group_name="ingestion",
            description="passes_master: one pass per user and program; new ones start active with 0 points.",
            metadata={"dagster/column_schema": PASSES_SCHEMA},
        ),
    ],
)
def users_and_passes(
    context: AssetExecutionContext, validated_users: ValidatedUpload, database: LoyaltyDatabase, clock: Clock
):
    """Users and passes are written in one transaction, so they are one step with two assets."""
    key = context.partition_key
    slug, file_name = split_upload_key(key)
    engine = database.engine()
    try:
        with engine.connect() as conn:
            program = get_program(conn, slug)
    except ProgramNotFound as exc:
        raise Failure(description=f"{key}: {exc}", allow_retries=False) from exc
    with only_transient_errors_retry(key):
        result = load_upload(
            engine,
            key=key,
            file_name=file_name,
            sha256=validated_users.sha256,
            program=program,
            validated=validated_users,
            now=clock.now(),
        )
    yield MaterializeResult(
        asset_key="users",
        metadata={
            "users_created": result.users_created,
            "users_updated": result.users_updated,
            "birthdays_changed": result.birthdays_changed,
            "accepted_rows": result.rows_accepted,
        },
    )
    yield MaterializeResult(asset_key="passes", metadata={"passes_created": result.passes_created, "program": slug})


ingest_upload_job = define_asset_job(
    "ingest_upload_job",
    selection=["raw_upload", "validated_users", "users", "passes"],
    description="Read, validate and load one uploaded CSV.",
)
