"""A three-day outage, end to end, with the real `dagster-daemon` on the production instance config
(deploy/dagster.yaml: Postgres storage, queued runs) and a pinned clock (LOYALTY_FROZEN_NOW).

What drives it: the daemon itself - birthday_catchup_sensor, birthday_late_sensor,
run_failure_alert_sensor and birthday_schedule tick as in production, and the runs they request
are queued, launched and executed by it. Nothing is ticked by hand. The clock is pinned, so the
daemon decides as it would at that moment, and every wait is bounded (a timeout per step, about
four to six minutes in all).

The story (UTC): the daemon did every day up to 26 February 2026, then was down on the 27th, the
28th and 1 March; it comes back on 2 March at 09:30. Eight programs in UTC, UTC-5, UTC+5:30 and
UTC+13, with send hours that are all still ahead of them on 2 March at 09:30 (today is the
schedule's, and no run is due for it during the test), so the three missed days are catch-up's:

- customers with a birthday on each day of the outage, a year-less one, a 29 February one
  (rewarded on the 28th: 2026 is not a leap year), one in two programs, one on the 26th (done
  before the outage) and one today (not due yet);
- `new-shop` created during the outage (28 February, 06:00 in Kolkata, before its send hour);
- `strict-club` with `birthday_max_delay_days = 1`, shorter than the outage;
- `broken-bar` broken by SQL during the outage (its time zone set to a name that is not one);
- `closed-shop`, switched off.

The database stamps `birthday_enabled_since` with its own clock (tests/test_other_writers.py); here
the clock is pinned three quarters of a year back, so the test's own writes stamp the pinned moment,
as a writer with its own clock (a replay) does.

Asserted: every due reward exactly once (and its notification), the lost days recorded and alerted
once, no alert for a day catch-up rewarded, each failure alerted once with its reason and the run's
link, no run-failure alert (each catch-up batch succeeded for the others), and a second and a
third restart (the third 25 minutes later on the clock, past the 20-minute wait for a day not yet
requested) change nothing."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from loyalty_pipeline.db import make_engine, migrate
from tests.dagster_processes import BIN, REPO, Process, wait_for
from tests.e2e.test_webserver_daemon import _environment, _fresh_databases
from tests.factories import HttpReceiver, answers

BACK = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)  # the daemon comes back
LAST_DONE = date(2026, 2, 26)  # the daemon's last day before the outage
OUTAGE = [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
TODAY = date(2026, 3, 2)
LONG_AGO = "2025-01-01 00:00:00+00"
# slug -> (time zone, send hour, birthday_max_delay_days, enabled)
PROGRAMS = {
    "utc-cafe": ("UTC", 12, 30, True),
    "ny-deli": ("Etc/GMT+5", 9, 30, True),  # UTC-5 all year
    "strict-club": ("Etc/GMT+5", 9, 1, True),
    "delhi-tea": ("Asia/Kolkata", 18, 30, True),
    "new-shop": ("Asia/Kolkata", 18, 30, True),
    "tonga-bar": ("Pacific/Tongatapu", 23, 30, True),  # UTC+13
    "broken-bar": ("UTC", 12, 30, True),
    "closed-shop": ("UTC", 9, 30, False),
}
NEW_SHOP_CREATED = datetime(2026, 2, 28, 0, 30, tzinfo=timezone.utc)  # 06:00 in Kolkata
BROKEN_ZONE = "Mars/Olympus_Mons"


def _md(day: date) -> tuple[int, int]:
    return day.month, day.day


# email -> (birthday (month, day), year or None, programs)
CUSTOMERS = {
    **{f"{slug}-{d.day}@example.com": (_md(d), 1990, [slug]) for slug in PROGRAMS for d in OUTAGE},
    "yearless@example.com": ((2, 28), None, ["utc-cafe"]),
    "leap@example.com": ((2, 29), 1992, ["utc-cafe"]),
    "both@example.com": ((3, 1), 1985, ["utc-cafe", "tonga-bar"]),
    "before@example.com": (_md(LAST_DONE), 1980, ["utc-cafe"]),
    "today@example.com": (_md(TODAY), 1980, ["ny-deli"]),
}
LOST = {("strict-club", date(2026, 2, 27)), ("strict-club", date(2026, 2, 28))}


def _expected_rewards() -> set[tuple[str, str, date]]:
    expected = set()
    for email, ((month, day), _, slugs) in CUSTOMERS.items():
        reward_day = date(2026, 2, 28) if (month, day) == (2, 29) else date(2026, month, day)
        for slug in slugs:
            if reward_day not in OUTAGE or slug in ("broken-bar", "closed-shop") or (slug, reward_day) in LOST:
                continue
            if slug == "new-shop" and reward_day < date(2026, 2, 28):
                continue  # it did not exist yet
            expected.add((email, slug, reward_day))
    return expected


EXPECTED_REWARDS = _expected_rewards()
# (status, program, day) of every alert on-call must get, once each
EXPECTED_ALERTS = {("FAILURE", "broken-bar", day.isoformat()) for day in OUTAGE} | {
    ("EXPIRED", slug, day.isoformat()) for slug, day in LOST
}


@pytest.fixture
def outage_databases():
    yield from _fresh_databases()


@pytest.fixture
def engines(outage_databases, tmp_path):
    """The migrated application database and Dagster's, with the production instance config in
    tmp_path/dagster_home (the processes' environment points there)."""
    for folder in ("dagster_home", "uploads"):
        (tmp_path / folder).mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    opened = {kind: make_engine(url.render_as_string(hide_password=False)) for kind, url in outage_databases.items()}
    migrate(opened["app"])
    yield opened
    for engine in opened.values():
        engine.dispose()


def _seed(app) -> None:
    """The programs, customers and the daemon's history up to LAST_DONE; then, during the outage,
    new-shop is created and broken-bar is broken by SQL."""
    with app.begin() as conn:
        ids = {}
        for slug, (zone, hour, delay, enabled) in PROGRAMS.items():
            if slug == "new-shop":
                continue
            ids[slug] = conn.execute(
                text("""
                INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points, timezone,
                                      birthday_send_hour, birthday_max_delay_days, created_at, birthday_enabled_since)
                VALUES (:slug, :slug, :on, 10, :zone, :hour, :delay, :long_ago,
                        CASE WHEN :on THEN CAST(:long_ago AS timestamptz) END)
                RETURNING id"""),
                {"slug": slug, "on": enabled, "zone": zone, "hour": hour, "delay": delay, "long_ago": LONG_AGO},
            ).scalar_one()
        # The daemon's results up to the 26th, as it recorded them (every enabled program, every day).
        conn.execute(
            text("""
            INSERT INTO birthday_runs (program_id, run_date, status, run_id)
            SELECT p.id, CAST(:last AS date) - d, 'succeeded', 'before-the-outage'
            FROM programs p CROSS JOIN generate_series(0, 9) d WHERE p.birthday_bot_enabled"""),
            {"last": LAST_DONE},
        )
        # During the outage, by the front end's SQL: a new program (stamped with the test's clock) ...
        zone, hour, delay, _ = PROGRAMS["new-shop"]
        ids["new-shop"] = conn.execute(
            text("""
            INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points, timezone,
                                  birthday_send_hour, birthday_max_delay_days, created_at, birthday_enabled_since)
            VALUES ('new-shop', 'New Shop', true, 10, :zone, :hour, :delay, :at, :at) RETURNING id"""),
            {"zone": zone, "hour": hour, "delay": delay, "at": NEW_SHOP_CREATED},
        ).scalar_one()
        # ... and a program broken by hand.
        conn.execute(text("UPDATE programs SET timezone = :z WHERE slug = 'broken-bar'"), {"z": BROKEN_ZONE})
        for email, ((month, day), year, slugs) in CUSTOMERS.items():
            user = conn.execute(
                text("""
                INSERT INTO users (email, first_name, birth_date, birth_month, birth_day, birth_date_set_at,
                                   created_at, updated_at)
                VALUES (:e, 'Pat', :born, :m, :d, :long_ago, :long_ago, :long_ago) RETURNING id"""),
                {
                    "e": email,
                    "born": date(year, month, day) if year else None,
                    "m": month,
                    "d": day,
                    "long_ago": LONG_AGO,
                },
            ).scalar_one()
            for slug in slugs:
                conn.execute(
                    text("INSERT INTO passes_master (program_id, user_id, created_at) VALUES (:p, :u, :long_ago)"),
                    {"p": ids[slug], "u": user, "long_ago": LONG_AGO},
                )


def _state(app, dagster_db, receiver, root: Path) -> dict:
    """Everything the restarts must leave as it is."""
    with app.connect() as conn:
        rewards = conn.execute(
            text("""
            SELECT u.email, pr.slug, b.reward_date, b.year FROM birthday_logs b
            JOIN passes_master p ON p.id = b.pass_id JOIN users u ON u.id = p.user_id
            JOIN programs pr ON pr.id = b.program_id ORDER BY 1, 2, 3""")
        ).all()
        results = conn.execute(
            text("""
            SELECT pr.slug, r.run_date, r.status, r.note, r.error, r.attempts FROM birthday_runs r
            JOIN programs pr ON pr.id = r.program_id WHERE r.run_date > :last ORDER BY 1, 2"""),
            {"last": LAST_DONE},
        ).all()
        notifications = conn.execute(
            text("SELECT count(*), count(*) FILTER (WHERE status = 'sent') FROM notifications")
        ).one()
    with dagster_db.connect() as conn:
        runs = conn.execute(
            text("""
            SELECT r.partition, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id
            WHERE t.key = 'loyalty/trigger' ORDER BY 1""")
        ).all()
    log = root / "notifications.jsonl"
    return {
        "rewards": [tuple(row) for row in rewards],
        "results": [tuple(row) for row in results],
        "notifications": tuple(notifications),
        "sent_lines": len(log.read_text().splitlines()) if log.exists() else 0,
        "runs": [tuple(row) for row in runs],
        "alerts": sorted(
            (r.json()["status"], r.json()["program"], r.json()["partition"], r.headers["Idempotency-Key"])
            for r in receiver.requests
        ),
    }


def _ticks(dagster_db, sensor: str) -> int:
    with dagster_db.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM job_ticks t JOIN jobs j ON j.job_origin_id = t.job_origin_id "
                "WHERE j.job_body LIKE :name AND t.status <> 'STARTED'"
            ),
            {"name": f"%{sensor}%"},
        ).scalar_one()


