"""Concurrent reward transactions on PostgreSQL (SQLite serialises writers with BEGIN IMMEDIATE):
two runs of one partition, and two partitions of one program where the 365-day rule reads the
other's rows. Each thread has its own engine; the first transaction holds still inside, after its
log insert, until the other one is blocked on a lock, so the two really overlap."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
from sqlalchemy import text

from loyalty_pipeline import rewards
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.rewards import award_birthdays
from tests.factories import balance, count, member, rewarded_passes, set_birthday, utc

WAIT_SECONDS = 10


@pytest.fixture
def pg_url(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrency is proven on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE")
    return db_url


def blocked_backends(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def wait_for(condition, timeout=WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


class Runner:
    """award_birthdays in a thread with its own engine; keeps the result or the exception."""

    def __init__(self, url, before=None, **kwargs):
        self.url, self.before, self.kwargs = url, before, kwargs
        self.result = self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        engine = make_engine(self.url)
        try:
            if self.before:
                self.before()
            self.result = award_birthdays(engine, **self.kwargs)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            engine.dispose()
            self.done.set()

    def start(self):
        self.thread.start()
        return self

    def join(self):
        self.thread.join(WAIT_SECONDS * 2)
        assert not self.thread.is_alive(), "reward transaction did not finish"
        if self.error:
            raise self.error
        return self.result


def hold_first_transaction(monkeypatch, inside):
    """Run inside(conn) within the first transaction to reach the balance update (after its log insert)."""
    original, entered = rewards._credit_balances, threading.Lock()

    def credit(conn, batch_id):
        if entered.acquire(blocking=False):
            inside(conn)
        original(conn, batch_id)

    monkeypatch.setattr(rewards, "_credit_balances", credit)


def test_two_concurrent_runs_of_one_partition_award_once(pg_url, engine, program, now, monkeypatch):
    passes = [member(engine, program, (11, 26)) for _ in range(3)]
    start_together = threading.Barrier(2, timeout=WAIT_SECONDS)
    observed = {}

    def inside(conn):
        observed["other_blocked"] = wait_for(lambda: blocked_backends(engine) >= 1)

    hold_first_transaction(monkeypatch, inside)
    kwargs = dict(program_slug="joes-pizza", dates=[date(2026, 11, 26)], now=now)
    runners = [Runner(pg_url, before=start_together.wait, **kwargs).start() for _ in range(2)]
    results = [runner.join() for runner in runners]

    assert observed == {"other_blocked": True}  # the second transaction waited for the first
    assert sorted(r.rewarded_now for r in results) == [0, 3]
    assert len(rewarded_passes(engine)) == 3
    assert [balance(engine, p) for p in passes] == [50, 50, 50]
    assert count(engine, "SELECT count(*) FROM notifications") == 3


def _new_year_race(pg_url, engine, program, monkeypatch):
    """Partition 2025-12-31 has logged the pass (not committed yet) when the birthday moves to 1 January
    and partition 2026-01-01 starts: only the 365-day rule, reading the other's row, stops a second reward."""
    pass_id = member(engine, program, (12, 31))
    both_inside = threading.Barrier(2, timeout=WAIT_SECONDS)
    observed = {}

    def inside(conn):
        set_birthday(engine, pass_id, (1, 1), set_at=utc(2025, 12, 31, 20))  # committed by another connection
        both_inside.wait()
        observed["other_blocked"] = wait_for(lambda: blocked_backends(engine) >= 1 or new_year.done.is_set())

    hold_first_transaction(monkeypatch, inside)
    now = utc(2026, 1, 1, 12)
    new_year_eve = Runner(pg_url, program_slug="joes-pizza", dates=[date(2025, 12, 31)], now=now)
    new_year = Runner(pg_url, before=both_inside.wait, program_slug="joes-pizza", dates=[date(2026, 1, 1)], now=now)
    new_year.start()
    new_year_eve.start()
    return pass_id, new_year_eve.join(), new_year.join(), observed


def test_two_partitions_of_one_program_at_once_award_once_across_new_year(pg_url, engine, program, monkeypatch):
    pass_id, eve, new_year, observed = _new_year_race(pg_url, engine, program, monkeypatch)

    assert observed == {"other_blocked": True}
    assert (eve.rewarded_now, new_year.rewarded_now) == (1, 0)
    assert new_year.already_rewarded == 1
    assert rewarded_passes(engine) == [(pass_id, "2025-12-31")]
    assert balance(engine, pass_id) == 50


def test_the_race_above_pays_twice_without_the_program_lock(pg_url, engine, program, monkeypatch):
    """Control: the scenario really depends on the advisory lock (the unique (pass, year) key cannot help)."""
    monkeypatch.setattr(rewards, "_lock_program", lambda conn, slug: None)
    pass_id, eve, new_year, _ = _new_year_race(pg_url, engine, program, monkeypatch)

    assert (eve.rewarded_now, new_year.rewarded_now) == (1, 1)
    assert rewarded_passes(engine) == [(pass_id, "2025-12-31"), (pass_id, "2026-01-01")]
