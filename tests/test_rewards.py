"""Who gets a birthday reward for partition (D, P): each rule of issue 3 on its own, on SQLite and
PostgreSQL, through award_birthdays with a pinned clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from loyalty_pipeline import rewards
from loyalty_pipeline.outbox import deliver_pending
from loyalty_pipeline.programs import (
    InvalidProgramConfig,
    ProgramNotFound,
    config_problems,
    get_program,
    save_program,
)
from loyalty_pipeline.rewards import award_birthdays
from tests.factories import balance, count, make_program, member, rewarded_passes, set_birthday, utc


def award(engine, *days: date, now=None, slug="joes-pizza", **kwargs):
    """Award `days` of one program; "now" defaults to noon UTC on the last day (a same-day run)."""
    last = max(days)
    return award_birthdays(
        engine, program_slug=slug, dates=list(days), now=now or utc(last.year, last.month, last.day, 12), **kwargs
    )


class Recorder:
    def __init__(self):
        self.messages = []

    def send(self, message):
        self.messages.append(message)


# --- the birthday itself -------------------------------------------------------------------------


def test_29_february_birthday_is_rewarded_on_28_february_in_a_non_leap_year(engine, program):
    leapling = member(engine, program, (2, 29), year=2000)
    feb_28 = member(engine, program, (2, 28))

    result = award(engine, date(2027, 2, 28))

    assert rewarded_passes(engine) == sorted([(leapling, "2027-02-28"), (feb_28, "2027-02-28")])
    assert result.rewarded_now == 2
    assert award(engine, date(2027, 3, 1)).rewarded_now == 0


def test_29_february_birthday_is_rewarded_on_29_february_in_a_leap_year_and_not_twice(engine, program):
    leapling = member(engine, program, (2, 29), year=2000)
    feb_28 = member(engine, program, (2, 28))

    assert rewarded_passes(engine) == []
    award(engine, date(2028, 2, 28))
    assert rewarded_passes(engine) == [(feb_28, "2028-02-28")]  # not the leapling on the 28th

    award(engine, date(2028, 2, 29))
    assert (leapling, "2028-02-29") in rewarded_passes(engine)

    again = award(engine, date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1))
    assert again.rewarded_now == 0
    assert count(engine, "SELECT count(*) FROM birthday_logs WHERE pass_id = :p", p=leapling) == 1


def test_user_without_a_birthday_is_not_rewarded(engine, program):
    member(engine, program, None, birth_date_set_at=None)
    result = award(engine, date(2026, 11, 26))
    assert result.eligible == 0
    assert rewarded_passes(engine) == []


def test_birthday_without_a_year_is_rewarded(engine, program):
    yearless = member(engine, program, (11, 26), year=None)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT birth_date FROM users")).scalar_one() is None
    award(engine, date(2026, 11, 26))
    assert rewarded_passes(engine) == [(yearless, "2026-11-26")]


def test_inactive_pass_is_not_rewarded(engine, program):
    active = member(engine, program, (11, 26))
    member(engine, program, (11, 26), status="inactive")
    award(engine, date(2026, 11, 26))
    assert rewarded_passes(engine) == [(active, "2026-11-26")]


def test_only_passes_of_the_partition_program_are_rewarded(engine, program):
    other = make_program(engine, "city-events", name="City Events")
    mine = member(engine, program, (11, 26))
    theirs = member(engine, other, (11, 26))
    award(engine, date(2026, 11, 26))
    assert rewarded_passes(engine) == [(mine, "2026-11-26")]
    award(engine, date(2026, 11, 26), slug="city-events")
    assert rewarded_passes(engine, other) == [(theirs, "2026-11-26")]


def test_deleting_a_user_removes_their_pass_rewards_and_queued_messages(engine, program):
    kept = member(engine, program, (11, 26))
    gone = member(engine, program, (11, 26))
    award(engine, date(2026, 11, 26))
    assert count(engine, "SELECT count(*) FROM notifications") == 2

    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM users WHERE id = (SELECT user_id FROM passes_master WHERE id = :p)"), {"p": gone}
        )

    assert rewarded_passes(engine) == [(kept, "2026-11-26")]
    assert count(engine, "SELECT count(*) FROM notifications WHERE pass_id = :p", p=gone) == 0
    assert count(engine, "SELECT count(*) FROM notifications WHERE pass_id = :p", p=kept) == 1


# --- when the pass and the birthday became known ---------------------------------------------------


def test_pass_created_late_on_d_in_the_program_time_zone_counts_as_existing_on_d(engine):
    la = make_program(engine, "la-tacos", name="LA Tacos", timezone="America/Los_Angeles")
    # 07:59 UTC on the 26th is 23:59 PST on the 25th; 08:00 UTC is midnight, the 26th in Los Angeles.
    late_evening = member(engine, la, (11, 25), pass_created_at=utc(2026, 11, 26, 7, 59))
    after_midnight = member(engine, la, (11, 25), pass_created_at=utc(2026, 11, 26, 8, 0))

    result = award(engine, date(2026, 11, 25), slug="la-tacos", now=utc(2026, 11, 26, 18))

    assert result.eligible == 1
    assert rewarded_passes(engine) == [(late_evening, "2026-11-25")]
    assert after_midnight not in {p for p, _ in rewarded_passes(engine)}


def test_same_creation_instant_is_the_next_day_in_a_utc_program(engine):
    utc_program = make_program(engine, "utc-club", name="UTC Club", timezone="UTC")
    member(engine, utc_program, (11, 25), pass_created_at=utc(2026, 11, 26, 7, 59))
    assert award(engine, date(2026, 11, 25), slug="utc-club", now=utc(2026, 11, 26, 18)).rewarded_now == 0


def test_pass_created_after_d_is_not_rewarded_by_a_backfill_of_d(engine, program, now):
    joined_before = member(engine, program, (11, 10), pass_created_at=utc(2026, 11, 1))
    member(engine, program, (11, 10), pass_created_at=utc(2026, 11, 20))  # joined ten days later

    award(engine, date(2026, 11, 10), now=now)

    assert rewarded_passes(engine) == [(joined_before, "2026-11-10")]


def test_pass_uploaded_on_the_birthday_itself_is_rewarded_that_day(engine, program):
    uploaded_today = member(engine, program, (11, 26), pass_created_at=utc(2026, 11, 26, 11))
    award(engine, date(2026, 11, 26), now=utc(2026, 11, 26, 12))
    assert rewarded_passes(engine) == [(uploaded_today, "2026-11-26")]


def test_minimum_notice_rejects_a_birthday_set_too_recently(engine):
    strict = make_program(engine, birthday_min_notice_days=7)
    pass_id = member(engine, strict, (11, 20), birth_date_set_at=utc(2026, 11, 14, 0, 1))  # 6 days before
    result = award(engine, date(2026, 11, 20))
    assert result.rewarded_now == 0
    assert pass_id not in {p for p, _ in rewarded_passes(engine)}


def test_minimum_notice_rewards_a_birthday_known_early_enough(engine):
    strict = make_program(engine, birthday_min_notice_days=7)
    pass_id = member(engine, strict, (11, 20), birth_date_set_at=utc(2026, 11, 13, 23, 59))  # on D - 7
    award(engine, date(2026, 11, 20))
    assert rewarded_passes(engine) == [(pass_id, "2026-11-20")]


def test_without_minimum_notice_a_birthday_set_that_morning_counts(engine, program):
    pass_id = member(engine, program, (11, 26), birth_date_set_at=utc(2026, 11, 26, 8))
    award(engine, date(2026, 11, 26), now=utc(2026, 11, 26, 12))
    assert rewarded_passes(engine) == [(pass_id, "2026-11-26")]


# --- once per pass per year ------------------------------------------------------------------------


def test_birthday_moved_from_31_december_to_1_january_does_not_pay_twice_within_365_days(engine, program):
    pass_id = member(engine, program, (12, 31))
    assert award(engine, date(2025, 12, 31)).rewarded_now == 1

    set_birthday(engine, pass_id, (1, 1), set_at=utc(2025, 12, 31, 15))
    new_year = award(engine, date(2026, 1, 1))
    assert new_year.rewarded_now == 0
    assert new_year.already_rewarded == 1

    assert award(engine, date(2027, 1, 1)).rewarded_now == 1  # 366 days after the last reward
    assert rewarded_passes(engine) == [(pass_id, "2025-12-31"), (pass_id, "2027-01-01")]


def test_one_reward_per_calendar_year_even_365_days_apart(engine, program):
    pass_id = member(engine, program, (1, 1))
    award(engine, date(2028, 1, 1))
    set_birthday(engine, pass_id, (12, 31), set_at=utc(2028, 6, 1))
    # 2028 is a leap year: 31 December is 365 days after 1 January, outside the window but the same year.
    result = award(engine, date(2028, 12, 31))
    assert (result.rewarded_now, result.already_rewarded) == (0, 1)
    assert rewarded_passes(engine) == [(pass_id, "2028-01-01")]


# --- when the run happens --------------------------------------------------------------------------


def test_partition_more_than_max_delay_days_old_awards_nothing_and_says_why(engine, program, now):
    member(engine, program, (10, 26))
    result = award(engine, date(2026, 10, 26), now=now)  # 31 days before 2026-11-26
    assert result.rewarded_now == 0
    assert "too late" in result.skipped["2026-10-26"]
    assert "birthday_max_delay_days=30" in result.skipped["2026-10-26"]
    assert rewarded_passes(engine) == []


def test_partition_inside_the_late_run_window_is_rewarded(engine, program, now):
    pass_id = member(engine, program, (10, 27))
    result = award(engine, date(2026, 10, 27), now=now)  # exactly 30 days late
    assert result.skipped == {}
    assert rewarded_passes(engine) == [(pass_id, "2026-10-27")]


def test_partition_in_the_future_is_not_due_yet(engine, program, now):
    member(engine, program, (11, 27))
    result = award(engine, date(2026, 11, 27), now=now)
    assert result.rewarded_now == 0
    assert "not due yet" in result.skipped["2026-11-27"]


# --- program configuration -------------------------------------------------------------------------


def test_disabled_program_succeeds_with_zero_rewards_and_says_disabled(engine, now):
    disabled = make_program(engine, birthday_bot_enabled=False)
    member(engine, disabled, (11, 26))
    result = award(engine, date(2026, 11, 26), now=now)
    assert result.enabled is False
    assert result.rewarded_now == 0
    assert "disabled" in result.skipped["2026-11-26"]
    assert rewarded_passes(engine) == []


def test_unknown_program_fails_with_a_clear_message(engine, program, now):
    with pytest.raises(ProgramNotFound, match="'no-such-program' does not exist"):
        award(engine, date(2026, 11, 26), slug="no-such-program", now=now)


def test_empty_message_fails_clearly_and_other_programs_still_award(engine, program, now):
    blank = make_program(engine, "blank", name="Blank", birthday_message="   ")
    member(engine, blank, (11, 26))
    ok = member(engine, program, (11, 26))

    with pytest.raises(InvalidProgramConfig, match="'blank'.*birthday_message is empty"):
        award(engine, date(2026, 11, 26), slug="blank", now=now)
    assert award(engine, date(2026, 11, 26), now=now).rewarded_now == 1
    assert rewarded_passes(engine) == [(ok, "2026-11-26")]


def test_negative_points_is_a_config_problem(program):
    problems = config_problems(replace(program, birthday_reward_points=-5), "UTC")
    assert problems == ["birthday_reward_points must be >= 0, got -5"]
    assert config_problems(program, "UTC") == []


def test_negative_points_cannot_be_stored(engine, program):
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            save_program(conn, "joes-pizza", "Joe's Pizza", birthday_reward_points=-5)
    with engine.connect() as conn:
        assert get_program(conn, "joes-pizza").birthday_reward_points == 50


# --- one transaction, safe to rerun ---------------------------------------------------------------


def test_rerun_of_the_same_partition_awards_and_sends_nothing_twice(engine, program, now):
    pass_id = member(engine, program, (11, 26))
    sender = Recorder()

    first = award(engine, date(2026, 11, 26), now=now)
    deliver_pending(engine, program_slug="joes-pizza", dates=[date(2026, 11, 26)], sender=sender, now=now)
    second = award(engine, date(2026, 11, 26), now=now)
    deliver_pending(engine, program_slug="joes-pizza", dates=[date(2026, 11, 26)], sender=sender, now=now)

    assert (first.rewarded_now, second.rewarded_now) == (1, 0)
    assert second.already_rewarded == 1
    assert balance(engine, pass_id) == 50
    assert count(engine, "SELECT count(*) FROM notifications") == 1
    assert len(sender.messages) == 1


def test_backfill_of_30_days_awards_exactly_the_users_born_on_those_days(engine, program, now):
    first_birthday = date(2026, 10, 1)
    born = {}
    for offset in range(60):  # birthdays 2026-10-01 .. 2026-11-29
        day = first_birthday + timedelta(days=offset)
        born[member(engine, program, (day.month, day.day))] = day
    days = [date(2026, 10, 27) + timedelta(days=i) for i in range(30)]  # .. 2026-11-25

    result = award(engine, *days, now=now)

    expected = sorted((pass_id, day.isoformat()) for pass_id, day in born.items() if day in days)
    assert len(expected) == 30
    assert rewarded_passes(engine) == expected
    assert result.rewarded_now == 30
    assert result.skipped == {}
    assert result.per_date == {day.isoformat(): 1 for day in days}


def test_balances_logs_and_notifications_agree(engine, program, now):
    passes = [member(engine, program, (11, day), points_balance=day) for day in (20, 21, 22, 23)]
    award(engine, date(2026, 11, 20), date(2026, 11, 21), now=now)
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza", birthday_reward_points=80)
    award(engine, date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22), now=now)
    award(engine, date(2026, 11, 22), now=now)

    with engine.connect() as conn:
        balances = dict(conn.execute(text("SELECT id, points_balance FROM passes_master")).all())
        logged = dict(conn.execute(text("SELECT pass_id, sum(points) FROM birthday_logs GROUP BY pass_id")).all())
        notified = conn.execute(
            text("""
            SELECT count(*) FROM birthday_logs b
            JOIN notifications n ON n.birthday_log_id = b.id AND n.pass_id = b.pass_id
                                 AND n.program_id = b.program_id AND n.status = 'pending'""")
        ).scalar_one()
    balances = {str(k): v for k, v in balances.items()}
    logged = {str(k): v for k, v in logged.items()}
    assert logged == {passes[0]: 50, passes[1]: 50, passes[2]: 80}
    for day, pass_id in zip((20, 21, 22, 23), passes, strict=True):
        assert balances[pass_id] == day + logged.get(pass_id, 0)
    assert (
        count(engine, "SELECT count(*) FROM notifications") == count(engine, "SELECT count(*) FROM birthday_logs") == 3
    )
    assert notified == 3


def test_failure_between_log_insert_and_balance_update_leaves_nothing_half_done(engine, program, now, monkeypatch):
    pass_id = member(engine, program, (11, 26), points_balance=10)

    def crash(conn, batch_id):
        assert conn.execute(text("SELECT count(*) FROM birthday_logs")).scalar_one() == 1  # the log row is written
        raise RuntimeError("injected crash after the log insert")

    monkeypatch.setattr(rewards, "_credit_balances", crash)
    with pytest.raises(RuntimeError, match="injected"):
        award(engine, date(2026, 11, 26), now=now)

    assert count(engine, "SELECT count(*) FROM birthday_logs") == 0
    assert count(engine, "SELECT count(*) FROM notifications") == 0
    assert balance(engine, pass_id) == 10

    monkeypatch.undo()
    assert award(engine, date(2026, 11, 26), now=now).rewarded_now == 1
    assert award(engine, date(2026, 11, 26), now=now).rewarded_now == 0
    assert balance(engine, pass_id) == 60
    assert count(engine, "SELECT count(*) FROM notifications") == 1


def test_a_batch_id_shared_by_two_reward_transactions_credits_each_row_once(engine, program, now):
    """The asset passes the Dagster run id as batch_id: a run covering two programs, or a step retried
    in the same run, must not credit or notify the earlier transaction's rows again."""
    other = make_program(engine, "city-events", name="City Events", birthday_reward_points=100)
    mine = member(engine, program, (11, 26))
    theirs = member(engine, other, (11, 26))

    award(engine, date(2026, 11, 26), now=now, batch_id="run-1")
    second = award(engine, date(2026, 11, 26), slug="city-events", now=now, batch_id="run-1")

    assert second.rewarded_now == 1
    assert second.per_date == {"2026-11-26": 1}
    assert (balance(engine, mine), balance(engine, theirs)) == (50, 100)
    assert count(engine, "SELECT count(*) FROM notifications") == 2
