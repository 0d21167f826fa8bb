"""The birthday bot in Dagster, in process on a test instance with a pinned clock: day partitions
with a batch of programs per run, each program's result per day in birthday_runs (and in the
metadata and checks), failures isolated per program, the CLI's range backfill (one run), the
schedule's batches per local date, automatic catch-up and the late alert."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    DagsterRunStatus,
    Definitions,
    DeleteDynamicPartitionsRequest,
    RunsFilter,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import text

from assets.birthdays import batch_config, birthday_job, birthday_log, birthday_notifications
from assets.resources import AlertWebhook, Clock, LoyaltySettings, NotificationSender
from loyalty_pipeline import birthday_runs
from loyalty_pipeline.dagster_internals import IN_MEMORY_EVENT_LOG
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.programs import Program, get_program
from loyalty_pipeline.rewards import award_birthdays
from loyalty_pipeline.run_results import failure_reason
from loyalty_pipeline.runs import run_birthdays
from schedules.catchup import birthday_catchup_sensor
from schedules.late_alerts import birthday_late_sensor
from schedules.schedules import birthday_schedule
from tests.factories import (
    balance,
    birthday_definitions,
    count,
    make_program,
    member,
    program_record,
    rewarded_passes,
    set_birthday,
    switched_on,
    utc,
)

FROZEN_NOW = "2026-11-26T10:00:00+00:00"
MESSAGE = "Happy birthday {first_name}! {program_name} added {points} points."


# The default per-run SQLite event logs cost ~20 ms an event; the in-memory event log keeps asset
# checks and materializations all the same.
FAST_EVENT_LOG = {"event_log_storage": IN_MEMORY_EVENT_LOG}


@pytest.fixture
def instance():
    with instance_for_test(overrides=FAST_EVENT_LOG) as instance:
        yield instance


@pytest.fixture
def disk_instance():
    """Schedule and sensor contexts reopen the instance from its ref, so its storage must be on disk."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def resources(settings, tmp_path, monkeypatch) -> dict:
    for name in (
        "LOYALTY_DATABASE_URL",
        "LOYALTY_UPLOADS_DIR",
        "LOYALTY_TIMEZONE",
        "LOYALTY_FROZEN_NOW",
        "LOYALTY_NOTIFICATION_SENDER",
        "LOYALTY_NOTIFICATION_LOG",
        "LOYALTY_WEBHOOK_URL",
        "LOYALTY_ALERT_WEBHOOK_URL",
        "LOYALTY_CATCHUP_DAYS",
        "LOYALTY_LATE_ALERT_HOURS",
    ):
        monkeypatch.delenv(name, raising=False)  # build_resources must use the test database
    return {
        **build_resources(settings),
        "clock": Clock(frozen_now=FROZEN_NOW),
        "notification_sender": NotificationSender(kind="log", log_path=str(tmp_path / "notifications.jsonl")),
    }


def at(resources: dict, moment: datetime) -> dict:
    return {**resources, "clock": Clock(frozen_now=moment.isoformat())}


def metadata(result, asset_name: str) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.to_user_string() == asset_name
    ]
    return {k: getattr(v, "value", v) for k, v in event.event_specific_data.materialization.metadata.items()}


def per_program(result) -> dict[str, dict]:
    return {record.data["program"]: record.data for record in metadata(result, "birthday_log")["per_program"].records}


def log_lines(tmp_path) -> list[dict]:
    path = tmp_path / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def results(engine) -> dict[tuple[str, str], tuple]:
    """(slug, day) -> (status, eligible, rewarded, points, error) of every birthday_runs row."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT p.slug, r.run_date, r.status, r.eligible, r.rewarded, r.points, r.error
            FROM birthday_runs r JOIN programs p ON p.id = r.program_id""")
        ).all()
    return {
        (slug, str(day)[:10]): (status, eligible, rewarded, points, error)
        for slug, day, status, eligible, rewarded, points, error in rows
    }


def run_day(instance, resources, day: str, programs=(), raise_on_error=False, **extra):
    return materialize(
        [birthday_log, birthday_notifications],
        partition_key=day,
        instance=instance,
        resources=resources,
        run_config=batch_config(list(programs), **extra),
        raise_on_error=raise_on_error,
    )


