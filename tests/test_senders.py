import json
import time
from dataclasses import asdict

import pytest

from loyalty_pipeline.notify import DeliveryError, LogSender, Message, WebhookSender


def message(n: int = 1, text: str = "Joyeux anniversaire, Zoë 🎂 — عيد ميلاد سعيد") -> Message:
    return Message(
        notification_id=f"n-{n}",
        program_slug="joes-pizza",
        pass_id=f"p-{n}",
        user_id=f"u-{n}",
        email=f"user{n}@example.com",
        kind="birthday",
        text=text,
    )


def test_log_sender_appends_json_lines_with_unicode(tmp_path):
    path = tmp_path / "deep" / "dir" / "notifications.jsonl"
    LogSender(path).send(message(1))
    LogSender(path).send(message(2, text="second"))

    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    assert [json.loads(line) for line in lines] == [asdict(message(1)), asdict(message(2, text="second"))]
    assert "Zoë 🎂" in raw and "عيد" in raw  # stored as text, not \u escapes


def test_webhook_posts_json_with_idempotency_key(http_receiver):
    receiver = http_receiver(200)
    WebhookSender(receiver.url, headers={"Authorization": "Bearer t"}).send(message(7))

    [request] = receiver.requests
    headers, body = request.headers, request.body
    assert json.loads(body.decode("utf-8")) == asdict(message(7))
    assert headers["Idempotency-Key"] == "n-7"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Authorization"] == "Bearer t"


def test_webhook_server_error_then_success(http_receiver):
    receiver = http_receiver((500, b"boom"), 200)
    sender = WebhookSender(receiver.url)

    with pytest.raises(DeliveryError, match="500") as failure:
        sender.send(message(1))
    assert "boom" in str(failure.value)
    sender.send(message(1))
    assert len(receiver.requests) == 2


def test_webhook_timeout_is_a_delivery_error(http_receiver):
    receiver = http_receiver("hang")
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out"):
        WebhookSender(receiver.url, timeout_seconds=0.3).send(message(1))
    assert time.monotonic() - started < 5


def test_webhook_does_not_follow_redirects(http_receiver):
    other = http_receiver(200)
    redirecting = http_receiver((302, b"", {"Location": other.url}))
    with pytest.raises(DeliveryError, match="302"):
        WebhookSender(redirecting.url).send(message(1))
    assert other.requests == []


def test_webhook_unreachable_is_a_delivery_error(http_receiver):
    receiver = http_receiver(200)
    receiver.stop()
    with pytest.raises(DeliveryError) as failure:
        WebhookSender(receiver.url, timeout_seconds=2).send(message(1))
    assert len(str(failure.value)) <= 500
