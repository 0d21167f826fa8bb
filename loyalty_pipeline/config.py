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

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("LOYALTY_DATABASE_URL") or default_database_url(),
            uploads_dir=Path(os.environ.get("LOYALTY_UPLOADS_DIR") or DEFAULT_HOME / "uploads"),
            timezone=os.environ.get("LOYALTY_TIMEZONE") or "UTC",
        )


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME / "dagster_home").absolute()
