"""Senders: where a queued notification goes. Each raises DeliveryError on failure so the outbox
can record the reason and retry later."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from loyalty_pipeline.config import DEFAULT_HOME

ERROR_LENGTH = 500


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
    """Appends one JSON line per message to a file (default .loyalty/notifications.jsonl); creates parent dirs."""

    def __init__(self, path=DEFAULT_HOME / "notifications.jsonl"):
        self.path = Path(path)

    def send(self, message: Message) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write per line so concurrent appenders do not interleave inside a line.
        with self.path.open("a", encoding="utf-8") as out:
            out.write(_json(message) + "\n")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET, possibly to another host; a 3xx is reported instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookSender:
    """HTTP POST of the message as JSON to `url` with a timeout; header `Idempotency-Key: <notification_id>`.
    Non-2xx or network error → DeliveryError with a short reason (status code / exception class+text, truncated to 500 chars)."""

    def __init__(self, url: str, timeout_seconds: float = 10.0, headers: dict | None = None):
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {url!r}")
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.headers = dict(headers or {})
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, message: Message) -> None:
        request = urllib.request.Request(
            self.url,
            data=_json(message).encode("utf-8"),
            method="POST",
            headers={
                **self.headers,
                "Content-Type": "application/json; charset=utf-8",
                # Lets the receiver drop the duplicates that at-least-once delivery produces.
                "Idempotency-Key": message.notification_id,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout_seconds) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            reason = f"webhook returned HTTP {exc.code}"
            body = _start_of_body(exc)
            raise DeliveryError((reason + (f": {body}" if body else ""))[:ERROR_LENGTH]) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]) from exc


def _start_of_body(error: urllib.error.HTTPError) -> str:
    # The body often says why; failing to read it must not hide the status code.
    try:
        with error:
            return error.read(200).decode("utf-8", errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
