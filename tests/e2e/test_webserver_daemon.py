"""End to end, the way the data team runs it: `dagster-webserver` and `dagster-daemon` as separate
processes on the production instance config (deploy/dagster.yaml, Postgres storage, queued runs),
driven only through the webserver's GraphQL API, as the UI does.

Dagster's storage and the application each get a fresh Postgres database; uploads, the Dagster
home and the notification log live in a temporary folder. Every process the test starts is in its
own process group and is stopped (SIGTERM, then SIGKILL) when the test ends, pass or fail.

Timing: upload_sensor ticks every 15 s, the other sensors at most every 30 s, and the backfill daemon loops
every 30 s (fixed in Dagster), so the whole test takes about two to three minutes."""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.programs import save_program
from tests.conftest import POSTGRES_URL, _admin_engine
from tests.dagster_processes import (
    LOCATION,
    Deployment,
    environment,
    find_runs,
    free_port,
    launch_backfill,
    production_home,
    run_command,
    selector,
    start_daemon,
    wait_for,
    wait_for_backfill,
    wait_for_runs,
)
from tests.factories import HttpReceiver, answers

# What the code location must list at the least (the test also compares with `defs` itself).
EXPECTED_ASSETS = {"raw_upload", "validated_users", "users", "passes", "birthday_log", "birthday_notifications"}
EXPECTED_CHECKS = {
    "raw_upload:files_ingested",
    "validated_users:unique_emails",
    "validated_users:reject_rate",
    "birthday_log:no_pass_twice_a_year",
    "birthday_log:pass_in_logged_program",
    "birthday_log:one_notification_per_log",
    "birthday_log:programs_succeeded",
}
EXPECTED_SENSORS = {"upload_sensor", "birthday_catchup_sensor", "birthday_late_sensor", "run_failure_alert_sensor"}
EXPECTED_SCHEDULES = {"birthday_schedule"}
EXPECTED_JOBS = {"ingest_upload_job", "birthday_job"}

# The real date (partitions exist up to today) at noon; every date in the test is relative to it.
TODAY = datetime.now(timezone.utc).date()
FROZEN_NOW = datetime.combine(TODAY, datetime.min.time(), tzinfo=timezone.utc).replace(hour=12)
BACKFILL_DAYS = [TODAY - timedelta(days=n) for n in range(10, 3, -1)]  # 7 days, all within max_delay (30)
PROGRAMS = {"alpha-cafe": 10, "beta-books": 20}  # slug -> birthday points


def _md(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}"


D = BACKFILL_DAYS
# email -> (program, birth date cell); a@ is a customer of both programs.
CSV_ROWS = {
    "alpha-cafe": [
        ("ann@example.com", "Ann", f"{_md(D[0])}/1990"),  # rewarded on D0
        ("bob@example.com", "Bob", _md(D[3])),  # no year: rewarded on D3
        ("cyd@example.com", "Cyd", f"{_md(D[6])}/1985"),  # rewarded on D6, the last day
        ("dee@example.com", "Dee", f"{_md(TODAY - timedelta(days=2))}/1980"),  # after the range
        ("eve@example.com", "Eve", ""),  # no birthday
    ],
    "beta-books": [
        ("ann@example.com", "Ann", f"{_md(D[0])}/1990"),  # rewarded on D0 in this program too
        ("fay@example.com", "Fay", f"{_md(D[5])}/1991"),  # rewarded on D5
        ("gus@example.com", "Gus", f"{_md(D[0] - timedelta(days=1))}/1970"),  # the day before the range
    ],
}
EXPECTED_REWARDS = {
    ("ann@example.com", "alpha-cafe", D[0], 10),
    ("bob@example.com", "alpha-cafe", D[3], 10),
    ("cyd@example.com", "alpha-cafe", D[6], 10),
    ("ann@example.com", "beta-books", D[0], 20),
    ("fay@example.com", "beta-books", D[5], 20),
}
GHOST = "ghost-program"  # an upload folder with no program row: its file waits, no run
BROKEN = "beta-books/broken.csv"  # no email column: fails alone inside the sensor's batch
ALONE_BAD = "alpha-cafe/bad.csv"  # dropped later, alone: its run fails and raises the run-failure alert


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def databases():
    """Two fresh databases on the test server: Dagster's storage and the application's."""
    yield from _fresh_databases()


