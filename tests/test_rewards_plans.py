"""On PostgreSQL award_birthdays reaches the candidates of a long date range from the program's
passes and those of a few days from the birthday index (SQLite always uses the birthday index, so
these tests run on PostgreSQL only). Both query shapes are generated from one definition of the
reward rule; they must find exactly the same candidates and reward the same passes, whatever mix
of rules applies."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import event, text

from loyalty_pipeline import rewards
from loyalty_pipeline.programs import get_program
from loyalty_pipeline.rewards import CANDIDATES_BY_BIRTHDAY, CANDIDATES_BY_MEMBER, award_birthdays, stage_reward_days
from tests.factories import count, make_program, member, rewarded_passes, utc

START = date(2027, 2, 10)
DAYS = [START + timedelta(days=i) for i in range(40)]  # across 28 February in a non-leap year
NOW = utc(2027, 3, 22, 12)


def _population(engine, seed: int):
    rng = random.Random(seed)
    program = make_program(engine, birthday_min_notice_days=rng.choice([0, 3]), birthday_max_delay_days=60)
    other = make_program(engine, "other-place", name="Other")
    for _ in range(120):
        day = START + timedelta(days=rng.randrange(-5, 45))
        birthday = (2, 29) if rng.random() < 0.05 else (day.month, day.day)
        member(
            engine,
            rng.choice([program, program, other]),
            birthday if rng.random() < 0.9 else None,
            year=rng.choice([1990, None]) if birthday != (2, 29) else 2000,
            status=rng.choice(["active"] * 9 + ["inactive"]),
            pass_created_at=utc(2027, 2, rng.randrange(1, 28)) if rng.random() < 0.2 else utc(2020, 1, 1),
            birth_date_set_at=utc(2027, 2, rng.randrange(1, 28)) if rng.random() < 0.2 else utc(2020, 1, 1),
        )
    return program


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_query_shapes_find_the_same_candidates(postgres_engine, seed):
    engine = postgres_engine
    program = _population(engine, seed)
    with engine.begin() as conn:
        program = get_program(conn, program.slug)
        stage_reward_days(conn, program, DAYS, "UTC")
        found = {
            name: sorted(tuple(row) for row in conn.execute(text(query), {"program_id": program.id}))
            for name, query in (("birthday index", CANDIDATES_BY_BIRTHDAY), ("program's passes", CANDIDATES_BY_MEMBER))
        }
    assert found["birthday index"] == found["program's passes"]
    passes = count(engine, "SELECT count(*) FROM passes_master")
    assert 0 < len(found["birthday index"]) < passes, "the rules must keep some passes out and let some in"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_ways_in_reward_the_same_passes(postgres_engine, seed, monkeypatch):
    engine = postgres_engine
    program = _population(engine, seed)
    # A few passes were rewarded last year close to the range: the 365-day rule must see them.
    award_birthdays(
        engine, program_slug=program.slug, dates=[d - timedelta(days=360) for d in DAYS[:10]], now=utc(2026, 3, 1, 12)
    )
    before = set(rewarded_passes(engine))

    outcomes = {}
    for name, limit in (("birthday index", 10_000), ("program's passes", 0)):
        monkeypatch.setattr(rewards, "BIRTHDAY_FIRST_MAX_DAYS", limit)
        with engine.begin() as conn:  # start from the same state for each way in
            conn.exec_driver_sql("DELETE FROM notifications WHERE created_at >= '2027-01-01'")
            conn.exec_driver_sql("DELETE FROM birthday_logs WHERE reward_date >= '2027-01-01'")
        result = award_birthdays(engine, program_slug=program.slug, dates=DAYS, now=NOW)
        outcomes[name] = (
            set(rewarded_passes(engine)) - before,
            result.eligible,
            result.already_rewarded,
            result.rewarded_now,
        )
    assert outcomes["birthday index"] == outcomes["program's passes"]
    assert outcomes["birthday index"][3] > 0


def test_the_reward_insert_reads_only_the_candidates(postgres_engine):
    """Whether a pass was already rewarded is decided as the candidates are found, never inside the
    INSERT: there the check reads the table being filled, and on an empty birthday_logs (a fresh
    database's first backfill) its plan scanned the growing table again for every row."""
    engine = postgres_engine
    program = _population(engine, 4)
    inserts = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("INSERT INTO birthday_logs"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        result = award_birthdays(engine, program_slug=program.slug, dates=DAYS, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert result.rewarded_now > 0 and len(inserts) == 1
    assert inserts[0].count("birthday_logs") == 1, inserts[0]
