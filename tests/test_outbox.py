"""Delivering the notifications outbox: at-least-once, attempts counted, given up after 5, each
message sent once it succeeded; the webhook against a real local HTTP server."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text

from loyalty_pipeline.notify import DeliveryError, LogSender, WebhookSender
from loyalty_pipeline.outbox import MAX_ATTEMPTS, deliver_pending
from loyalty_pipeline.rewards import award_birthdays
from tests.factories import make_program, member

DAY = date(2026, 11, 26)


def rows(engine):
    with engine.connect() as conn:
        return {
            str(r.id): r
            for r in conn.execute(text("SELECT id, status, attempts, last_error, sent_at, message FROM notifications"))
        }


def deliver(engine, sender, now, dates=(DAY,), slug="joes-pizza"):
    return deliver_pending(engine, program_slug=slug, dates=list(dates), sender=sender, now=now)


@pytest.fixture
def pending(engine, program, now):
    """Three pending birthday notifications for 2026-11-26|joes-pizza."""
    for name in ("Ada", "Grace", "Linus"):
        member(engine, program, (11, 26), first_name=name)
    assert award_birthdays(engine, program_slug="joes-pizza", dates=[DAY], now=now).rewarded_now == 3
    return rows(engine)


@pytest.fixture
def flaky_receiver(http_receiver):
    """A webhook answering 500 to the first POST of each Idempotency-Key and 200 afterwards;
    `attempts` counts POSTs per key, `delivered` lists the accepted (key, body)."""
    attempts, delivered = Counter(), []

    def answer(request):
        key = request.headers["Idempotency-Key"]
        attempts[key] += 1
        if attempts[key] == 1:
            return 500, b"temporarily unavailable"
        delivered.append((key, request.json()))
        return 200

    receiver = http_receiver(answer=answer)
    receiver.attempts, receiver.delivered = attempts, delivered
    return receiver


def test_webhook_that_fails_once_then_succeeds_delivers_each_message_once(engine, pending, now, flaky_receiver):
    sender = WebhookSender(flaky_receiver.url, timeout_seconds=5)

    first = deliver(engine, sender, now)
    assert (first.sent, first.failed_attempts, first.given_up) == (0, 3, 0)
    after_first = rows(engine)
    assert {r.status for r in after_first.values()} == {"pending"}
    assert {r.attempts for r in after_first.values()} == {1}
    assert all("HTTP 500" in r.last_error and "temporarily unavailable" in r.last_error for r in after_first.values())

    second = deliver(engine, sender, now)
    assert (second.sent, second.failed_attempts) == (3, 0)
    after_second = rows(engine)
    assert {r.status for r in after_second.values()} == {"sent"}
    assert {r.attempts for r in after_second.values()} == {2}
    assert all(r.last_error is None and r.sent_at is not None for r in after_second.values())

    third = deliver(engine, sender, now)
    assert third.sent == 0
    assert flaky_receiver.attempts == Counter({notification_id: 2 for notification_id in pending})
    assert sorted(key for key, _ in flaky_receiver.delivered) == sorted(pending)
    assert {body["notification_id"]: body["text"] for _, body in flaky_receiver.delivered} == {
        notification_id: row.message for notification_id, row in pending.items()
    }


class AlwaysDown:
    def __init__(self):
        self.calls = 0

    def send(self, message):
        self.calls += 1
        raise DeliveryError("webhook returned HTTP 503")


def test_row_is_failed_after_five_attempts_and_not_retried(engine, program, now):
    member(engine, program, (11, 26))
    award_birthdays(engine, program_slug="joes-pizza", dates=[DAY], now=now)
    sender = AlwaysDown()

    for attempt in range(1, MAX_ATTEMPTS):
        result = deliver(engine, sender, now)
        [row] = rows(engine).values()
        assert (row.status, row.attempts, result.given_up) == ("pending", attempt, 0)

    fifth = deliver(engine, sender, now)
    [row] = rows(engine).values()
    assert MAX_ATTEMPTS == 5
    assert (row.status, row.attempts, fifth.given_up) == ("failed", 5, 1)
    assert row.last_error == "DeliveryError: webhook returned HTTP 503"

    assert deliver(engine, sender, now).failed_attempts == 0
    assert sender.calls == 5


def test_log_sender_writes_one_json_line_per_message(engine, pending, now, tmp_path):
    path = tmp_path / "out" / "notifications.jsonl"

    assert deliver(engine, LogSender(path), now).sent == 3
    assert deliver(engine, LogSender(path), now).sent == 0  # a rerun appends nothing

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3
    assert {line["notification_id"]: line["text"] for line in lines} == {
        notification_id: row.message for notification_id, row in pending.items()
    }
    assert {line["program_slug"] for line in lines} == {"joes-pizza"}
    assert {line["kind"] for line in lines} == {"birthday"}


def test_delivery_only_takes_the_partition_dates_and_program(engine, program, now):
    other = make_program(engine, "city-events", name="City Events")
    today = member(engine, program, (11, 26))
    member(engine, program, (11, 25))
    member(engine, other, (11, 26))
    for slug in ("joes-pizza", "city-events"):
        award_birthdays(engine, program_slug=slug, dates=[date(2026, 11, 25), DAY], now=now)

    sent = []

    class Collect:
        def send(self, message):
            sent.append(message)

    result = deliver(engine, Collect(), now)

    assert result.sent == 1
    assert [m.pass_id for m in sent] == [today]
    assert Counter(r.status for r in rows(engine).values()) == Counter({"pending": 2, "sent": 1})


def test_one_failing_message_does_not_hold_back_the_others(engine, pending, now):
    refused = sorted(pending)[0]

    class RefusesOne:
        def send(self, message):
            if message.notification_id == refused:
                raise DeliveryError("mailbox full")

    result = deliver(engine, RefusesOne(), now)
    assert (result.sent, result.failed_attempts) == (2, 1)
    statuses = {k: r.status for k, r in rows(engine).items()}
    assert statuses.pop(refused) == "pending"
    assert set(statuses.values()) == {"sent"}
