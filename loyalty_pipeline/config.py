"""Every setting of the pipeline, defined once: its environment variable, its default (one that works
on a fresh laptop) and what it means.

The CLI, the demo, the benchmarks and the tests get their values from `Settings` (`Settings.from_env()`
or explicit fields); loyalty_pipeline.definitions builds the Dagster resources from the same fields,
as an `EnvVar` when the variable is set so the UI shows where each value came from and never shows a
secret. The README's variable table is `markdown_table()` (tests/test_config.py keeps them equal;
`python -m loyalty_pipeline.config` prints it)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path(".loyalty")


@dataclass(frozen=True)
class Variable:
    """One environment variable; an empty value counts as unset."""

    name: str
    default: str | None
    meaning: str
    # Other names of the same setting, read when `name` is unset (AWS's SDKs accept several).
    also: tuple[str, ...] = ()

    def source(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The first of the variable's names that is set."""
        env = os.environ if environ is None else environ
        return next((name for name in (self.name, *self.also) if env.get(name)), None)

    def read(self, environ: Mapping[str, str] | None = None) -> str | None:
        name = self.source(environ)
        return (os.environ if environ is None else environ)[name] if name else self.default

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        return self.source(environ) is not None

    def describe(self) -> str:
        """The meaning with the variable's name, for a resource field's description in the UI."""
        return f"{self.meaning} ({self.name})"


DATABASE_URL = Variable(
    "LOYALTY_DATABASE_URL",
    f"sqlite:///{(DEFAULT_HOME / 'loyalty.db').as_posix()}",
    "SQLAlchemy URL of the application database (`postgresql://` uses psycopg 3)",
)
UPLOADS_DIR = Variable(
    "LOYALTY_UPLOADS_DIR",
    (DEFAULT_HOME / "uploads").as_posix(),
    "uploads live at `<dir>/<program_slug>/<file>` (`.csv`, `.tsv`, `.txt`, `.xlsx`, `.xls`, `.ods`, `.vcf`)",
)
UPLOADS_URL = Variable(
    "LOYALTY_UPLOADS_URL",
    None,
    "uploads in an object store instead: `s3://bucket/prefix` (AWS S3, Supabase Storage, MinIO; `gs://`, `az://` "
    "with the `gcs`, `azure` extras), keys `<prefix>/<program_slug>/<file>`; when set it wins over "
    "`LOYALTY_UPLOADS_DIR` (a local path or `file://` here is a folder)",
)
UPLOADS_ENDPOINT_URL = Variable(
    "AWS_ENDPOINT_URL_S3",
    None,
    "the S3 endpoint of `LOYALTY_UPLOADS_URL` when not AWS's (Supabase: `https://<project>.supabase.co/storage/v1/s3`; "
    "MinIO: its URL); path-style addressing then. `AWS_ENDPOINT_URL` is read when this is unset",
    also=("AWS_ENDPOINT_URL",),
)
UPLOADS_REGION = Variable(
    "AWS_REGION",
    None,
    "the bucket's region (`AWS_DEFAULT_REGION` is read when this is unset)",
    also=("AWS_DEFAULT_REGION",),
)
UPLOADS_ACCESS_KEY_ID = Variable(
    "AWS_ACCESS_KEY_ID",
    None,
    "access key of the bucket; without it and the secret, AWS's default chain applies (IAM role, ~/.aws) (secret)",
)
UPLOADS_SECRET_ACCESS_KEY = Variable("AWS_SECRET_ACCESS_KEY", None, "its secret (secret)")
REPORTS_DIR = Variable(
    "LOYALTY_REPORTS_DIR",
    (DEFAULT_HOME / "reports").as_posix(),
    "per-upload issue reports (`<program>/<file>.csv.issues.csv`)",
)
TIMEZONE = Variable("LOYALTY_TIMEZONE", "UTC", "time zone of the daily partitions and of programs without their own")
BIRTHDAY_START_DATE = Variable("LOYALTY_BIRTHDAY_START_DATE", "2020-01-01", "first day of the birthday partitions")
UPLOADS_START_DATE = Variable(
    "LOYALTY_UPLOADS_START_DATE", "2020-01-01", "first day of the ingestion partitions (days of arrival of uploads)"
)
MAX_REJECT_RATE = Variable("LOYALTY_MAX_REJECT_RATE", "0.2", "threshold of the `reject_rate` WARN check")
NOTIFICATION_SENDER = Variable(
    "LOYALTY_NOTIFICATION_SENDER",
    "log",
    "`log` (JSON lines in `LOYALTY_NOTIFICATION_LOG`) or `webhook` (POST to `LOYALTY_WEBHOOK_URL`)",
)
NOTIFICATION_LOG = Variable(
    "LOYALTY_NOTIFICATION_LOG",
    (DEFAULT_HOME / "notifications.jsonl").as_posix(),
    "file the `log` sender appends birthday messages to",
)
WEBHOOK_URL = Variable("LOYALTY_WEBHOOK_URL", None, "where the `webhook` sender POSTs birthday messages (secret)")
ALERT_WEBHOOK_URL = Variable(
    "LOYALTY_ALERT_WEBHOOK_URL",
    None,
    "where `run_failure_alert_sensor` POSTs a JSON alert per failed run, and `birthday_late_sensor` one per "
    "(program, day, status): failed, late or lost (secret)",
)
CATCHUP_DAYS = Variable(
    "LOYALTY_CATCHUP_DAYS",
    "7",
    "how many days back `birthday_catchup_sensor` runs a program's missed birthday days (within its "
    "`birthday_max_delay_days`)",
)
LATE_ALERT_HOURS = Variable(
    "LOYALTY_LATE_ALERT_HOURS",
    "2",
    "hours after a program's `birthday_send_hour` before `birthday_late_sensor` alerts that its day has no result "
    "(and the longest a late day waits for its queued or running run)",
)
UI_URL = Variable("LOYALTY_UI_URL", "http://localhost:3000", "the Dagster UI the alerts link to")
FROZEN_NOW = Variable("LOYALTY_FROZEN_NOW", None, 'pins "now" (ISO 8601) for replays and tests')
DAGSTER_HOME = Variable(
    "DAGSTER_HOME",
    (DEFAULT_HOME / "dagster_home").as_posix(),
    "the Dagster instance (SQLite storage; see Production for Postgres)",
)
DEBUG = Variable("LOYALTY_DEBUG", None, "when set, the CLI shows the traceback of an unexpected error")