# --- assets --------------------------------------------------------------------------------------------


def test_a_day_for_a_program_records_its_result_metadata_and_checks(engine, instance, resources, tmp_path):
    program = make_program(engine, birthday_message=MESSAGE)
    ada = member(engine, program, (11, 26), first_name="Ada")
    grace = member(engine, program, (11, 26), first_name="Grace")
    earlier = member(engine, program, (3, 1), first_name="Linus")
    award_birthdays(engine, program_slug="joes-pizza", dates=[date(2026, 3, 1)], now=utc(2026, 3, 1, 12))
    set_birthday(engine, earlier, (11, 26), set_at=utc(2026, 6, 1))  # rewarded earlier this year
    member(engine, program, (11, 27))

    result = run_day(instance, resources, "2026-11-26", ["joes-pizza"])

    assert result.success
    log = metadata(result, "birthday_log")
    assert (log["programs"], log["programs_failed"], log["eligible_passes"], log["rewarded_now"]) == (1, 0, 3, 2)
    row = per_program(result)["joes-pizza"]
    assert (row["status"], row["eligible"], row["rewarded_now"], row["points_total"]) == ("succeeded", 3, 2, 100)
    assert log["sample_messages"].startswith("- Happy birthday ")
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "no_pass_twice_a_year": True,
        "pass_in_logged_program": True,
        "one_notification_per_log": True,
        "programs_succeeded": True,
    }
    assert metadata(result, "birthday_notifications")["sent"] == 2
    assert sorted(line["text"] for line in log_lines(tmp_path)) == [
        "Happy birthday Ada! Joe's Pizza added 50 points.",
        "Happy birthday Grace! Joe's Pizza added 50 points.",
    ]
    assert sorted(p for p, d in rewarded_passes(engine) if d == "2026-11-26") == sorted([ada, grace])
    assert results(engine)[("joes-pizza", "2026-11-26")] == ("succeeded", 3, 2, 100, None)

    rerun = run_day(instance, resources, "2026-11-26", ["joes-pizza"])
    assert rerun.success
    assert per_program(rerun)["joes-pizza"]["rewarded_now"] == 0
    assert metadata(rerun, "birthday_notifications")["sent"] == 0
    assert len(log_lines(tmp_path)) == 2
    assert (balance(engine, ada), balance(engine, grace), balance(engine, earlier)) == (50, 50, 50)
    # The day's totals survive a rerun that adds nothing; attempts are counted.
    assert results(engine)[("joes-pizza", "2026-11-26")] == ("succeeded", 3, 2, 100, None)
    assert count(engine, "SELECT attempts FROM birthday_runs") == 2


def test_one_program_failing_leaves_the_others_rewarded_and_is_visible_per_program(engine, instance, resources):
    good = make_program(engine, "joes-pizza")
    disabled = make_program(engine, "sleepy", name="Sleepy", birthday_bot_enabled=False)
    blank = make_program(engine, "blank", name="Blank", birthday_message="")
    for program in (good, disabled, blank):
        member(engine, program, (11, 26))

    batch = run_day(instance, resources, "2026-11-26", ["blank", "gone", "joes-pizza", "sleepy"])

    assert batch.success  # the others are rewarded and their messages delivered
    rows = per_program(batch)
    assert {slug: row["status"] for slug, row in rows.items()} == {
        "blank": "failed",
        "gone": "failed",
        "joes-pizza": "succeeded",
        "sleepy": "skipped",
    }
    assert rows["blank"]["note"] == "program 'blank' has invalid config: birthday_message is empty"
    assert rows["gone"]["note"] == "program 'gone' does not exist in the programs table"
    check = {c.check_name: c for c in batch.get_asset_check_evaluations()}["programs_succeeded"]
    assert not check.passed
    assert "- blank: program 'blank' has invalid config" in check.metadata["failures"].value
    assert metadata(batch, "birthday_notifications")["sent"] == 1
    assert rewarded_passes(engine) == rewarded_passes(engine, good) and len(rewarded_passes(engine)) == 1
    recorded = results(engine)
    assert recorded[("blank", "2026-11-26")][0] == "failed"
    assert recorded[("blank", "2026-11-26")][4].endswith("birthday_message is empty")
    assert recorded[("sleepy", "2026-11-26")][0] == "skipped"

    # A run whose every program fails is a failed run (red in the UI, and the run-failure alert).
    alone = run_day(instance, resources, "2026-11-26", ["blank"])
    assert not alone.success
    assert failure_reason(alone) == "blank: program 'blank' has invalid config: birthday_message is empty"
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in alone.all_events)  # not retried


