"""Ingestion: a batch of uploaded files becomes validated users, then users and their passes.

One step materializes the four assets: each file is read, validated and loaded in its own
transaction (loyalty_pipeline.upload_batch), so nothing is handed between steps and a bad file fails
alone. Partitions are days of arrival; the files are the run's config (the sensor's batch, or every
file that arrived on the run's days when the config names none)."""

from datetime import date

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    define_asset_job,
    multi_asset,
)
from pydantic import Field

from assets.metadata import OWNERS, escape_markdown, markdown_table
from assets.partitions import upload_days
from assets.resources import DATABASE_RETRY, Clock, LoyaltyDatabase, LoyaltySettings
from loyalty_pipeline import uploads
from loyalty_pipeline.upload_batch import FileOutcome, ingest_batch
from loyalty_pipeline.upload_store import UploadStoreError

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
FILES_TABLE = TableSchema(
    columns=[
        TableColumn("file", "text", description="upload key: <program>/<file name>"),
        TableColumn("status", "text", description="failed | succeeded | unchanged"),
        TableColumn("rows_read", "integer"),
        TableColumn("accepted", "integer"),
        TableColumn("rejected", "integer"),
        TableColumn("warnings", "integer"),
        TableColumn("users_created", "integer"),
        TableColumn("users_updated", "integer"),
        TableColumn("passes_created", "integer"),
        TableColumn("layout", "text", description="file kind, delimiter and encoding (or worksheet)"),
        TableColumn("fields", "text", description='the header that fed each field (email ← "E-mail 1 - Value")'),
        TableColumn("mapping", "text", description="programs.csv_columns, or detected from the field table"),
        TableColumn("ignored_columns", "text"),
        TableColumn("issues_report", "text", description="CSV of the file's rejects and warnings"),
        TableColumn("seconds", "float"),
        TableColumn("error", "text"),
    ]
)
# Rows of the per-file table in a materialization (failures first); the full record is `uploads`.
METADATA_FILES = 300
_ORDER = {"failed": 0, "succeeded": 1, "unchanged": 2}


class UploadBatch(Config):
    """Which files a run ingests (the launchpad's config; the upload sensor and the CLI set it)."""

    files: list[str] = Field(
        default_factory=list,
        description="Upload keys (<program_slug>/<file name>) to read, validate and load. Empty: every "
        "file whose current version arrived on the run's days (uploads.arrived_at).",
    )
    skip_unchanged: bool = Field(
        default=False,
        description="Skip a file whose recorded version succeeded and is unchanged in the store (the sensor "
        "sets it; a rerun from the launchpad or the CLI reads every file again).",
    )


def _record(outcome: FileOutcome) -> dict:
    result = outcome.result
    counts = result.as_dict() if result else {}
    return {
        "file": outcome.key,
        "status": outcome.status,
        "rows_read": counts.get("rows_read", 0),
        "accepted": counts.get("rows_accepted", 0),
        "rejected": counts.get("rows_rejected", 0),
        "warnings": counts.get("warnings", 0),
        "users_created": counts.get("users_created", 0),
        "users_updated": counts.get("users_updated", 0),
        "passes_created": counts.get("passes_created", 0),
        "layout": outcome.layout,
        "fields": "; ".join(outcome.columns_fed.splitlines()),
        "mapping": outcome.column_mapping,
        "ignored_columns": ", ".join(outcome.unknown_columns),
        "issues_report": str(outcome.issues_report or ""),
        "seconds": outcome.seconds,
        "error": (outcome.error or "")[:500],
    }


# Each asset's counts, summed over the files that landed: metadata name -> the IngestResult field.
SUMMED = {
    "raw_upload": {"rows_read": "rows_read"},
    "validated_users": {
        "rows_read": "rows_read",
        "accepted": "rows_accepted",
        "rejected": "rows_rejected",
        "warnings": "warnings",
    },
    "users": {
        "users_created": "users_created",
        "users_updated": "users_updated",
        "birthdays_changed": "birthdays_changed",
        "accepted_rows": "rows_accepted",
    },
    "passes": {"passes_created": "passes_created"},
}


