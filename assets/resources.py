"""Resources the assets, sensors and schedules share. Each is built once by
loyalty_pipeline.definitions.build_resources from the settings in loyalty_pipeline.config (whose
variables also give the defaults and descriptions here) and only hands out domain objects."""

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from dagster import Backoff, ConfigurableResource, Failure, RetryPolicy
from pydantic import Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from loyalty_pipeline import config, webhooks
from loyalty_pipeline.alerts import ATTEMPTS, AlertSender
from loyalty_pipeline.clock import now_utc
from loyalty_pipeline.db import is_transient, make_engine
from loyalty_pipeline.errors import one_line
from loyalty_pipeline.notify import LogSender, WebhookSender
from loyalty_pipeline.upload_store import UploadStore, configured_store


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # One pool per process and URL: resources are re-instantiated per run and per sensor tick.
    return make_engine(url)


class LoyaltyDatabase(ConfigurableResource):
    """The application database (PostgreSQL, or the embedded SQLite file)."""

    url: str = Field(description=config.DATABASE_URL.describe())

    def engine(self) -> Engine:
        return _engine(self.url)


# Lost connections and lock timeouts are worth a retry; bad files and bad config are not (Failure).
DATABASE_RETRY = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL)


@contextmanager
def only_transient_errors_retry(what: str):
    """Let lost connections, deadlocks and lock timeouts reach the retry policy; turn a statement
    that fails the same way every time into one clear, final failure."""
    try:
        yield
    except DBAPIError as error:
        if is_transient(error):
            raise
        raise Failure(description=f"{what}: {one_line(error.orig)}", allow_retries=False) from error


class LoyaltySettings(ConfigurableResource):
    uploads_dir: str = Field(default=config.UPLOADS_DIR.default, description=config.UPLOADS_DIR.describe())
    uploads_url: str | None = Field(default=None, description=config.UPLOADS_URL.describe())
    uploads_endpoint_url: str | None = Field(default=None, description=config.UPLOADS_ENDPOINT_URL.describe())
    uploads_region: str | None = Field(default=None, description=config.UPLOADS_REGION.describe())
    # From the environment these two are EnvVars (definitions.build_resources): never shown in the UI.
    uploads_access_key_id: str | None = Field(default=None, description=config.UPLOADS_ACCESS_KEY_ID.describe())
    uploads_secret_access_key: str | None = Field(default=None, description=config.UPLOADS_SECRET_ACCESS_KEY.describe())
    reports_dir: str = Field(default=config.REPORTS_DIR.default, description=config.REPORTS_DIR.describe())
    timezone: str = Field(default=config.TIMEZONE.default, description=config.TIMEZONE.describe())
    max_reject_rate: float = Field(
        default=float(config.MAX_REJECT_RATE.default), description=config.MAX_REJECT_RATE.describe()
    )
    catchup_days: int = Field(default=int(config.CATCHUP_DAYS.default), description=config.CATCHUP_DAYS.describe())
    late_alert_hours: int = Field(
        default=int(config.LATE_ALERT_HOURS.default), description=config.LATE_ALERT_HOURS.describe()
    )

    def store(self) -> UploadStore:
        """Where the uploaded files are: the bucket of uploads_url when set, else the folder."""
        return configured_store(self)

    @property
    def reports_path(self) -> Path:
        return Path(self.reports_dir)


class Clock(ConfigurableResource):
    """The one source of "now"; `frozen_now` (ISO 8601) pins it for tests and replays."""

    frozen_now: str | None = Field(default=None, description=config.FROZEN_NOW.describe())

    def now(self):
        return now_utc(self.frozen_now)


class NotificationSender(ConfigurableResource):
    """Where birthday messages go: `log` appends JSON lines to a file, `webhook` POSTs them."""

    kind: str = Field(default=config.NOTIFICATION_SENDER.default, description=config.NOTIFICATION_SENDER.describe())
    log_path: str = Field(default=config.NOTIFICATION_LOG.default, description=config.NOTIFICATION_LOG.describe())
    webhook_url: str | None = Field(default=None, description=config.WEBHOOK_URL.describe())
    timeout_seconds: float = webhooks.TIMEOUT_SECONDS

    def sender(self):
        if self.kind == "webhook":
            if not self.webhook_url:
                raise ValueError("NotificationSender kind=webhook needs webhook_url (LOYALTY_WEBHOOK_URL)")
            return WebhookSender(self.webhook_url, timeout_seconds=self.timeout_seconds)
        if self.kind == "log":
            return LogSender(self.log_path)
        raise ValueError(f"unknown notification sender kind {self.kind!r}: use log or webhook")


class AlertWebhook(ConfigurableResource):
    """Where run-failure and late-birthday alerts go; without a url alerting is off (logged only)."""

    url: str | None = Field(default=None, description=config.ALERT_WEBHOOK_URL.describe())
    ui_url: str = Field(default=config.UI_URL.default, description=config.UI_URL.describe())
    timeout_seconds: float = webhooks.TIMEOUT_SECONDS
    attempts: int = ATTEMPTS

    def sender(self) -> AlertSender | None:
        return AlertSender(self.url, timeout_seconds=self.timeout_seconds, attempts=self.attempts) if self.url else None