def _in_flight(dagster_db) -> int:
    with dagster_db.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM runs WHERE status IN ('QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED')")
        ).scalar_one()


SENSORS = ("birthday_catchup_sensor", "birthday_late_sensor", "run_failure_alert_sensor")


def _daemon(name: str, databases, root: Path, now: datetime, receiver) -> Process:
    env = _environment(databases, root, now)
    env["LOYALTY_ALERT_WEBHOOK_URL"] = receiver.url
    env["LOYALTY_UI_URL"] = "https://dagster.example.com"
    return Process(name, [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], env, root)


def _until_every_sensor_ticked_again(daemon, dagster_db, before: dict, timeout: float) -> None:
    def ticked():
        daemon.check_alive()
        try:
            now = {sensor: _ticks(dagster_db, sensor) for sensor in SENSORS}
        except ProgrammingError:
            return "the daemon has not created Dagster's tables yet"
        return all(now[s] > before[s] for s in SENSORS) or f"completed ticks: {now} (before: {before})"

    wait_for("a tick of every sensor", ticked, timeout, interval=3, watch=[daemon])


def test_after_a_three_day_outage_every_due_day_once_lost_days_recorded_failures_alerted(
    outage_databases, engines, tmp_path
):
    root, app, dagster_db = tmp_path, engines["app"], engines["dagster"]
    _seed(app)
    receiver = HttpReceiver(answers(200))
    expected_results = len(PROGRAMS) - 1  # (closed-shop has none)
    try:
        # 1. The daemon comes back.
        daemon = _daemon("dagster-daemon-back", outage_databases, root, BACK, receiver)
        try:

            def settled():
                daemon.check_alive()
                try:
                    state = _state(app, dagster_db, receiver, root)
                except ProgrammingError:
                    return "the daemon has not created Dagster's tables yet"
                done = (
                    len([r for r in state["results"] if r[1] < TODAY]) == expected_results * 3 - 1  # new-shop: 2
                    and _in_flight(dagster_db) == 0
                    and state["sent_lines"] >= len(EXPECTED_REWARDS)
                    and len(state["alerts"]) >= len(EXPECTED_ALERTS)
                )
                return (
                    state
                    if done
                    else f"results {len(state['results'])}, alerts {state['alerts']}, runs {state['runs']}"
                )

            wait_for(
                "catch-up to reward the outage and the alerts to go out",
                settled,
                300,
                interval=3,
                watch=[daemon],
            )
            # One more tick of every sensor once everything has ended: nothing else is sent.
            _until_every_sensor_ticked_again(
                daemon, dagster_db, {sensor: _ticks(dagster_db, sensor) for sensor in SENSORS}, 150
            )
            after_back = _state(app, dagster_db, receiver, root)
        finally:
            daemon.stop()

        # Every due reward exactly once, and its notification.
        assert {(email, slug, day) for email, slug, day, _ in after_back["rewards"]} == EXPECTED_REWARDS
        assert len(after_back["rewards"]) == len(EXPECTED_REWARDS)
        assert after_back["notifications"] == (len(EXPECTED_REWARDS), len(EXPECTED_REWARDS))
        assert after_back["sent_lines"] == len(EXPECTED_REWARDS)
        # One catch-up run per missed day (a batch of every program missing it), all green.
        assert after_back["runs"] == [(day.isoformat(), "SUCCESS") for day in OUTAGE]
        results = {(slug, day): (status, note, error) for slug, day, status, note, error, _ in after_back["results"]}
        # The lost days are recorded with the reason.
        for key in LOST:
            status, note, _ = results[key]
            assert status == "skipped" and note == (
                "lost: the daemon was down until 2026-03-02 09:30 UTC; older than birthday_max_delay_days = 1"
            ), results[key]
        # The broken program's days failed with its reason; the others succeeded.
        for day in OUTAGE:
            status, _, error = results[("broken-bar", day)]
            assert status == "failed" and f"timezone '{BROKEN_ZONE}' is not an IANA time zone name" in error
        assert {k: v[0] for k, v in results.items() if k[0] not in ("broken-bar",) and k not in LOST} == {
            (slug, day): "succeeded"
            for slug in PROGRAMS
            if slug not in ("broken-bar", "closed-shop")
            for day in OUTAGE
            if (slug, day) not in LOST and not (slug == "new-shop" and day < date(2026, 2, 28))
        }
        # On-call: each failure once with its reason and the run's link, each lost day once, nothing else
        # (no NOT_RUN for the days catch-up rewarded, no run-failure alert).
        alerts = [request.json() for request in receiver.requests]
        assert {(a["status"], a["program"], a["partition"]) for a in alerts} == EXPECTED_ALERTS
        assert len(alerts) == len(EXPECTED_ALERTS)
        assert len({key for *_, key in after_back["alerts"]}) == len(EXPECTED_ALERTS)  # stable, distinct keys
        with dagster_db.connect() as conn:
            run_ids = dict(
                conn.execute(
                    text(
                        "SELECT r.partition, r.run_id FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                        "WHERE t.key = 'loyalty/trigger'"
                    )
                ).all()
            )
        for alert in alerts:
            if alert["status"] == "FAILURE":
                assert f"timezone '{BROKEN_ZONE}' is not an IANA time zone name" in alert["error"], alert
                assert alert["run_url"] == f"https://dagster.example.com/runs/{run_ids[alert['partition']]}"
            else:
                assert (alert["event"], alert["status"]) == ("birthday_expired", "EXPIRED")
                assert "older than birthday_max_delay_days = 1" in alert["error"]

        # 2. and 3. Restarted at the same moment, then 25 minutes later: nothing changes.
        for name, moment in (("dagster-daemon-again", BACK), ("dagster-daemon-later", BACK + timedelta(minutes=25))):
            before = {sensor: _ticks(dagster_db, sensor) for sensor in SENSORS}
            daemon = _daemon(name, outage_databases, root, moment, receiver)
            try:
                _until_every_sensor_ticked_again(daemon, dagster_db, before, 180)
                assert _in_flight(dagster_db) == 0
            finally:
                daemon.stop()
            assert _state(app, dagster_db, receiver, root) == after_back, name
    finally:
        receiver.stop()