def test_default_batch_is_every_enabled_program_past_its_send_hour(engine, instance, resources):
    early = make_program(engine, "early", name="Early", birthday_send_hour=8)
    late = make_program(engine, "late", name="Late", birthday_send_hour=11)
    make_program(engine, "off", name="Off", birthday_bot_enabled=False)
    for program in (early, late):
        member(engine, program, (11, 26))

    at_ten = run_day(instance, resources, "2026-11-26")  # the clock says 10:00 UTC

    assert set(per_program(at_ten)) == {"early"}
    assert {slug for slug, _ in results(engine)} == {"early"}
    everyone = run_day(instance, resources, "2026-11-26", ignore_send_hour=True)
    assert set(per_program(everyone)) == {"early", "late"}


def test_cli_backfill_is_one_run_over_the_range_for_every_program(engine, instance, resources, settings):
    joes = make_program(engine, "joes-pizza")
    city = make_program(engine, "city-events", name="City Events", timezone="Europe/London", birthday_reward_points=100)
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
    assert outcomes[1][2].startswith("30 rewarded now, 0 already rewarded, 1500 points")
    assert instance.get_runs_count() == 1
    [run] = instance.get_runs(RunsFilter(job_name="birthday_job"))
    assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
        "2026-10-27",
        "2026-11-25",
    )
    expected = sorted((p, d.isoformat()) for p, d in born.items() if start <= d <= end)
    assert rewarded_passes(engine) == expected
    recorded = results(engine)
    assert len(recorded) == 60  # 30 days x 2 programs, one row each
    assert recorded[("joes-pizza", "2026-11-01")][:3] == ("succeeded", 1, 1)

    one = run_birthdays(instance, settings, start, end, "city-events", resources=resources)
    assert one == [("city-events", True, "0 rewarded now, 10 already rewarded, 1000 points on the day(s)")]


# --- schedule ----------------------------------------------------------------------------------------


def _tick(instance, resources, moment: datetime):
    definitions = birthday_definitions(resources, schedules=[birthday_schedule])
    ticking = {**resources, "clock": Clock()}  # the tick's own time, as under the daemon
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=moment,
        resources=ticking,
        repository_def=definitions.get_repository_def(),
    ) as context:
        return birthday_schedule.evaluate_tick(context).run_requests or []


