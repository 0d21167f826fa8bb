"""The birthday bot in Dagster, in process on a test instance with a pinned clock: the assets'
metadata and checks, failures isolated per program, the CLI's range backfill (one run per program),
the programs sensor and the per-program-timezone schedule."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from dagster import (
    Definitions,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    in_process_executor,
    instance_for_test,
    materialize,
)

from assets.birthdays import birthday_job, birthday_log, birthday_notifications
from assets.resources import Clock, NotificationSender
from loyalty_pipeline.dagster_internals import IN_MEMORY_EVENT_LOG
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.programs import Program, list_programs
from loyalty_pipeline.rewards import award_birthdays
from loyalty_pipeline.run_results import failure_reason
from loyalty_pipeline.runs import run_birthdays
from schedules.schedules import birthday_schedule, due_partitions
from schedules.sensors import program_partitions_sensor
from tests.factories import balance, make_program, member, rewarded_passes, set_birthday, utc

FROZEN_NOW = "2026-11-26T10:00:00+00:00"
MESSAGE = "Happy birthday {first_name}! {program_name} added {points} points."


# The default per-run SQLite event logs cost ~20 ms an event (a 30-day range run logs ~150); the
# in-memory event log keeps dynamic partitions, asset checks and materializations all the same.
FAST_EVENT_LOG = {"event_log_storage": IN_MEMORY_EVENT_LOG}


@pytest.fixture
def instance():
    with instance_for_test(overrides=FAST_EVENT_LOG) as instance:
        yield instance


@pytest.fixture
def schedule_instance():
    """A schedule context reopens the instance from its ref, so the dynamic partitions must be on disk."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def resources(settings, tmp_path, monkeypatch) -> dict:
    for name in ("LOYALTY_DATABASE_URL", "LOYALTY_UPLOADS_DIR", "LOYALTY_TIMEZONE", "LOYALTY_FROZEN_NOW",
                 "LOYALTY_NOTIFICATION_SENDER", "LOYALTY_NOTIFICATION_LOG", "LOYALTY_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)  # build_resources must use the test database
    return {
        **build_resources(settings),
        "clock": Clock(frozen_now=FROZEN_NOW),
        "notification_sender": NotificationSender(kind="log", log_path=str(tmp_path / "notifications.jsonl")),
    }


def metadata(result, asset_name: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.event_specific_data.materialization.asset_key.to_user_string() == asset_name]
    return {k: getattr(v, "value", v) for k, v in event.event_specific_data.materialization.metadata.items()}


def log_lines(tmp_path) -> list[dict]:
    path = tmp_path / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


# --- assets --------------------------------------------------------------------------------------------

def test_materialized_partition_reports_metadata_and_passes_its_checks(engine, instance, resources, tmp_path):
    program = make_program(engine, birthday_message=MESSAGE)
    ada = member(engine, program, (11, 26), first_name="Ada")
    grace = member(engine, program, (11, 26), first_name="Grace")
    earlier = member(engine, program, (3, 1), first_name="Linus")
    award_birthdays(engine, program_slug="joes-pizza", dates=[date(2026, 3, 1)], now=utc(2026, 3, 1, 12))
    set_birthday(engine, earlier, (11, 26), set_at=utc(2026, 6, 1))  # rewarded earlier this year
    member(engine, program, (11, 27))
    instance.add_dynamic_partitions("programs", ["joes-pizza"])

    result = materialize([birthday_log, birthday_notifications], partition_key="2026-11-26|joes-pizza",
                         instance=instance, resources=resources)

    assert result.success
    log = metadata(result, "birthday_log")
    assert log["enabled"] is True
    assert log["eligible_passes"] == 3
    assert log["rewarded_now"] == 2
    assert log["already_rewarded_this_year"] == 1
    assert log["points_awarded"] == 100
    assert log["sample_messages"] == ("- Happy birthday Ada! Joe's Pizza added 50 points.\n"
                                      "- Happy birthday Grace! Joe's Pizza added 50 points.")
    checks = result.get_asset_check_evaluations()
    assert sorted(c.check_name for c in checks) == [
        "no_pass_twice_a_year", "one_notification_per_log", "pass_in_logged_program"]
    assert all(c.passed for c in checks)
    assert metadata(result, "birthday_notifications")["sent"] == 2
    assert sorted(line["text"] for line in log_lines(tmp_path)) == [
        "Happy birthday Ada! Joe's Pizza added 50 points.", "Happy birthday Grace! Joe's Pizza added 50 points."]
    assert sorted(p for p, d in rewarded_passes(engine) if d == "2026-11-26") == sorted([ada, grace])

    rerun = materialize([birthday_log, birthday_notifications], partition_key="2026-11-26|joes-pizza",
                        instance=instance, resources=resources)
    assert rerun.success
    assert metadata(rerun, "birthday_log")["rewarded_now"] == 0
    assert metadata(rerun, "birthday_log")["already_rewarded_this_year"] == 3
    assert metadata(rerun, "birthday_notifications")["sent"] == 0
    assert len(log_lines(tmp_path)) == 2
    assert (balance(engine, ada), balance(engine, grace), balance(engine, earlier)) == (50, 50, 50)


def test_disabled_unknown_and_invalid_programs_fail_alone(engine, instance, resources):
    good = make_program(engine, "joes-pizza")
    disabled = make_program(engine, "sleepy", name="Sleepy", birthday_bot_enabled=False)
    blank = make_program(engine, "blank", name="Blank", birthday_message="")
    for program in (good, disabled, blank):
        member(engine, program, (11, 26))
    instance.add_dynamic_partitions("programs", ["blank", "gone", "joes-pizza", "sleepy"])

    def run(slug):
        return materialize([birthday_log], partition_key=f"2026-11-26|{slug}", instance=instance,
                           resources=resources, raise_on_error=False)

    invalid, unknown, off, ok = run("blank"), run("gone"), run("sleepy"), run("joes-pizza")

    for failed, reason in ((invalid, "program 'blank' has invalid config: birthday_message is empty"),
                           (unknown, "program 'gone' does not exist in the programs table")):
        assert not failed.success
        assert failure_reason(failed) == reason
        events = failed.all_events
        assert sum(e.is_step_failure for e in events) == 1
        assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in events)  # not retried

    assert off.success
    off_metadata = metadata(off, "birthday_log")
    assert (off_metadata["enabled"], off_metadata["rewarded_now"]) == (False, 0)
    assert "birthday bot disabled" in off_metadata["skipped"]

    assert ok.success
    assert metadata(ok, "birthday_log")["rewarded_now"] == 1
    assert {p for p, _ in rewarded_passes(engine)} == {p for p, _ in rewarded_passes(engine, good)}
    assert len(rewarded_passes(engine)) == 1


