"""The one source of "now": production reads the system clock, tests and replays pin it."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def now_utc(frozen: str | None = None) -> datetime:
    return parse_instant(frozen) if frozen else datetime.now(timezone.utc)