def test_schedule_batches_programs_per_local_date_once_past_their_send_hour(engine, disk_instance, resources):
    instance = disk_instance
    for slug, zone in (
        ("la", "America/Los_Angeles"),
        ("tokyo", "Asia/Tokyo"),
        ("kolkata", "Asia/Kolkata"),
        ("osaka", "Asia/Tokyo"),
    ):
        make_program(engine, slug, name=slug, timezone=zone)
    make_program(engine, "broken", name="Broken", timezone="Asia/Tokyo", birthday_message="")
    make_program(engine, "off", name="Off", timezone="Asia/Tokyo", birthday_bot_enabled=False)

    ticks = {  # UTC tick -> (day, programs) requested; each request is run before the next tick
        utc(2026, 11, 25, 3, 0): [],  # Kolkata 08:30, LA 19:00 on the 24th
        utc(2026, 11, 25, 3, 30): [("2026-11-25", ["kolkata"])],  # Kolkata 09:00 (UTC+5:30)
        utc(2026, 11, 25, 3, 45): [],  # done: not requested again
        utc(2026, 11, 25, 17, 0): [("2026-11-25", ["la"])],  # LA 09:00
        utc(2026, 11, 26, 0, 0): [("2026-11-26", ["broken", "osaka", "tokyo"])],  # Tokyo 09:00: one batch
        utc(2026, 11, 26, 0, 15): [],  # broken failed: alerted, not retried
        utc(2026, 11, 26, 3, 30): [("2026-11-26", ["kolkata"])],
    }
    # The first tick would also request the local dates already past their send hour then (LA's 24th,
    # Tokyo's 25th at 12:00): they ran earlier.
    with engine.begin() as conn:
        for slug, day in (("la", 24), ("tokyo", 25), ("osaka", 25), ("broken", 25)):
            program_id = conn.execute(text("SELECT id FROM programs WHERE slug = :s"), {"s": slug}).scalar_one()
            birthday_runs.record(
                conn,
                str(program_id),
                [birthday_runs.DayResult(date(2026, 11, day), "succeeded")],
                "earlier",
                utc(2026, 11, 24, 17),
                utc(2026, 11, 24, 17),
            )

    seen, run_keys = {}, set()
    for moment in ticks:
        requests = _tick(instance, resources, moment)
        seen[moment] = [(r.partition_key, r.run_config["ops"]["birthday_log"]["config"]["programs"]) for r in requests]
        for request in requests:
            run_keys.add(request.run_key)
            run_day(
                instance,
                at(resources, moment + timedelta(minutes=1)),
                request.partition_key,
                request.run_config["ops"]["birthday_log"]["config"]["programs"],
            )

    assert seen == ticks
    assert len(run_keys) == 4
    recorded = results(engine)
    assert {k: v[0] for k, v in recorded.items() if k[1] == "2026-11-26" or k[0] in ("la", "kolkata")} == {
        ("la", "2026-11-24"): "succeeded",
        ("kolkata", "2026-11-25"): "succeeded",
        ("la", "2026-11-25"): "succeeded",
        ("broken", "2026-11-26"): "failed",
        ("osaka", "2026-11-26"): "succeeded",
        ("tokyo", "2026-11-26"): "succeeded",
        ("kolkata", "2026-11-26"): "succeeded",
    }


def test_a_day_queued_or_running_is_not_requested_again(engine, disk_instance, resources):
    instance = disk_instance
    make_program(engine, "tokyo", name="Tokyo", timezone="Asia/Tokyo")
    make_program(engine, "osaka", name="Osaka", timezone="Asia/Tokyo")
    nine_in_tokyo = utc(2026, 11, 26, 0)
    [request] = _tick(instance, resources, nine_in_tokyo)
    job = Definitions(
        assets=[birthday_log, birthday_notifications], jobs=[birthday_job], resources=resources
    ).resolve_job_def("birthday_job")
    # The request's run, started but not finished (a long queue, or a slow batch).
    running = instance.create_run_for_job(
        job,
        run_config=request.run_config,
        status=DagsterRunStatus.STARTED,
        tags={**request.tags, "dagster/partition": request.partition_key},
    )

    assert _tick(instance, resources, nine_in_tokyo + timedelta(minutes=15)) == []  # in flight
    instance.report_run_canceled(running)  # it ended without recording anything for the day
    [again] = _tick(instance, resources, nine_in_tokyo + timedelta(minutes=30))
    assert (again.partition_key, _batch(again)) == ("2026-11-26", ["osaka", "tokyo"])


def test_a_program_with_an_unknown_time_zone_runs_on_the_default_clock_and_fails_visibly(
    engine, disk_instance, resources
):
    instance = disk_instance
    make_program(engine, "mars", name="Mars", timezone="Mars/Olympus_Mons")
    [request] = _tick(instance, resources, utc(2026, 11, 26, 9))  # 09:00 in UTC, the default

    assert (request.partition_key, _batch(request)) == ("2026-11-26", ["mars"])
    result = run_day(instance, at(resources, utc(2026, 11, 26, 9, 1)), request.partition_key, _batch(request))
    assert not result.success
    status, _, _, _, error = results(engine)[("mars", "2026-11-26")]
    assert status == "failed" and "timezone 'Mars/Olympus_Mons' is not an IANA time zone name" in error


def _batch(request) -> list[str]:
    return request.run_config["ops"]["birthday_log"]["config"]["programs"]


