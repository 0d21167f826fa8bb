"""Senders: where a queued notification goes. Each raises DeliveryError on failure so the outbox
can record the reason and retry later."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from loyalty_pipeline import config, webhooks


@dataclass(frozen=True)
class Message:
    notification_id: str
    program_slug: str
    pass_id: str
    user_id: str
    email: str | None
    kind: str
    text: str


class DeliveryError(Exception):
    pass


def _json(message: Message) -> str:
    return json.dumps(asdict(message), ensure_ascii=False)


class LogSender:
    """Appends one JSON line per message to a file (default LOYALTY_NOTIFICATION_LOG's); creates parent dirs."""

    def __init__(self, path=config.NOTIFICATION_LOG.default):
        self.path = Path(path)

    def send(self, message: Message) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write per line so concurrent appenders do not interleave inside a line.
        with self.path.open("a", encoding="utf-8") as out:
            out.write(_json(message) + "\n")


class WebhookSender:
    """HTTP POST of the message as JSON to `url` (loyalty_pipeline.webhooks: timeout, no redirects) with
    header `Idempotency-Key: <notification_id>`. Non-2xx or network error -> DeliveryError with a short
    reason (status code and start of the body / exception class and text, at most 500 characters)."""

    def __init__(self, url: str, timeout_seconds: float = webhooks.TIMEOUT_SECONDS, headers: dict | None = None):
        self.url = webhooks.check_url(url)
        self.timeout_seconds = timeout_seconds
        self.headers = dict(headers or {})

    def send(self, message: Message) -> None:
        # The Idempotency-Key lets the receiver drop the duplicates that at-least-once delivery produces.
        headers = {**self.headers, "Idempotency-Key": message.notification_id}
        try:
            webhooks.post_json(self.url, asdict(message), headers=headers, timeout=self.timeout_seconds)
        except webhooks.WebhookError as exc:
            raise DeliveryError(str(exc)) from exc