def test_backfill_range_is_one_run_per_program(engine, instance, resources, settings):
    joes = make_program(engine, "joes-pizza")
    city = make_program(engine, "city-events", name="City Events", timezone="Europe/London",
                        birthday_reward_points=100)
    born = {}
    for offset in range(60):  # birthdays 2026-10-01 .. 2026-11-29
        day = date(2026, 10, 1) + timedelta(days=offset)
        born[member(engine, joes, (day.month, day.day))] = day
        if offset % 3 == 0:
            born[member(engine, city, (day.month, day.day))] = day
    start, end = date(2026, 10, 27), date(2026, 11, 25)

    outcomes = run_birthdays(instance, settings, start, end, None, resources=resources)

    assert [(slug, ok) for slug, ok, _ in outcomes] == [("city-events", True), ("joes-pizza", True)]
    assert outcomes[0][2].startswith("10 rewarded now, 0 already rewarded, 1000 points")
    assert outcomes[1][2].startswith("30 rewarded now, 0 already rewarded, 1500 points")  # not done by city's run
    assert instance.get_runs_count() == 2
    runs = instance.get_runs(RunsFilter(job_name="birthday_job"))
    assert sorted(r.tags["program"] for r in runs) == ["city-events", "joes-pizza"]
    assert set(instance.get_dynamic_partitions("programs")) == {"city-events", "joes-pizza"}
    expected = sorted((p, d.isoformat()) for p, d in born.items() if start <= d <= end)
    assert rewarded_passes(engine) == expected
    assert len(rewarded_passes(engine, joes)) == 30
    assert len(rewarded_passes(engine, city)) == 10


def test_program_partitions_sensor_adds_new_slugs(engine, instance, resources):
    make_program(engine, "joes-pizza")

    def tick():
        context = build_sensor_context(instance=instance, resources={"database": resources["database"]})
        result = program_partitions_sensor(context)
        if isinstance(result, SensorResult):
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    first = tick()
    assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [["joes-pizza"]]
    assert isinstance(tick(), SkipReason)
    make_program(engine, "city-events", name="City Events")
    third = tick()
    assert [list(r.partition_keys) for r in third.dynamic_partitions_requests] == [["city-events"]]
    assert sorted(instance.get_dynamic_partitions("programs")) == ["city-events", "joes-pizza"]


# --- schedule ----------------------------------------------------------------------------------------