def test_schedule_batches_follow_time_zones_not_programs():
    zones = ["Pacific/Honolulu", "America/New_York", "Europe/Paris", "Asia/Tokyo"]
    programs = [
        birthday_runs.ProgramState(
            program_record(f"p{n:04d}", timezone=zones[n % 4]), ZoneInfo(zones[n % 4]), None, None
        )
        for n in range(2000)
    ]
    snap = birthday_runs.Snapshot(programs, {})
    at_nine_in_paris = utc(2026, 11, 26, 8)  # 09:00 in Paris; 03:00 in New York; 17:00 in Tokyo

    due = birthday_runs.due_today(snap, at_nine_in_paris, in_flight={})
    batches = birthday_runs.batches(due)

    assert sorted(due) == [date(2026, 11, 25), date(2026, 11, 26)]  # Honolulu is still on the 25th (22:00)
    assert [(day.isoformat(), len(slugs)) for day, slugs in batches] == [
        ("2026-11-25", 500),
        ("2026-11-26", 500),
        ("2026-11-26", 500),
    ]  # Paris + Tokyo: 1,000 in batches of 500
    in_flight = {date(2026, 11, 26): None}
    assert birthday_runs.due_today(snap, at_nine_in_paris, in_flight) == {date(2026, 11, 25): due[date(2026, 11, 25)]}


# --- catch-up ------------------------------------------------------------------------------------------


def _sensor(sensor, instance, resources, moment: datetime, **settings):
    resources = at(resources, moment)
    if settings:
        resources["settings"] = LoyaltySettings(uploads_dir="uploads", timezone="UTC", **settings)
    context = build_sensor_context(instance=instance, resources=resources)
    return sensor(context)


def _requested(result) -> dict[str, list[str]]:
    return {r.partition_key: _batch(r) for r in result.run_requests}