VARIABLES: tuple[Variable, ...] = (
    DATABASE_URL,
    UPLOADS_DIR,
    UPLOADS_URL,
    UPLOADS_ENDPOINT_URL,
    UPLOADS_REGION,
    UPLOADS_ACCESS_KEY_ID,
    UPLOADS_SECRET_ACCESS_KEY,
    REPORTS_DIR,
    TIMEZONE,
    BIRTHDAY_START_DATE,
    UPLOADS_START_DATE,
    MAX_REJECT_RATE,
    NOTIFICATION_SENDER,
    NOTIFICATION_LOG,
    WEBHOOK_URL,
    ALERT_WEBHOOK_URL,
    CATCHUP_DAYS,
    LATE_ALERT_HOURS,
    UI_URL,
    FROZEN_NOW,
    DAGSTER_HOME,
    DEBUG,
)


def _from(variable: Variable, convert: Callable[[str], Any] = str):
    default = None if variable.default is None else convert(variable.default)
    return field(default=default, metadata={"variable": variable, "convert": convert})


@dataclass(frozen=True)
class Settings:
    """The values the pipeline runs with. Tests and benchmarks give fields explicitly; every field
    they leave out has its variable's default."""

    database_url: str = _from(DATABASE_URL)
    uploads_dir: Path = _from(UPLOADS_DIR, Path)
    uploads_url: str | None = _from(UPLOADS_URL)
    uploads_endpoint_url: str | None = _from(UPLOADS_ENDPOINT_URL)
    uploads_region: str | None = _from(UPLOADS_REGION)
    uploads_access_key_id: str | None = _from(UPLOADS_ACCESS_KEY_ID)
    uploads_secret_access_key: str | None = _from(UPLOADS_SECRET_ACCESS_KEY)
    timezone: str = _from(TIMEZONE)
    reports_dir: Path = _from(REPORTS_DIR, Path)
    max_reject_rate: float = _from(MAX_REJECT_RATE, float)
    notification_sender: str = _from(NOTIFICATION_SENDER)
    notification_log: Path = _from(NOTIFICATION_LOG, Path)
    webhook_url: str | None = _from(WEBHOOK_URL)
    alert_webhook_url: str | None = _from(ALERT_WEBHOOK_URL)
    ui_url: str = _from(UI_URL)
    frozen_now: str | None = _from(FROZEN_NOW)
    catchup_days: int = _from(CATCHUP_DAYS, int)
    late_alert_hours: int = _from(LATE_ALERT_HOURS, int)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        values = {}
        for item in fields(cls):
            variable = item.metadata.get("variable")
            if variable is not None and variable.is_set(environ):
                values[item.name] = item.metadata["convert"](variable.read(environ))
        return cls(**values)

    @staticmethod
    def variable(field_name: str) -> Variable:
        """The environment variable behind a field."""
        return next(item.metadata["variable"] for item in fields(Settings) if item.name == field_name)


def dagster_home() -> Path:
    return Path(DAGSTER_HOME.read()).absolute()


def markdown_table() -> str:
    """The README's table of variables."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable in VARIABLES:
        default = f"`{variable.default}`" if variable.default is not None else "unset"
        names = " or ".join(f"`{name}`" for name in (variable.name, *variable.also))
        lines.append(f"| {names} | {default} | {variable.meaning} |")
    return "\n".join(lines)


# polars allocates through its own jemalloc, which by default keeps freed pages for 0.5-1 s: a
# 1M-row upload's read left ~450 MB of freed buffers in the process for the next steps, which then
# stacked their own peaks on top. Returning pages as they are freed keeps the ingest's peak RSS at
# what is alive. jemalloc reads this when polars is first imported, so loyalty_pipeline/__init__.py
# calls this before any module imports polars; and it is appended, because polars writes its own defaults into the
# environment (inherited by every process a polars-importing process starts: a code server's run
# workers, a benchmark's children), and the last value of an option wins.
_FREE_PAGES_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"


def return_polars_memory_at_once() -> None:
    """Not a setting of ours: the allocator option polars reads at import (see above)."""
    conf = os.environ.get("_RJEM_MALLOC_CONF", "")
    if not conf.endswith(_FREE_PAGES_AT_ONCE):
        os.environ["_RJEM_MALLOC_CONF"] = f"{conf},{_FREE_PAGES_AT_ONCE}" if conf else _FREE_PAGES_AT_ONCE


if __name__ == "__main__":
    print(markdown_table())
