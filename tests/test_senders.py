import json
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loyalty_pipeline.notify import DeliveryError, LogSender, Message, WebhookSender


def message(n: int = 1, text: str = "Joyeux anniversaire, Zoë 🎂 — عيد ميلاد سعيد") -> Message:
    return Message(
        notification_id=f"n-{n}", program_slug="joes-pizza", pass_id=f"p-{n}", user_id=f"u-{n}",
        email=f"user{n}@example.com", kind="birthday", text=text,
    )


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((dict(self.headers), body))
        plan = self.server.plan
        action = plan.pop(0) if len(plan) > 1 else plan[0]
        if action == "hang":
            self.server.release.wait(10)
            action = 200
        if isinstance(action, tuple):  # (status, location) for redirects
            self.send_response(action[0])
            self.send_header("Location", action[1])
        else:
            self.send_response(action)
        payload = b"boom" if action == 500 else b"ok"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(*plan) starts a server answering each POST with the next plan entry (the last repeats):
    a status code, ("hang") to stall until teardown, or (status, location)."""
    started = []

    def start(*plan):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.plan, server.received, server.release = list(plan), [], threading.Event()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/hook", server

    yield start
    for server, thread in started:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_log_sender_appends_json_lines_with_unicode(tmp_path):
    path = tmp_path / "deep" / "dir" / "notifications.jsonl"
    LogSender(path).send(message(1))
    LogSender(path).send(message(2, text="second"))

    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    assert [json.loads(line) for line in lines] == [asdict(message(1)), asdict(message(2, text="second"))]
    assert "Zoë 🎂" in raw and "عيد" in raw  # stored as text, not \u escapes


def test_webhook_posts_json_with_idempotency_key(serve):
    url, server = serve(200)
    WebhookSender(url, headers={"Authorization": "Bearer t"}).send(message(7))

    [(headers, body)] = server.received
    assert json.loads(body.decode("utf-8")) == asdict(message(7))
    assert headers["Idempotency-Key"] == "n-7"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Authorization"] == "Bearer t"


def test_webhook_server_error_then_success(serve):
    url, server = serve(500, 200)
    sender = WebhookSender(url)

    with pytest.raises(DeliveryError, match="500") as failure:
        sender.send(message(1))
    assert "boom" in str(failure.value)
    sender.send(message(1))
    assert len(server.received) == 2


def test_webhook_timeout_is_a_delivery_error(serve):
    url, _ = serve("hang")
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out"):
        WebhookSender(url, timeout_seconds=0.3).send(message(1))
    assert time.monotonic() - started < 5


def test_webhook_does_not_follow_redirects(serve):
    elsewhere, other = serve(200)
    url, _ = serve((302, elsewhere))
    with pytest.raises(DeliveryError, match="302"):
        WebhookSender(url).send(message(1))
    assert other.received == []


def test_webhook_unreachable_is_a_delivery_error(serve):
    url, server = serve(200)
    server.shutdown()
    server.server_close()
    with pytest.raises(DeliveryError) as failure:
        WebhookSender(url, timeout_seconds=2).send(message(1))
    assert len(str(failure.value)) <= 500
