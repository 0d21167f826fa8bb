"""PostgreSQL unreachable at the start of a run (LOYALTY_DATABASE_URL pointing at a closed port, or
at a proxy that refuses connections) or lost in the middle of a transaction (pg_terminate_backend
on the run's connection): the run fails with one clear message and nothing half-written, and the
assets that talk to the database retry (Dagster RetryPolicy) and succeed once it is back.
The shared PostgreSQL server itself is never stopped."""

from __future__ import annotations

import threading
import time

import pytest
from dagster import instance_for_test, materialize
from sqlalchemy import text

from assets.birthdays import batch_config, birthday_log, birthday_notifications
from assets.ingestion import ingest_uploads
from assets.resources import DATABASE_RETRY
from loyalty_pipeline import cli
from loyalty_pipeline.dagster_internals import RETRY_DELAY_FUNCTION, retry_delay_module
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.programs import get_program, save_program
from loyalty_pipeline.run_results import failure_reason
from tests.conftest import _admin_engine
from tests.factories import folder_settings, ingest_run
from tests.reliability import jobs
from tests.reliability.helpers import (
    NOW,
    FlakyProxy,
    backends,
    closed_port,
    diff,
    ingest_file,
    ingestion_violations,
    record,
    reward_violations,
    snapshot,
    terminate,
    validate_file,
    with_application_name,
)

KEY = "joes-pizza/customers.csv"
CONTENT = (
    "email,first_name,dob\n"
    + "".join(f"cust{i}@example.com,C{i},03/{1 + i % 28:02d}/1990\n" for i in range(200))
    + "broken,x,\n"
)


def _uploaded(tmp_path, database_url: str):
    """Settings on `database_url` with the upload KEY in their uploads folder."""
    settings = folder_settings(database_url, tmp_path)
    path = settings.uploads_dir / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONTENT)
    return settings


def _ingest(instance, settings):
    return ingest_run(instance, settings, [KEY], resources=build_resources(settings, frozen_now=NOW.isoformat()))


def _events(result, kind: str) -> list:
    return [e for e in result.all_events if e.event_type_value == kind]


def _error_text(error) -> str:
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _retry_hooks(monkeypatch, delay: float | None) -> list:
    """`hooks` that run when Dagster schedules a retry (the moment a test brings the database
    back), with the retry delay shortened to `delay` s or, with None, Dagster's own."""
    hooks: list = []
    real = getattr(retry_delay_module(), RETRY_DELAY_FUNCTION)

    def calculate_delay(attempt_num, backoff, jitter, base_delay):
        for hook in hooks:
            hook(attempt_num)
        return real(attempt_num, backoff, jitter, base_delay) if delay is None else delay

    monkeypatch.setattr(retry_delay_module(), RETRY_DELAY_FUNCTION, calculate_delay)
    return hooks


@pytest.fixture
def fast_retries(monkeypatch):
    """Dagster's retry delays (5 s, 15 s, 35 s) shortened to 0.1 s, and the retry hooks."""
    return _retry_hooks(monkeypatch, 0.1)


@pytest.fixture
def retry_observer(monkeypatch):
    """Dagster's real retry delays, and the retry hooks."""
    return _retry_hooks(monkeypatch, None)


@pytest.fixture
def program_db(pg_db):
    url = pg_db("reliability")
    engine = make_engine(url)
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza", birthday_bot_enabled=True, birthday_reward_points=50)
    yield url, engine
    engine.dispose()


def test_every_asset_that_talks_to_the_database_has_a_retry_policy():
    assert DATABASE_RETRY.max_retries >= 1 and DATABASE_RETRY.delay > 0
    # a bad file fails alone (its uploads row), never retried; a lost connection retries the step
    for asset in (ingest_uploads, birthday_log, birthday_notifications):
        assert asset.node_def.retry_policy == DATABASE_RETRY, asset.node_def.name


