"""The one HTTP client of the pipeline: a JSON POST to a webhook (birthday messages, run-failure
alerts) with one policy for every caller - a timeout, and no redirects: a redirect would turn the
POST into a GET, possibly to another host, so a 3xx is reported as a failure instead."""

from __future__ import annotations

import json

import requests

TIMEOUT_SECONDS = 10.0
ERROR_LENGTH = 500
_BODY_SAMPLE = 200
USER_AGENT = "loyalty-pipeline"


class WebhookError(Exception):
    """The POST was not accepted: `status` is the HTTP status, None when no response came back."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason[:ERROR_LENGTH])
        self.status = status


def check_url(url: str) -> str:
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"webhook url must be http(s), got {url!r}")
    return url


def post_json(url: str, payload: dict, *, headers: dict | None = None, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST `payload` as JSON (UTF-8, as RFC 8259 requires); returns the 2xx status or raises WebhookError with a short reason
    (the status and the start of the body, or the network error)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        with requests.post(
            url,
            data=body,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            headers={**(headers or {}), "Content-Type": "application/json", "User-Agent": USER_AGENT},
        ) as response:
            if 200 <= response.status_code < 300:
                return response.status_code
            detail = _start_of_body(response)
    except requests.RequestException as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    reason = f"webhook returned HTTP {response.status_code}"
    raise WebhookError(reason + (f": {detail}" if detail else ""), status=response.status_code)


def _start_of_body(response: requests.Response) -> str:
    # The body often says why; failing to read it must not hide the status code.
    try:
        start = next(response.iter_content(_BODY_SAMPLE), b"")
    except requests.RequestException:
        return ""
    return start.decode("utf-8", errors="replace").strip()
