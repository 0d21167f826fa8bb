"""Resources the assets, sensors and schedules share. Each is configured from the environment
(see loyalty_pipeline.definitions) and only hands out domain objects."""


from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from dagster import ConfigurableResource, Failure
from pydantic import Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from loyalty_pipeline.clock import now_utc
from loyalty_pipeline.db import is_transient, make_engine
from loyalty_pipeline.notify import LogSender, WebhookSender


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # One pool per process and URL: resources are re-instantiated per run and per sensor tick.
    return make_engine(url)


class LoyaltyDatabase(ConfigurableResource):
    """The application database (PostgreSQL, or the embedded SQLite file)."""

    url: str = Field(description="SQLAlchemy URL (LOYALTY_DATABASE_URL)")

    def engine(self) -> Engine:
        return _engine(self.url)


@contextmanager
def only_transient_errors_retry(what: str):
    """Let lost connections, deadlocks and lock timeouts reach the retry policy; turn a statement
    that fails the same way every time into one clear, final failure."""
    try:
        yield
    except DBAPIError as error:
        if is_transient(error):
            raise
        detail = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
        raise Failure(description=f"{what}: {type(error.orig).__name__}: {detail}", allow_retries=False) from error


class LoyaltySettings(ConfigurableResource):
    uploads_dir: str = Field(description="Root of <program_slug>/<file>.csv uploads (LOYALTY_UPLOADS_DIR)")
    reports_dir: str = Field(default=".loyalty/reports", description="Issue reports per upload (LOYALTY_REPORTS_DIR)")
    timezone: str = Field(default="UTC", description="Default time zone for programs without one (LOYALTY_TIMEZONE)")
    max_reject_rate: float = Field(default=0.2, description="Reject rate above which the WARN check fails")
    catchup_days: int = Field(default=7, description="How far back missed birthday days are caught up (LOYALTY_CATCHUP_DAYS)")
    late_alert_hours: int = Field(
        default=2, description="Hours after birthday_send_hour before a day not rewarded alerts (LOYALTY_LATE_ALERT_HOURS)")

    @property
    def uploads_path(self) -> Path:
        return Path(self.uploads_dir)

    @property
    def reports_path(self) -> Path:
        return Path(self.reports_dir)


class Clock(ConfigurableResource):
    """The one source of "now"; `frozen_now` (ISO 8601) pins it for tests and replays."""

    frozen_now: str | None = None

    def now(self):
        return now_utc(self.frozen_now)


class NotificationSender(ConfigurableResource):
    """Where birthday messages go: `log` appends JSON lines to a file, `webhook` POSTs them."""

    kind: str = Field(default="log", description="log | webhook")
    log_path: str = Field(default=".loyalty/notifications.jsonl")
    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    def sender(self):
        if self.kind == "webhook":
            if not self.webhook_url:
                raise ValueError("NotificationSender kind=webhook needs webhook_url (LOYALTY_WEBHOOK_URL)")
            return WebhookSender(self.webhook_url, timeout_seconds=self.timeout_seconds)
        if self.kind == "log":
            return LogSender(self.log_path)
        raise ValueError(f"unknown notification sender kind {self.kind!r}: use log or webhook")