def test_catchup_requests_each_missed_day_once_since_the_bot_was_switched_on(
    engine, disk_instance, resources, settings, http_receiver
):
    instance = disk_instance
    steady = make_program(engine, "steady", name="Steady")
    paused = make_program(engine, "paused", name="Paused")
    strict = make_program(engine, "strict", name="Strict", birthday_max_delay_days=2)
    make_program(engine, "off", name="Off", birthday_bot_enabled=False)
    for program in (steady, paused, strict):
        for day in range(18, 27):
            member(engine, program, (11, day))
    switched_on(engine, utc(2026, 11, 20, 8))
    for slug in ("steady", "paused", "strict"):  # the daemon's last day before the outage: the 20th
        assert run_birthdays(
            instance,
            settings,
            date(2026, 11, 20),
            date(2026, 11, 20),
            slug,
            resources=at(resources, utc(2026, 11, 20, 10)),
        )[0][1]
    # During the outage: paused is switched off and on again (the 24th, 08:00), and fresh is created
    # on the 24th at 08:00, before its send hour - by the front end's SQL, which the trigger stamps.
    with engine.begin() as conn:
        conn.execute(text("UPDATE programs SET birthday_bot_enabled = false WHERE slug = 'paused'"))
        conn.execute(text("UPDATE programs SET birthday_bot_enabled = true WHERE slug = 'paused'"))
        conn.execute(
            text(
                "INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points) VALUES ('fresh', 'Fresh', true, 5)"
            )
        )
    switched_on(engine, utc(2026, 11, 24, 8), "paused", "fresh")  # (the test's clock, not the database's)
    fresh = get_program_by_slug(engine, "fresh")
    for day in range(18, 27):
        member(engine, fresh, (11, day))
    instance.add_dynamic_partitions("programs", ["paused", "steady"])  # left over from the former shape

    # The daemon comes back on the 26th at 10:00 UTC (the 26th itself is the schedule's).
    result = _sensor(birthday_catchup_sensor, instance, resources, utc(2026, 11, 26, 10))

    assert _requested(result) == {
        "2026-11-21": ["steady"],
        "2026-11-22": ["steady"],
        "2026-11-23": ["steady"],
        "2026-11-24": ["fresh", "paused", "steady", "strict"],
        "2026-11-25": ["fresh", "paused", "steady", "strict"],
    }
    assert result.dynamic_partitions_requests == [DeleteDynamicPartitionsRequest("programs", ["paused", "steady"])]
    # strict's 21st-23rd are older than its birthday_max_delay_days: lost, and recorded with the reason.
    lost = {k: v for k, v in results(engine).items() if v[0] == "skipped"}
    assert sorted(lost) == [("strict", f"2026-11-{d}") for d in (21, 22, 23)]
    assert all(
        note == "lost: the daemon was down until 2026-11-26 10:00 UTC; older than birthday_max_delay_days = 2"
        for note in notes(engine, "strict")
        if note.startswith("lost")
    )
    snap = _snapshot(engine, utc(2026, 11, 26, 10), catchup_days=2)
    assert sorted(birthday_runs.missed_days(snap, utc(2026, 11, 26, 10), {}, catchup_days=2)) == [
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]

    for request in result.run_requests:
        assert run_day(
            instance, at(resources, utc(2026, 11, 26, 10, 1)), request.partition_key, _batch(request)
        ).success
    rewarded = {(slug, day) for (slug, day), row in results(engine).items() if row[2] == 1}
    assert rewarded == {("steady", f"2026-11-{d}") for d in range(20, 26)} | {
        ("paused", "2026-11-20"),
        ("paused", "2026-11-24"),
        ("paused", "2026-11-25"),
        ("strict", "2026-11-20"),
        ("strict", "2026-11-24"),
        ("strict", "2026-11-25"),
        ("fresh", "2026-11-24"),
        ("fresh", "2026-11-25"),
    }

    again = _sensor(birthday_catchup_sensor, instance, resources, utc(2026, 11, 26, 10, 2))
    assert again.run_requests == []  # once each
    assert len([v for v in results(engine).values() if v[0] == "skipped"]) == 3  # recorded once

    # The lost days reach on-call once each; the days catch-up rewarded raise nothing.
    receiver = http_receiver(200)
    resources = {**resources, "alert_webhook": AlertWebhook(url=receiver.url)}
    for minute in (3, 4):
        _sensor(birthday_late_sensor, instance, resources, utc(2026, 11, 26, 10, minute))
    alerts = [request.json() for request in receiver.requests]
    assert sorted((a["event"], a["status"], a["program"], a["partition"]) for a in alerts) == [
        ("birthday_expired", "EXPIRED", "strict", f"2026-11-{d}") for d in (21, 22, 23)
    ]
    assert "older than birthday_max_delay_days = 2" in alerts[0]["error"]
    assert receiver.requests[0].headers["Idempotency-Key"] == f"birthday-late:strict:{alerts[0]['partition']}:EXPIRED"


def test_days_out_of_catchup_reach_but_within_max_delay_are_recorded_with_that_reason(engine, disk_instance, resources):
    make_program(engine, "patient", name="Patient", birthday_max_delay_days=30)
    switched_on(engine, utc(2026, 11, 20, 8))

    result = _sensor(birthday_catchup_sensor, disk_instance, resources, utc(2026, 11, 26, 10), catchup_days=2)

    assert sorted(_requested(result)) == ["2026-11-24", "2026-11-25"]
    assert (
        notes(engine, "patient")
        == [
            "lost: the daemon was down until 2026-11-26 10:00 UTC; older than LOYALTY_CATCHUP_DAYS = 2 "
            "(a backfill can still reward it within birthday_max_delay_days = 30)"
        ]
        * 4
    )  # the 20th to the 23rd


def notes(engine, slug) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT r.note FROM birthday_runs r JOIN programs p ON p.id = r.program_id "
                    "WHERE p.slug = :s AND r.note IS NOT NULL ORDER BY r.run_date"
                ),
                {"s": slug},
            ).scalars()
        )


def get_program_by_slug(engine, slug) -> Program:
    with engine.connect() as conn:
        return get_program(conn, slug)


def _snapshot(engine, moment: datetime, catchup_days: int) -> birthday_runs.Snapshot:
    with engine.connect() as conn:
        return birthday_runs.snapshot(conn, moment, "UTC", history_days=catchup_days)


# --- alerts --------------------------------------------------------------------------------------------


