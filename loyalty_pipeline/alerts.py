"""Delivering an alert: the JSON alert POSTed to the alert webhook, with a few quick retries on
network errors, 429 and 5xx (a 4xx or 3xx is the receiver's answer: retrying will not change it).
The alerts themselves are built in schedules/: a failed run's in schedules/alerts.py, a late
birthday day's (same JSON shape, event `birthday_late`) in schedules/late_alerts.py."""

from __future__ import annotations

import time

from loyalty_pipeline import webhooks

ATTEMPTS = 3


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept the alert after every attempt (shown on the sensor's tick)."""


class AlertSender:
    def __init__(self, url: str, *, timeout_seconds: float = webhooks.TIMEOUT_SECONDS, attempts: int = ATTEMPTS):
        self.url = webhooks.check_url(url)
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts

    def send(self, alert: dict, idempotency_key: str | None = None) -> int:
        """POST `alert`; returns the HTTP status or raises AlertDeliveryError with the last reason.
        `idempotency_key` (default `run-failure:<run_id>`) names the alert for a receiver that dedupes."""
        idempotency_key = idempotency_key or f"run-failure:{alert.get('run_id')}"
        headers = {"Idempotency-Key": idempotency_key}
        last_error = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                return webhooks.post_json(self.url, alert, headers=headers, timeout=self.timeout_seconds)
            except webhooks.WebhookError as exc:
                last_error = str(exc)
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    break
            if attempt < self.attempts:
                time.sleep(0.5 * 2 ** (attempt - 1))
        raise AlertDeliveryError(f"alert {idempotency_key} not delivered to the webhook: {last_error}")
