"""Settings read from the environment, with embedded defaults that work on a fresh laptop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path(".loyalty")


def default_database_url() -> str:
    return f"sqlite:///{(DEFAULT_HOME / 'loyalty.db').as_posix()}"


@dataclass(frozen=True)
class Settings:
    database_url: str
    uploads_dir: Path
    timezone: str
    reports_dir: Path = DEFAULT_HOME / "reports"
    max_reject_rate: float = 0.2
    notification_sender: str = "log"
    notification_log: Path = DEFAULT_HOME / "notifications.jsonl"
    webhook_url: str | None = None
    storage_dir: Path | None = None  # Dagster's intermediate files; None = DAGSTER_HOME/storage
    catchup_days: int = 7
    late_alert_hours: int = 2

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("LOYALTY_DATABASE_URL") or default_database_url(),
            uploads_dir=Path(os.environ.get("LOYALTY_UPLOADS_DIR") or DEFAULT_HOME / "uploads"),
            timezone=os.environ.get("LOYALTY_TIMEZONE") or "UTC",
            reports_dir=Path(os.environ.get("LOYALTY_REPORTS_DIR") or DEFAULT_HOME / "reports"),
            max_reject_rate=float(os.environ.get("LOYALTY_MAX_REJECT_RATE") or 0.2),
            notification_sender=os.environ.get("LOYALTY_NOTIFICATION_SENDER") or "log",
            notification_log=Path(os.environ.get("LOYALTY_NOTIFICATION_LOG") or DEFAULT_HOME / "notifications.jsonl"),
            webhook_url=os.environ.get("LOYALTY_WEBHOOK_URL") or None,
            catchup_days=int(os.environ.get("LOYALTY_CATCHUP_DAYS") or 7),
            late_alert_hours=int(os.environ.get("LOYALTY_LATE_ALERT_HOURS") or 2),
        )


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME / "dagster_home").absolute()