def _program(slug, zone, **overrides) -> Program:
    values = dict(id=slug, slug=slug, name=slug, birthday_bot_enabled=True, birthday_reward_points=50,
                  birthday_message="Happy birthday!", default_phone_region="US", date_order="MDY", timezone=zone,
                  birthday_min_notice_days=0, birthday_max_delay_days=30, birthday_send_hour=9)
    return Program(**{**values, **overrides})


@pytest.mark.parametrize("instant, expected", [
    (utc(2026, 11, 25, 16), []),                              # LA 08:00 on the 25th, Tokyo 01:00 on the 26th
    (utc(2026, 11, 25, 17), [("2026-11-25", "la")]),          # LA 09:00
    (utc(2026, 11, 25, 23), [("2026-11-25", "la")]),          # Tokyo 08:00 on the 26th: not yet
    (utc(2026, 11, 26, 0), [("2026-11-25", "la"), ("2026-11-26", "tokyo")]),  # Tokyo 09:00 on the 26th
    (utc(2026, 11, 26, 8), [("2026-11-26", "tokyo")]),        # LA midnight: the 26th, before 09:00
    (utc(2026, 11, 26, 15), []),                              # Tokyo midnight: the 27th, before 09:00
    (utc(2026, 11, 26, 17), [("2026-11-26", "la")]),
])
def test_due_partitions_follow_each_program_local_clock(instant, expected):
    programs = [_program("la", "America/Los_Angeles"), _program("tokyo", "Asia/Tokyo"),
                _program("off", "Asia/Tokyo", birthday_bot_enabled=False),
                _program("broken", "Asia/Tokyo", birthday_message=""),
                _program("late-riser", "Asia/Tokyo", birthday_send_hour=23)]
    assert due_partitions(programs, instant, "UTC") == expected


TICKS = {  # UTC tick -> partitions requested (Los Angeles is UTC-8, Tokyo UTC+9 in November)
    utc(2026, 11, 25, 15): [],                                     # LA 07:00 on the 25th, Tokyo 00:00 on the 26th
    utc(2026, 11, 25, 16): [],                                     # LA 08:00
    utc(2026, 11, 25, 17): ["2026-11-25|la"],                      # LA 09:00: due
    utc(2026, 11, 25, 23): ["2026-11-25|la"],                      # Tokyo 08:00 on the 26th: not yet
    utc(2026, 11, 26, 0): ["2026-11-25|la", "2026-11-26|tokyo"],   # Tokyo 09:00 on the 26th
    utc(2026, 11, 26, 8): ["2026-11-26|tokyo"],                    # LA midnight: the 26th, too early
    utc(2026, 11, 26, 14): ["2026-11-26|tokyo"],                   # Tokyo 23:00
    utc(2026, 11, 26, 15): [],                                     # Tokyo 00:00 on the 27th, LA 07:00 on the 26th
    utc(2026, 11, 26, 17): ["2026-11-26|la"],                      # LA 09:00 on the 26th
}


def test_birthday_schedule_requests_each_program_once_on_its_local_morning(engine, schedule_instance, resources):
    instance = schedule_instance
    make_program(engine, "la", name="LA", timezone="America/Los_Angeles")
    make_program(engine, "tokyo", name="Tokyo", timezone="Asia/Tokyo")
    make_program(engine, "off", name="Off", timezone="Asia/Tokyo", birthday_bot_enabled=False)
    with engine.connect() as conn:
        assert [p.birthday_send_hour for p in list_programs(conn)] == [9, 9, 9]
    instance.add_dynamic_partitions("programs", ["la", "off", "tokyo"])
    definitions = Definitions(assets=[birthday_log, birthday_notifications], jobs=[birthday_job],
                              schedules=[birthday_schedule], resources=resources, executor=in_process_executor)

    requested, run_keys = {}, {}
    for instant in TICKS:
        with build_schedule_context(instance=instance, scheduled_execution_time=instant, resources=resources,
                                    repository_def=definitions.get_repository_def()) as context:
            evaluation = birthday_schedule.evaluate_tick(context)
        requested[instant] = sorted(r.partition_key for r in evaluation.run_requests or [])
        for request in evaluation.run_requests or []:
            run_keys.setdefault(request.run_key, set()).add(request.partition_key)

    assert requested == TICKS
    first_requested = {}
    for instant, keys in requested.items():
        for key in keys:
            first_requested.setdefault(key, instant)
    assert first_requested == {
        "2026-11-25|la": utc(2026, 11, 25, 17),     # 09:00 in Los Angeles on the 25th
        "2026-11-26|tokyo": utc(2026, 11, 26, 0),   # 09:00 in Tokyo on the 26th
        "2026-11-26|la": utc(2026, 11, 26, 17),     # 09:00 in Los Angeles on the 26th
    }
    assert run_keys == {f"birthday:{key}": {key} for key in first_requested}  # one run key per partition