def _alerting(resources, receiver) -> dict:
    return {**resources, "alert_webhook": AlertWebhook(url=receiver.url, ui_url="https://dagster.example.com")}


def test_late_alert_once_per_program_day_and_status(engine, disk_instance, resources, http_receiver):
    instance = disk_instance
    for slug, hour in (("tardy", 9), ("ontime", 9), ("later", 10), ("failing", 9)):
        make_program(engine, slug, name=slug, birthday_send_hour=hour)
    switched_on(engine, utc(2026, 11, 26, 0))
    run_day(instance, at(resources, utc(2026, 11, 26, 9, 5)), "2026-11-26", ["ontime"])
    _fail(engine, "failing", "failing: connection refused", "run-1", utc(2026, 11, 26, 9, 1))

    receiver = http_receiver(200)
    resources = _alerting(resources, receiver)
    ticks = {}
    for hour, minute in ((9, 2), (10, 59), (11, 1), (11, 30), (12, 1), (12, 30)):
        _sensor(birthday_late_sensor, instance, resources, utc(2026, 11, 26, hour, minute))
        ticks[(hour, minute)] = sorted((a.json()["program"], a.json()["status"]) for a in receiver.requests)
        receiver.requests.clear()
    # tardy fails later that day: its NOT_RUN day turns into a FAILURE, alerted again with the reason.
    _fail(engine, "tardy", "tardy: disk full", "run-2", utc(2026, 11, 26, 12, 40))
    _sensor(birthday_late_sensor, instance, resources, utc(2026, 11, 26, 12, 41))
    _sensor(birthday_late_sensor, instance, resources, utc(2026, 11, 26, 12, 42))

    assert ticks == {
        (9, 2): [("failing", "FAILURE")],  # at once, not at the deadline
        (10, 59): [],
        (11, 1): [("tardy", "NOT_RUN")],
        (11, 30): [],
        (12, 1): [("later", "NOT_RUN")],
        (12, 30): [],
    }
    [turned] = [request.json() for request in receiver.requests]
    assert (turned["program"], turned["status"], turned["run_id"]) == ("tardy", "FAILURE", "run-2")
    assert turned["error"].endswith("tardy: disk full")
    assert receiver.requests[0].headers["Idempotency-Key"] == "birthday-late:tardy:2026-11-26:FAILURE"
    assert count(engine, "SELECT count(*) FROM birthday_alerts WHERE alerted_at IS NOT NULL") == 4


def test_the_alert_json_carries_the_reason_and_the_runs_link(engine, disk_instance, resources, http_receiver):
    make_program(engine, "failing", name="Failing")
    make_program(engine, "tardy", name="Tardy")
    switched_on(engine, utc(2026, 11, 26, 0))
    _fail(engine, "failing", "failing: connection refused", "run-1", utc(2026, 11, 26, 9, 1))
    receiver = http_receiver(200)
    _sensor(birthday_late_sensor, disk_instance, _alerting(resources, receiver), utc(2026, 11, 26, 11, 1))

    by_program = {request.json()["program"]: request.json() for request in receiver.requests}
    failing = by_program["failing"]
    assert set(failing) == {
        "event",
        "run_id",
        "job",
        "status",
        "assets",
        "failed_assets",
        "partition",
        "program",
        "backfill_id",
        "error",
        "errors",
        "run_url",
        "failed_at",
        "text",
    }
    assert (failing["event"], failing["status"], failing["run_id"]) == ("birthday_late", "FAILURE", "run-1")
    assert failing["run_url"] == "https://dagster.example.com/runs/run-1"
    assert failing["error"].endswith("failing: connection refused")
    assert failing["failed_at"] == "2026-11-26T09:01:00+00:00"
    tardy = by_program["tardy"]
    assert (tardy["event"], tardy["status"], tardy["run_id"]) == ("birthday_late", "NOT_RUN", None)
    assert tardy["failed_at"] == "2026-11-26T11:00:00+00:00"  # its deadline
    assert tardy["run_url"] == "https://dagster.example.com/assets/birthday_log?partition=2026-11-26"


