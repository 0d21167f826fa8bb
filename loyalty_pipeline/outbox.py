"""Delivering the notifications outbox: at-least-once, with attempts counted and a give-up point.
Rows are created exactly once by the reward transaction; this module only moves their status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

from loyalty_pipeline.db import db_time, is_postgres
from loyalty_pipeline.notify import Message

MAX_ATTEMPTS = 5
BATCH_SIZE = 200
ERROR_LENGTH = 500


class Sender(Protocol):
    def send(self, message: Message) -> None: ...


@dataclass
class DeliveryResult:
    sent: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    last_error: str | None = None


_PENDING = """
    SELECT n.id, pr.slug, n.pass_id, n.user_id, u.email, n.kind, n.message, n.attempts
    FROM notifications n
    JOIN birthday_logs b ON b.id = n.birthday_log_id
    JOIN programs pr ON pr.id = n.program_id
    JOIN users u ON u.id = n.user_id
    WHERE pr.slug = :slug AND n.status = 'pending' AND b.reward_date BETWEEN :first AND :last
"""


def deliver_pending(
    engine: Engine,
    *,
    program_slug: str,
    dates: list[date],
    sender: Sender,
    now: datetime,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryResult:
    result = DeliveryResult()
    if not dates:
        return result
    after = None  # keyset paging, so rows that failed in this run are not retried in a loop
    while True:
        with engine.begin() as conn:
            query = _PENDING + (" AND n.id > :after" if after is not None else "") + " ORDER BY n.id LIMIT :limit"
            # SKIP LOCKED lets a concurrent delivery run take other rows instead of re-sending these.
            query += " FOR UPDATE OF n SKIP LOCKED" if is_postgres(conn) else ""
            params = {
                "slug": program_slug,
                "first": min(dates),
                "last": max(dates),
                "limit": BATCH_SIZE,
                "after": after,
            }
            rows = conn.execute(text(query), params).all()
            if not rows:
                return result
            after = rows[-1].id
            sent, failed = [], []
            for row in rows:
                message = Message(
                    notification_id=str(row.id),
                    program_slug=row.slug,
                    pass_id=str(row.pass_id),
                    user_id=str(row.user_id),
                    email=row.email,
                    kind=row.kind,
                    text=row.message,
                )
                try:
                    sender.send(message)
                except Exception as exc:  # any sender failure is recorded on the row and retried later
                    error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
                    failed.append(
                        {
                            "id": row.id,
                            "error": error,
                            "status": "failed" if row.attempts + 1 >= max_attempts else "pending",
                        }
                    )
                    result.last_error = error
                else:
                    sent.append({"id": row.id})
            stamp = db_time(conn, now)
            if sent:
                conn.execute(
                    text(
                        "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = :now, "
                        "last_error = NULL WHERE id = :id"
                    ),
                    [{**row, "now": stamp} for row in sent],
                )
            if failed:
                conn.execute(
                    text(
                        "UPDATE notifications SET status = :status, attempts = attempts + 1, last_error = :error "
                        "WHERE id = :id"
                    ),
                    failed,
                )
            result.sent += len(sent)
            result.failed_attempts += len(failed)
            result.given_up += sum(1 for row in failed if row["status"] == "failed")