@pytest.mark.parametrize(
    "command", [["ingest", "{file}", "--program", "joes-pizza"], ["rewards", "--date", "2026-11-26"], ["init-db"]]
)
def test_cli_with_the_database_on_a_closed_port_fails_with_one_clear_line(tmp_path, monkeypatch, capsys, command):
    record(cases_tried=1)
    port = closed_port()
    source = tmp_path / "customers.csv"
    source.write_text(CONTENT)
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/loyalty")
    monkeypatch.setenv("LOYALTY_UPLOADS_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    code = cli.main([arg.format(file=source) for arg in command])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith(f"loyalty {command[0]}: ")
    assert "Connection refused" in err and str(port) in err
    assert not (tmp_path / "uploads").exists()  # nothing copied before the database answered


def test_database_unreachable_at_start_then_back_the_real_retry_policy_succeeds(program_db, tmp_path, retry_observer):
    """No shortcut: the asset's own RetryPolicy (first retry after 5 s) while the proxy in front of
    PostgreSQL refuses connections until a second after the first attempt failed."""
    url, engine = program_db
    proxy = FlakyProxy()
    settings = _uploaded(tmp_path, proxy.url(url))
    timer = threading.Timer(1.0, proxy.up)
    retry_observer.append(lambda attempt: timer.start() if attempt == 1 else None)
    try:
        with instance_for_test() as instance:
            result = _ingest(instance, settings)
    finally:
        timer.cancel()
        proxy.down()
    assert result.success
    retries = _events(result, "STEP_UP_FOR_RETRY")
    assert [e.step_key for e in retries] == ["ingest_uploads"]
    assert "Connection refused" in _error_text(retries[0].event_specific_data.error)
    with engine.connect() as conn:
        program = get_program(conn, "joes-pizza")
    validated = validate_file(settings.uploads_dir / KEY, program, label=KEY)
    assert ingestion_violations(engine, [(KEY, program, validated)]) == []
    assert _count(engine, "users") == 200
    record(cases_tried=1)


@pytest.fixture(scope="module")
def run_with_database_down(pg_db, tmp_path_factory):
    """One ingestion run while the database refuses every connection (retry delays shortened),
    shared by the tests that read its outcome."""
    url = pg_db("reliability")
    engine = make_engine(url)
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza")
    proxy = FlakyProxy()  # never up during the run
    settings = _uploaded(tmp_path_factory.mktemp("down"), proxy.url(url))
    with pytest.MonkeyPatch.context() as patch, instance_for_test() as instance:
        _retry_hooks(patch, 0.1)
        result = _ingest(instance, settings)
        yield result, engine, proxy, settings, instance
    proxy.down()
    engine.dispose()


def test_database_down_for_the_whole_run_fails_once_clearly_writes_nothing_and_succeeds_on_retry(
    run_with_database_down,
):
    record(cases_tried=1)
    result, engine, proxy, settings, instance = run_with_database_down
    assert not result.success
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == DATABASE_RETRY.max_retries
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["ingest_uploads"]  # one failure; nothing written
    cause = failures[0].step_failure_data.error.cause
    assert "Connection refused" in cause.message.splitlines()[0] and str(proxy.port) in cause.message.splitlines()[0]
    for table in ("uploads", "upload_issues", "users", "passes_master"):
        assert _count(engine, table) == 0, table
    assert not (settings.reports_dir / f"{KEY}.issues.csv").exists()

    proxy.up()  # the database is back: the operator's retry of the run succeeds
    again = _ingest(instance, settings)
    assert again.success and _count(engine, "users") == 200


def test_the_cli_failure_reason_for_a_database_outage_names_the_problem(run_with_database_down):
    result, _, proxy, _, _ = run_with_database_down
    reason = failure_reason(result)
    assert "Connection refused" in reason and "sqlalche.me" not in reason


def _run_losing_its_connection(engine, url: str, tmp_path, hooks: list, application: str, run) -> tuple:
    """`run(settings)` on `url` under `application`, blocked inside its transaction (an EXCLUSIVE
    lock on passes_master lets it read and write everything before its first passes_master write);
    its backend is terminated while it waits, and the lock released when Dagster schedules the
    retry. The run's result, and what was observed: the terminated pid, the snapshot at the retry."""
    settings = folder_settings(with_application_name(url, application), tmp_path)
    admin = _admin_engine()
    observed: dict = {}
    watcher = _lock_passes_and_terminate_the_waiter(engine, admin, application, hooks, observed)
    result = run(settings)
    watcher.join(5)
    admin.dispose()
    assert "terminated" in observed, "the run never waited inside its transaction"
    return result, observed


def _lock_passes_and_terminate_the_waiter(engine, admin, application: str, hooks: list, observed: dict):
    blocker = engine.connect()
    lock = blocker.begin()
    blocker.execute(text("LOCK TABLE passes_master IN EXCLUSIVE MODE"))

    def release(_attempt):
        if lock.is_active:
            observed["at_retry"] = snapshot(engine)  # between the attempts: nothing half-written
            lock.commit()
            blocker.close()

    hooks.append(release)

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for pid, _state, in_transaction, has_xid, wait in backends(admin, application):
                if wait == "Lock" and in_transaction and has_xid and terminate(admin, pid):
                    observed["terminated"] = pid
                    record(backends_terminated=1)
                    return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_connection_lost_mid_transaction_in_users_and_passes_then_the_retry_succeeds(
    program_db, tmp_path, fast_retries
):
    record(cases_tried=1)
    url, engine = program_db
    with engine.connect() as conn:
        program = get_program(conn, "joes-pizza")
    settings = _uploaded(tmp_path, "unused")
    ingest_file(engine, program, settings.uploads_dir / KEY)  # the clean single run, for reference
    reference = snapshot(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE uploads, upload_issues, passes_master, users CASCADE"))

    def run(settings):
        with instance_for_test() as instance:
            return _ingest(instance, settings)

    result, observed = _run_losing_its_connection(engine, url, tmp_path, fast_retries, "reliability-run-ingest", run)
    assert result.success
    assert [e.step_key for e in _events(result, "STEP_UP_FOR_RETRY")] == ["ingest_uploads"]
    assert all(not rows for rows in observed["at_retry"].values())  # the lost attempt left nothing
    assert diff(reference, snapshot(engine)) == []


def test_connection_lost_mid_transaction_in_birthday_log_then_the_retry_succeeds(pg_db, tmp_path, fast_retries):
    record(cases_tried=1)
    url = pg_db("reliability")
    engine = make_engine(url)
    jobs.seed_reward_members(engine)
    day = "2026-11-05"
    with engine.connect() as conn:
        expected = conn.execute(
            text("""SELECT count(*) FROM passes_master p JOIN users u ON u.id = p.user_id
                                        JOIN programs pr ON pr.id = p.program_id
                                        WHERE pr.slug = 'alpha-pizza' AND u.birth_month = 11 AND u.birth_day = 5""")
        ).scalar_one()

    def run(settings):
        with instance_for_test() as instance:
            return materialize(
                [birthday_log],
                partition_key=day,
                run_config=batch_config(["alpha-pizza"]),
                instance=instance,
                raise_on_error=False,
                resources=build_resources(settings, frozen_now=jobs.REWARD_NOW),
            )

    result, observed = _run_losing_its_connection(engine, url, tmp_path, fast_retries, "reliability-run-birthday", run)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in _events(result, "STEP_UP_FOR_RETRY")] == ["birthday_log"]
    between = observed["at_retry"]
    assert between["birthday_logs"] == [] and between["notifications"] == []
    assert all(row[3] == "0" for row in between["passes"])  # no balance credited by the lost attempt
    assert reward_violations(engine) == []
    logs = snapshot(engine)["birthday_logs"]
    assert expected > 0 and len(logs) == expected and {row[3] for row in logs} == {day}
    engine.dispose()