def test_a_failed_program_in_a_succeeding_batch_is_alerted_at_once(engine, disk_instance, resources, http_receiver):
    good = make_program(engine, "joes-pizza")
    make_program(engine, "mars", name="Mars", timezone="Mars/Olympus_Mons")
    member(engine, good, (11, 26))
    switched_on(engine, utc(2026, 11, 26, 0))

    batch = run_day(disk_instance, at(resources, utc(2026, 11, 26, 9, 1)), "2026-11-26", ["joes-pizza", "mars"])
    receiver = http_receiver(200)
    _sensor(birthday_late_sensor, disk_instance, _alerting(resources, receiver), utc(2026, 11, 26, 9, 2))

    assert batch.success  # green: no run-failure alert for it
    [alert] = [request.json() for request in receiver.requests]
    assert (alert["program"], alert["status"], alert["run_id"]) == ("mars", "FAILURE", batch.run_id)
    assert "timezone 'Mars/Olympus_Mons' is not an IANA time zone name" in alert["error"]
    assert alert["run_url"] == f"https://dagster.example.com/runs/{batch.run_id}"


def _in_flight_run(instance, resources, day: str, programs: list[str]):
    job = birthday_definitions(resources).resolve_job_def("birthday_job")
    return instance.create_run_for_job(
        job, run_config=batch_config(programs), status=DagsterRunStatus.NOT_STARTED, tags={"dagster/partition": day}
    )


def test_a_late_day_waits_for_its_requested_or_running_run_for_a_bounded_time(
    engine, disk_instance, resources, http_receiver
):
    instance = disk_instance
    for slug in ("caught", "stuck", "forgotten"):
        make_program(engine, slug, name=slug, birthday_send_hour=20)  # the 25th was due at 20:00, late at 22:00
    switched_on(engine, utc(2026, 11, 1))
    for slug in ("caught", "stuck", "forgotten"):  # the daemon went down after the 24th was done
        _succeed(engine, slug, date(2026, 11, 24), "before")
    receiver = http_receiver(200)
    resources = _alerting(resources, receiver)

    def tick(hour, minute):
        _sensor(birthday_late_sensor, instance, resources, utc(2026, 11, 26, hour, minute))
        sent = sorted((r.json()["program"], r.json()["partition"], r.json()["status"]) for r in receiver.requests)
        receiver.requests.clear()
        return sent

    # The daemon comes back on the 26th at 10:00: the 25th is late for all three; none is requested yet.
    assert tick(10, 0) == []
    caught = _in_flight_run(instance, resources, "2026-11-25", ["caught"])  # catch-up's run, queued
    _in_flight_run(instance, resources, "2026-11-25", ["stuck"])  # queued, and never starts
    assert tick(10, 5) == []
    # 20 minutes on, nothing has requested forgotten's day (catch-up is off, say): it alerts.
    assert tick(10, 21) == [("forgotten", "2026-11-25", "NOT_RUN")]
    _succeed(engine, "caught", date(2026, 11, 25), caught.run_id)
    instance.report_run_canceled(caught)  # (ended; its result is what counts)
    assert tick(11, 0) == []  # caught was rewarded: no alert, ever
    assert tick(11, 59) == []
    # stuck's run has been queued for LOYALTY_LATE_ALERT_HOURS (2) since the day was noticed late.
    [(slug, day, status)] = tick(12, 0)
    assert (slug, day, status) == ("stuck", "2026-11-25", "NOT_RUN")
    assert tick(12, 30) == []


def _fail(engine, slug: str, error: str, run_id: str, moment: datetime) -> None:
    """The program's 26th failed at `moment` in run `run_id` with `error`."""
    assert birthday_runs.record_failure(
        engine, slug, [date(2026, 11, 26)], error, run_id, moment - timedelta(minutes=1), moment
    )


def _succeed(engine, slug: str, day: date, run_id: str) -> None:
    with engine.begin() as conn:
        program_id = conn.execute(text("SELECT id FROM programs WHERE slug = :s"), {"s": slug}).scalar_one()
        birthday_runs.record(
            conn,
            str(program_id),
            [birthday_runs.DayResult(day, "succeeded")],
            run_id,
            utc(2026, 11, 26, 10, 30),
            utc(2026, 11, 26, 10, 31),
        )