@pytest.fixture
def other_databases():
    """Another pair, for a test that runs its own daemon."""
    yield from _fresh_databases()


def _fresh_databases():
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the end-to-end test must run)", pytrace=False)
        pytest.skip(reason)
    suffix = uuid.uuid4().hex[:10]
    names = {"dagster": f"loyalty_e2e_{suffix}_dagster", "app": f"loyalty_e2e_{suffix}_app"}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {kind: make_url(POSTGRES_URL).set(database=name) for kind, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="module")
def deployment(databases, tmp_path_factory):
    """The app database with two programs, then the webserver and the daemon on deploy/dagster.yaml."""
    root = tmp_path_factory.mktemp("e2e")
    production_home(root / "dagster_home")
    (root / "uploads").mkdir()

    app_url = databases["app"].render_as_string(hide_password=False)
    app = make_engine(app_url)
    migrate(app)
    with app.begin() as conn:
        for slug, points in PROGRAMS.items():
            save_program(
                conn, slug, slug.replace("-", " ").title(), birthday_bot_enabled=True, birthday_reward_points=points
            )

    port = free_port()
    receiver = HttpReceiver(answers(204))  # LOYALTY_ALERT_WEBHOOK_URL for the daemon
    env = _environment(databases, root, FROZEN_NOW)
    env.update({"LOYALTY_ALERT_WEBHOOK_URL": receiver.url, "LOYALTY_UI_URL": f"http://127.0.0.1:{port}"})
    try:
        with Deployment(env, root, port=port) as processes:
            yield {
                "gql": processes.gql,
                "base_url": processes.base_url,
                "uploads": root / "uploads",
                "app": app,
                "root": root,
                "receiver": receiver,
                "processes": processes,
            }
    finally:
        receiver.stop()
        app.dispose()


def _environment(databases, root: Path, frozen_now: datetime) -> dict:
    """deploy/dagster.yaml in DAGSTER_HOME on the Dagster database, the application database, and a pinned clock."""
    return environment(
        dagster_home=root / "dagster_home",
        app_url=databases["app"].render_as_string(hide_password=False),
        work=root,
        dagster_postgres=databases["dagster"],
        frozen_now=frozen_now,
    )


# ---------------------------------------------------------------------------------------------
# GraphQL documents (the same ones the UI sends, trimmed to what the test reads)