def _sums(landed: list[FileOutcome], asset: str) -> dict[str, int]:
    return {label: sum(getattr(o.result, field) for o in landed) for label, field in SUMMED[asset].items()}


def _issues(outcomes: list[FileOutcome], attribute: str) -> str:
    frames = [
        getattr(o, attribute).select(pl.lit(o.key).alias("file"), "line", "column", "value", "reason")
        for o in outcomes
        if getattr(o, attribute) is not None and getattr(o, attribute).height
    ]
    return markdown_table(pl.concat(frames)) if frames else "_none_"


def _status_counts(outcomes: list[FileOutcome]) -> dict:
    return {f"files_{s}": sum(o.status == s for o in outcomes) for s in ("succeeded", "failed", "unchanged")}


def _spec(key: str, *, description: str, deps: tuple | list = (), schema: TableSchema | None = None) -> AssetSpec:
    """One of the four ingestion assets the `ingest_uploads` step materializes."""
    metadata = {"dagster/column_schema": schema} if schema else None
    return AssetSpec(
        key, deps=list(deps), owners=OWNERS, group_name="ingestion", description=description, metadata=metadata
    )


@multi_asset(
    name="ingest_uploads",
    partitions_def=upload_days,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="ingestion",
    retry_policy=DATABASE_RETRY,
    specs=[
        _spec(
            "raw_upload",
            description="Uploaded customer files (<program>/<file> in LOYALTY_UPLOADS_URL or LOYALTY_UPLOADS_DIR) "
            "read as text: encoding and delimiter (or worksheet) detected, headers matched to fields, ragged "
            "records set aside. A partition is a day of arrival; each file's result is a row of `uploads`.",
        ),
        _spec(
            "validated_users",
            deps=["raw_upload"],
            schema=USERS_SCHEMA,
            description="Each file's rows checked by a pandera schema: one row per email, dates and phones "
            "normalised, rejects and warnings with reasons (upload_issues, and a CSV report per file).",
        ),
        _spec(
            "users",
            deps=["validated_users"],
            schema=USERS_SCHEMA,
            description="Customers, one per email, merged from every upload: a value in a new upload "
            "overwrites, a blank never erases.",
        ),
        _spec(
            "passes",
            deps=["users"],
            schema=PASSES_SCHEMA,
            description="passes_master: one pass per user and program; new ones start active with 0 points.",
        ),
    ],
    check_specs=[
        AssetCheckSpec(
            "files_ingested",
            asset="raw_upload",
            description="every file of the run landed (the failed files listed with their error)",
        ),
        AssetCheckSpec("unique_emails", asset="validated_users", description="one row per email, in every file"),
        AssetCheckSpec(
            "reject_rate",
            asset="validated_users",
            description="every file's share of rejected rows is under LOYALTY_MAX_REJECT_RATE (files over it listed)",
        ),
    ],
)
def ingest_uploads(
    context: AssetExecutionContext,
    config: UploadBatch,
    database: LoyaltyDatabase,
    settings: LoyaltySettings,
    clock: Clock,
):
    engine = database.engine()
    keys = list(dict.fromkeys(config.files))
    if not keys:
        with engine.connect() as conn:
            days = [date.fromisoformat(key) for key in context.partition_keys]
            keys = uploads.arrived_on(conn, days, upload_days.timezone)
    outcomes = []
    store = settings.store()
    try:
        for outcome in ingest_batch(
            engine,
            store,
            keys,
            reports_dir=settings.reports_path,
            default_timezone=settings.timezone,
            now=clock.now,
            run_id=context.run.run_id,
            skip_unchanged=config.skip_unchanged,
        ):
            if outcome.status == "failed":
                context.log.error(outcome.error)
            outcomes.append(outcome)
    except UploadStoreError as exc:
        # Credentials refused or the bucket gone: one line, and no file marked failed for it.
        raise Failure(description=str(exc), allow_retries=False) from None
    outcomes.sort(key=lambda o: (_ORDER[o.status], o.key))
    failed = [o for o in outcomes if o.status == "failed"]
    context.log.info(f"{len(outcomes)} file(s): {len(failed)} failed")
    if outcomes and len(failed) == len(outcomes):
        # Nothing landed: fail the run, so it shows red and raises the run-failure alert.
        raise Failure(description="; ".join(o.error for o in failed[:20]), allow_retries=False)
    landed = [o for o in outcomes if o.result is not None]
    files = MetadataValue.table(
        records=[TableRecord(_record(o)) for o in outcomes[:METADATA_FILES]], schema=FILES_TABLE
    )
    common = {"files": len(outcomes), **_status_counts(outcomes)}
    failures = MetadataValue.md("\n".join(f"- {escape_markdown(o.error)}" for o in failed[:METADATA_FILES]) or "_none_")
    yield MaterializeResult(
        asset_key="raw_upload",
        metadata={
            **common,
            **_sums(landed, "raw_upload"),
            "per_file": files,
            "failures": failures,
            "nul_bytes_stripped": sum(o.nul_bytes_stripped for o in landed),
            "store": store.describe(),
        },
    )
    over_rate = [o for o in landed if o.reject_rate > settings.max_reject_rate]
    yield MaterializeResult(
        asset_key="validated_users",
        metadata={
            **common,
            **_sums(landed, "validated_users"),
            "per_file": files,
            "first_rejects": MetadataValue.md(_issues(landed, "first_rejects")),
            "first_warnings": MetadataValue.md(_issues(landed, "first_warnings")),
            "issues_reports": MetadataValue.path(str(settings.reports_path)),
        },
    )
    yield MaterializeResult(
        asset_key="users",
        metadata={
            **common,
            **_sums(landed, "users"),
        },
    )
    yield MaterializeResult(
        asset_key="passes",
        metadata={
            **common,
            **_sums(landed, "passes"),
            "programs": ", ".join(sorted({o.program for o in landed}))[:1000] or "none",
        },
    )
    yield AssetCheckResult(
        asset_key="raw_upload",
        check_name="files_ingested",
        passed=not failed,
        metadata={"files": len(outcomes), "files_failed": len(failed), "failures": failures},
    )
    duplicated = [o.key for o in landed if not o.unique_emails]
    yield AssetCheckResult(
        asset_key="validated_users",
        check_name="unique_emails",
        passed=not duplicated,
        metadata={"files_checked": len(landed), "files_failing": MetadataValue.text(", ".join(duplicated) or "none")},
    )
    yield AssetCheckResult(
        asset_key="validated_users",
        check_name="reject_rate",
        passed=not over_rate,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "threshold": settings.max_reject_rate,
            "files_checked": len(landed),
            "files_over": MetadataValue.md(
                "\n".join(f"- {escape_markdown(o.key)}: {o.reject_rate:.1%}" for o in over_rate[:METADATA_FILES])
                or "_none_"
            ),
            "max_reject_rate": round(max((o.reject_rate for o in landed), default=0.0), 4),
        },
    )


INGEST_JOB = "ingest_upload_job"

ingest_upload_job = define_asset_job(
    INGEST_JOB,
    selection=["raw_upload", "validated_users", "users", "passes"],
    description="Read, validate and load a batch of uploaded files (config `files`), each in its own transaction.",
)


def batch_config(files: list[str], skip_unchanged: bool = False) -> dict:
    """The run config of ingest_upload_job naming its files (UploadBatch; the launchpad takes the same shape)."""
    return {"ops": {"ingest_uploads": {"config": {"files": list(files), "skip_unchanged": skip_unchanged}}}}