WORKSPACE = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message stack }
    ... on RepositoryLocation { repositories { name jobs { name } sensors { name } schedules { name }
      assetNodes { assetKey { path } groupName description metadataEntries { label }
        owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
        assetChecksOrError { __typename ... on AssetChecks { checks { name } } } }
} } } } } } }"""
INSTANCE = """{ instance { runQueuingSupported runLauncher { name } info
  runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml }
  daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"""
SENSOR = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { status ticks(limit: 5) { status timestamp } } } ... on PythonError { message } } }"""
START_SENSOR = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
PARTITION_KEYS = """query($a: AssetKeyInput!) { assetNodeOrError(assetKey: $a) { __typename
  ... on AssetNode { partitionKeysByDimension(endIdx: 0) { name partitionKeys } } } }"""


def _rewards(app) -> set[tuple]:
    with app.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT u.email, pr.slug, b.reward_date, b.points FROM birthday_logs b
            JOIN passes_master p ON p.id = b.pass_id JOIN users u ON u.id = p.user_id
            JOIN programs pr ON pr.id = b.program_id""")
        ).all()
    return {tuple(row) for row in rows}


def _snapshot(app) -> dict:
    with app.connect() as conn:
        return {
            "logs": sorted(
                map(tuple, conn.execute(text("SELECT id, pass_id, year, reward_date, points FROM birthday_logs")).all())
            ),
            "notifications": sorted(
                map(tuple, conn.execute(text("SELECT id, status, attempts FROM notifications")).all())
            ),
            "balances": sorted(map(tuple, conn.execute(text("SELECT id, points_balance FROM passes_master")).all())),
        }


def _launch_backfill(deployment, title: str, programs: list[str] | None = None) -> str:
    """As the UI does it: the asset page's Materialize, the days, and in the launchpad optionally
    `programs: [slug]` (no config: every enabled program)."""
    return launch_backfill(
        deployment["gql"],
        [day.isoformat() for day in BACKFILL_DAYS],
        ["birthday_log", "birthday_notifications"],
        title,
        {"ops": {"birthday_log": {"config": {"programs": programs}}}} if programs else None,
    )


def _wait_backfill(deployment, backfill_id: str, timeout: float = 150) -> dict:
    gql, processes = deployment["gql"], deployment["processes"]
    backfill = wait_for_backfill(gql, backfill_id, timeout, watch=processes)
    assert backfill["status"] == "COMPLETED_SUCCESS", f"backfill {backfill_id}: {backfill}\n{processes.logs()}"
    assert backfill["numPartitions"] == len(BACKFILL_DAYS)
    runs = find_runs(gql, tags={"dagster/backfill": backfill_id})
    assert all(run["status"] == "SUCCESS" for run in runs), runs
    return {"backfill": backfill, "runs": runs}


# ---------------------------------------------------------------------------------------------
# the test


def test_webserver_and_daemon_end_to_end(deployment):
    gql, uploads, app = deployment["gql"], deployment["uploads"], deployment["app"]
    started = time.monotonic()
    timings = {}

    # 0. Both processes are up: the webserver serves GraphQL, the daemon heartbeats, on Postgres storage.
    entries = deployment["processes"].wait_until_loaded(120, query=WORKSPACE)
    instance = gql(INSTANCE)["instance"]
    assert "PostgresRunStorage" in instance["info"] and "PostgresEventLogStorage" in instance["info"]
    assert "PostgresScheduleStorage" in instance["info"], instance["info"]
    assert instance["runQueuingSupported"] and instance["runQueueConfig"]["maxConcurrentRuns"] == 10
    assert "key: loyalty/trigger" in instance["runQueueConfig"]["tagConcurrencyLimitsYaml"]

    def daemons_healthy():
        statuses = gql(INSTANCE)["instance"]["daemonHealth"]["allDaemonStatuses"]
        needed = {"SENSOR", "SCHEDULER", "BACKFILL", "QUEUED_RUN_COORDINATOR"}
        healthy = {s["daemonType"] for s in statuses if s["healthy"]}
        return needed <= healthy or f"healthy: {sorted(healthy)}"

    wait_for(
        "the daemon's sensor, scheduler, backfill and run-queue daemons to be healthy",
        daemons_healthy,
        90,
        interval=2,
        watch=deployment["processes"],
    )
    timings["up"] = time.monotonic() - started

    # 1. The code location loads with no errors and lists every asset, check, sensor, schedule and job.
    assert len(entries) == 1 and entries[0]["name"] == LOCATION, entries
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"code location failed to load: {location}"
    (repository,) = location["repositories"]
    assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
    checks = {
        f"{'/'.join(node['assetKey']['path'])}:{check['name']}"
        for node in repository["assetNodes"]
        for check in node["assetChecksOrError"].get("checks", [])
    }
    sensors = {s["name"] for s in repository["sensors"]}
    schedules = {s["name"] for s in repository["schedules"]}
    jobs = {j["name"] for j in repository["jobs"]}
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in repository["assetNodes"]}
    assert EXPECTED_ASSETS <= assets and EXPECTED_CHECKS <= checks, (assets, checks)
    assert EXPECTED_SENSORS <= sensors and EXPECTED_SCHEDULES <= schedules and EXPECTED_JOBS <= jobs
    assert {groups[a] for a in ("raw_upload", "validated_users", "users", "passes")} == {"ingestion"}
    assert {groups[a] for a in ("birthday_log", "birthday_notifications")} == {"birthdays"}
    # What the data team reads in the catalog: a description and an owner on every asset, and the
    # column schema of every asset that is a database table.
    nodes = {"/".join(n["assetKey"]["path"]): n for n in repository["assetNodes"]}
    assert all(n["description"] and n["owners"] for n in nodes.values()), {
        k: (n["description"], n["owners"]) for k, n in nodes.items()
    }
    for table in ("validated_users", "users", "passes", "birthday_log", "birthday_notifications"):
        labels = {entry["label"] for entry in nodes[table]["metadataEntries"]}
        assert "dagster/column_schema" in labels, f"{table} has no column schema: {labels}"
    from loyalty_pipeline.definitions import defs  # exactly what the code defines, no more, no less

    graph = defs.resolve_asset_graph()
    assert assets == {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert checks == {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert sensors == {s.name for s in defs.sensors} and schedules == {s.name for s in defs.schedules}

    # The failure alert's cursor starts at its first tick: let it tick before anything can fail.
    def ticked(name):
        return lambda: gql(SENSOR, {"s": selector(sensorName=name)})["sensorOrError"]["sensorState"]["ticks"]

    wait_for(
        "the first tick of run_failure_alert_sensor",
        ticked("run_failure_alert_sensor"),
        90,
        interval=2,
        watch=deployment["processes"],
    )

    # 2. Drop CSVs (two programs, a broken file, one for a program that does not exist), turn upload_sensor on.
    settled = time.time() - 60  # upload_sensor waits until a file is 5 s old: make it older

    def drop(key: str, content: str) -> None:
        path = uploads / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.utime(path, (settled, settled))

    for slug, rows in {**CSV_ROWS, GHOST: [("zed@example.com", "Zed", "")]}.items():
        drop(f"{slug}/customers.csv", "email,first_name,birth_date\n" + "".join(f"{e},{n},{b}\n" for e, n, b in rows))
    drop(BROKEN, "first_name\nNo Email\n")
    started_sensor = gql(START_SENSOR, {"s": selector(sensorName="upload_sensor")})["startSensor"]
    assert started_sensor.get("sensorState", {}).get("status") == "RUNNING", started_sensor

    batch = {f"{slug}/customers.csv" for slug in PROGRAMS} | {BROKEN}

    def statuses() -> dict:
        with app.connect() as conn:
            return dict(conn.execute(text("SELECT key, status FROM uploads")).all())

    wait_for(
        "the sensor's batch of three files to be ingested",
        lambda: set(statuses()) == batch and not {"queued", "running"} & set(statuses().values()) or str(statuses()),
        120,
        interval=2,
        watch=deployment["processes"],
    )
    runs = wait_for_runs(
        gql,
        "the batch's run to finish",
        60,
        tags={"dagster/sensor_name": "upload_sensor"},
        watch=deployment["processes"],
    )
    timings["ingestion"] = time.monotonic() - started
    (run,) = runs  # one run for the three files, on today's arrival partition
    assert (run["jobName"], run["status"], run["tags"]["dagster/partition"]) == (
        "ingest_upload_job",
        "SUCCESS",
        TODAY.isoformat(),
    ), run
    assert statuses() == {**{k: "succeeded" for k in batch - {BROKEN}}, BROKEN: "failed"}
    with app.connect() as conn:
        error = conn.execute(text("SELECT error FROM uploads WHERE key = :k"), {"k": BROKEN}).scalar_one()
    assert "no email column" in error, error
    upload_days = gql(PARTITION_KEYS, {"a": {"path": ["raw_upload"]}})["assetNodeOrError"]
    assert upload_days["partitionKeysByDimension"][0]["partitionKeys"][-1] >= TODAY.isoformat(), upload_days
    with app.connect() as conn:
        users = {row[0] for row in conn.execute(text("SELECT email FROM users"))}
        passes = dict(
            conn.execute(
                text(
                    "SELECT pr.slug, count(*) FROM passes_master p JOIN programs pr ON pr.id = p.program_id GROUP BY pr.slug"
                )
            ).all()
        )
    assert users == {e for rows in CSV_ROWS.values() for e, _, _ in rows}, users
    assert passes == {slug: len(rows) for slug, rows in CSV_ROWS.items()}, passes
    assert f"{GHOST}/customers.csv" not in statuses(), "a file waits while its program does not exist"

    # A bad file alone makes a run of its own that fails (step 5 checks its alert).
    drop(ALONE_BAD, "first_name\nBad\n")
    runs = wait_for_runs(
        gql,
        "the lone bad file's run to finish",
        120,
        tags={"dagster/sensor_name": "upload_sensor"},
        until=lambda found: len(found) == 2,
        watch=deployment["processes"],
    )

    # 3. Backfill birthday_log (and its notifications, i.e. birthday_job's assets) over 7 days x 2 programs.
    # The customers above joined "today" (the frozen clock); a backfill rewards only passes that existed on
    # the day, so make them long-standing customers first.
    with app.begin() as conn:
        conn.execute(text("UPDATE passes_master SET created_at = created_at - interval '90 days'"))
        conn.execute(
            text(
                "UPDATE users SET created_at = created_at - interval '90 days', "
                "birth_date_set_at = birth_date_set_at - interval '90 days'"
            )
        )

    # One program first, as the launchpad's `programs: [slug]` does, then every program.
    only_beta = _wait_backfill(deployment, _launch_backfill(deployment, "e2e backfill, beta", ["beta-books"]))
    assert {(e, slug) for e, slug, _, _ in _rewards(app)} == {
        (e, slug) for e, slug, _, _ in EXPECTED_REWARDS if slug == "beta-books"
    }
    assert len(only_beta["runs"]) == 1
    first = _wait_backfill(deployment, _launch_backfill(deployment, "e2e backfill"))
    timings["backfill"] = time.monotonic() - started
    assert _rewards(app) == EXPECTED_REWARDS
    # BackfillPolicy.single_run(): one run for the whole date range, every program in it.
    assert len(first["runs"]) == 1, [r["tags"] for r in first["runs"]]
    ranges = {
        (r["tags"].get("dagster/asset_partition_range_start"), r["tags"].get("dagster/asset_partition_range_end"))
        for r in first["runs"]
    }
    assert ranges == {(D[0].isoformat(), D[-1].isoformat())}, ranges
    with app.connect() as conn:  # each program's result per backfilled day, for the UI and the schedule
        # (the running schedule may also have done the frozen today by now: not this backfill's)
        per_day = conn.execute(
            text(
                "SELECT pr.slug, r.status, count(*), sum(r.rewarded) FROM birthday_runs r "
                "JOIN programs pr ON pr.id = r.program_id WHERE r.run_date BETWEEN :first AND :last "
                "GROUP BY pr.slug, r.status"
            ),
            {"first": D[0], "last": D[-1]},
        ).all()
    assert sorted(map(tuple, per_day)) == [
        ("alpha-cafe", "succeeded", len(D), 3),
        ("beta-books", "succeeded", len(D), 2),
    ], per_day
    after_first = _snapshot(app)
    assert all(status == "sent" for _, status, _ in after_first["notifications"]), after_first["notifications"]
    assert len(after_first["notifications"]) == len(EXPECTED_REWARDS)
    with app.connect() as conn:
        balances = dict(
            conn.execute(
                text("""SELECT u.email || ' ' || pr.slug, p.points_balance FROM passes_master p
            JOIN users u ON u.id = p.user_id JOIN programs pr ON pr.id = p.program_id WHERE p.points_balance > 0""")
            ).all()
        )
    assert balances == {f"{email} {slug}": points for email, slug, _, points in EXPECTED_REWARDS}
    sent_lines = (deployment["root"] / "notifications.jsonl").read_text().splitlines()
    assert len(sent_lines) == len(EXPECTED_REWARDS)

    # 4. The same backfill again: it runs, and adds nothing.
    second = _wait_backfill(deployment, _launch_backfill(deployment, "e2e backfill, again"))
    timings["rerun"] = time.monotonic() - started
    assert len(second["runs"]) == 1
    assert _snapshot(app) == after_first, "a second backfill must not add logs, notifications or points"
    assert (deployment["root"] / "notifications.jsonl").read_text().splitlines() == sent_lines

    # 5. The failed ingestion run raised a JSON alert through run_failure_alert_sensor.
    (failed_run,) = [r for r in runs if r["status"] == "FAILURE"]  # the lone bad file's run
    receiver = deployment["receiver"]
    wait_for(
        "the failure alert of the ghost-program run",
        lambda: receiver.requests,
        90,
        interval=2,
        watch=deployment["processes"],
    )
    (alert,) = [request.json() for request in receiver.requests]
    assert alert["run_id"] == failed_run["runId"]
    assert alert["partition"] == TODAY.isoformat() and alert["program"] == "alpha-cafe"
    assert alert["failed_assets"] == ["passes", "raw_upload", "users", "validated_users"]  # the one ingestion step
    assert ALONE_BAD in alert["error"] and "no email column" in alert["error"], alert
    assert alert["run_url"] == f"{deployment['base_url']}/runs/{failed_run['runId']}"
    with urllib.request.urlopen(alert["run_url"], timeout=30) as page:
        assert page.status == 200, "the alert's link opens the run page in the UI"

    timings["total"] = time.monotonic() - started
    print("e2e timings (s since start): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


# ---------------------------------------------------------------------------------------------
# automatic catch-up under the real daemon


def test_the_daemon_catches_up_the_days_it_missed(other_databases, tmp_path):
    """A program rewarded on day X; the daemon runs that morning, then is down for days; started again
    on X+4 (a pinned clock), it requests X+1..X+3 by itself, once each, and they are rewarded."""
    day_x = TODAY - timedelta(days=9)
    root = tmp_path
    production_home(root / "dagster_home")
    (root / "uploads").mkdir()
    app = make_engine(other_databases["app"].render_as_string(hide_password=False))
    dagster_db = make_engine(other_databases["dagster"].render_as_string(hide_password=False))
    migrate(app)
    born = {day_x + timedelta(days=n): f"born{n}@example.com" for n in range(5)}
    with app.begin() as conn:
        program = save_program(  # switched on the morning of day X (the test's clock, not the database's)
            conn,
            "daily-deli",
            "Daily Deli",
            birthday_bot_enabled=True,
            birthday_reward_points=7,
            enabled_since=datetime.combine(day_x, datetime.min.time(), tzinfo=timezone.utc).replace(hour=8),
        )
        for day, email in born.items():
            user = conn.execute(
                text(
                    "INSERT INTO users (email, first_name, birth_month, birth_day, created_at) "
                    "VALUES (:e, 'Pat', :m, :d, now() - interval '400 days') RETURNING id"
                ),
                {"e": email, "m": day.month, "d": day.day},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO passes_master (program_id, user_id, created_at) "
                    "VALUES (:p, :u, now() - interval '400 days')"
                ),
                {"p": program.id, "u": user},
            )

    def rewarded() -> dict:
        with app.connect() as conn:
            return dict(
                conn.execute(text("SELECT reward_date, count(*) FROM birthday_logs GROUP BY reward_date")).all()
            )

    def catchup_runs() -> list[str]:
        with dagster_db.connect() as conn:
            return sorted(
                conn.execute(
                    text(
                        "SELECT r.partition FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
                        "WHERE t.key = 'loyalty/trigger' AND t.value = 'catchup'"
                    )
                )
                .scalars()
                .all()
            )

    morning_x = datetime.combine(day_x, datetime.min.time(), tzinfo=timezone.utc).replace(hour=10)
    env = _environment(other_databases, root, morning_x)
    run_command(["loyalty", "rewards", "--date", day_x.isoformat()], env)
    assert rewarded() == {day_x: 1}

    with start_daemon(env, root, "dagster-daemon-day-x") as daemon:

        def catchup_ticked():
            with dagster_db.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT count(*) FROM job_ticks t JOIN jobs j ON j.job_origin_id = t.job_origin_id "
                        "WHERE j.job_body LIKE '%birthday_catchup_sensor%' AND t.status <> 'STARTED'"
                    )
                ).scalar_one()

        wait_for("the catch-up sensor's first tick", catchup_ticked, 120, interval=2, watch=[daemon])
    assert catchup_runs() == []  # nothing was missed on day X

    back = morning_x + timedelta(days=4, minutes=30)  # four days later, 10:30
    missed = [day_x + timedelta(days=n) for n in (1, 2, 3)]
    with start_daemon(_environment(other_databases, root, back), root, "dagster-daemon-back") as daemon:

        def caught_up():
            with app.connect() as conn:
                done = (
                    conn.execute(text("SELECT run_date FROM birthday_runs WHERE status = 'succeeded'")).scalars().all()
                )
            return set(missed) <= set(done) or f"succeeded days: {sorted(done)}"

        wait_for("the missed days to be rewarded by catch-up", caught_up, 240, interval=3, watch=[daemon])
        assert catchup_runs() == [day.isoformat() for day in missed]  # one run per missed day

        def ticked_again():  # a later tick of the sensor, after the runs finished
            with dagster_db.connect() as conn:
                return (
                    conn.execute(
                        text(
                            "SELECT count(*) FROM job_ticks t JOIN jobs j ON j.job_origin_id = t.job_origin_id "
                            "WHERE j.job_body LIKE '%birthday_catchup_sensor%'"
                        )
                    ).scalar_one()
                    >= 2
                )

        wait_for("another tick of birthday_catchup_sensor", ticked_again, 120, interval=3, watch=[daemon])
    assert catchup_runs() == [day.isoformat() for day in missed]  # once each
    counts = rewarded()
    assert {day: counts.get(day) for day in [day_x, *missed]} == {day: 1 for day in [day_x, *missed]}
    app.dispose()
    dagster_db.dispose()
