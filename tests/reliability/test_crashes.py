"""Crashes on PostgreSQL: the ingestion and the reward jobs are killed with SIGKILL at random
points (a subprocess, several seeds), or their database backend is terminated mid-transaction
(pg_terminate_backend). Right after the crash nothing is half-written; after a rerun the database
is exactly what one clean run produces (users, passes, uploads, issues, logs, notifications,
balances)."""

from __future__ import annotations

import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from loyalty_pipeline.db import make_engine
from loyalty_pipeline.programs import get_program
from tests.conftest import _admin_engine
from tests.reliability import helpers, jobs

WORKER = Path(__file__).with_name("crash_worker.py")
SIGKILL_SEEDS = [24, 37, 42]  # odd: a random delay; even: just after a random transaction began
TERMINATE_SEEDS = [5, 17]
MODES = ["ingest", "rewards"]


class Reference:
    def __init__(self, mode: str, payload, snapshot: dict, seconds: float, loads=None):
        self.mode, self.payload, self.snapshot, self.seconds, self.loads = mode, payload, snapshot, seconds, loads or []


def _seed(engine, mode: str) -> None:
    if mode == "ingest":
        jobs.seed_ingest_programs(engine)
    else:
        jobs.seed_reward_members(engine)


def _run(engine, reference: Reference) -> None:
    if reference.mode == "ingest":
        jobs.run_ingest(engine, reference.payload)
    else:
        jobs.run_rewards(engine, reference.payload)


@pytest.fixture(scope="module")
def references(pg_db, tmp_path_factory) -> dict[str, Reference]:
    """One clean run of each job (snapshotted before the next one empties the database): what every
    crashed-and-rerun database must equal."""
    out = {}
    directory = tmp_path_factory.mktemp("crash-uploads")
    for mode in MODES:
        engine = make_engine(pg_db("reliability"))
        _seed(engine, mode)
        payload = jobs.write_ingest_files(directory) if mode == "ingest" else jobs.reward_jobs()
        reference = Reference(mode, payload, {}, 0.0)
        started = time.perf_counter()
        _run(engine, reference)
        reference.seconds = time.perf_counter() - started
        reference.snapshot = helpers.snapshot(engine)
        if mode == "ingest":
            with engine.connect() as conn:
                for upload in payload:
                    program = get_program(conn, upload["slug"])
                    path = Path(upload["path"])
                    reference.loads.append(
                        (
                            f"{program.slug}/{path.name}",
                            program,
                            helpers.validate_file(path, program, label=f"{program.slug}/{path.name}"),
                        )
                    )
        assert (
            helpers.ingestion_violations(engine, reference.loads)
            if mode == "ingest"
            else helpers.reward_violations(engine)
        ) == []
        assert reference.snapshot["users"] and (mode == "ingest" or reference.snapshot["birthday_logs"])
        engine.dispose()
        out[mode] = reference
    return out


@pytest.fixture(scope="module")
def admin():
    engine = _admin_engine()
    yield engine
    engine.dispose()


@pytest.fixture
def scratch(pg_db, references):
    """The suite's database, emptied and seeded for `mode` (the reference runs used it before):
    that mode's clean run, and the database's URL."""

    def fresh(mode: str) -> tuple[Reference, str]:
        url = pg_db("reliability")
        engine = make_engine(url)
        _seed(engine, mode)
        engine.dispose()
        return references[mode], url

    return fresh


def _nothing_half_written(engine, reference: Reference) -> list[str]:
    if reference.mode == "ingest":
        # Program ids differ between databases: re-read them here.
        with engine.connect() as conn:
            loads = [(key, get_program(conn, program.slug), validated) for key, program, validated in reference.loads]
        return helpers.ingestion_violations(engine, loads)
    return helpers.reward_violations(engine)


def _assert_recovers(url: str, reference: Reference) -> None:
    """Right after the crash nothing is half-written; rerun, the database is exactly one clean run's."""
    engine = make_engine(url)
    try:
        assert _nothing_half_written(engine, reference) == []
    finally:
        engine.dispose()
    assert _rerun_and_compare(url, reference) == []


def _rerun_and_compare(url: str, reference: Reference) -> list[str]:
    engine = make_engine(url)
    try:
        _run(engine, reference)
        return helpers.diff(reference.snapshot, helpers.snapshot(engine))
    finally:
        engine.dispose()


def _read_lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.strip())
    sink.put(None)


@pytest.mark.parametrize("seed", SIGKILL_SEEDS)
@pytest.mark.parametrize("mode", MODES)
def test_sigkill_at_a_random_point_then_rerun_equals_one_clean_run(mode, seed, scratch, tmp_path):
    reference, url = scratch(mode)
    plan = jobs.dump_plan(tmp_path / "plan.json", mode, reference.payload)
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(plan), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(worker.stdout, lines), daemon=True).start()
    markers = []
    try:
        deadline = time.monotonic() + 60
        while "READY" not in markers:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"worker exited before READY: {worker.stderr.read()[-2000:]}"
            markers.append(line)
        rng = random.Random(seed)
        if seed % 2:  # anywhere in the first one and a half runs: start, mid-transaction, between files or days
            time.sleep(rng.uniform(0.0, 1.5 * reference.seconds))
        else:  # a few milliseconds after the n-th transaction began (mostly mid-transaction)
            target = rng.randint(1, 12)
            while sum(m == "BEGIN" for m in markers) < target:
                line = lines.get(timeout=60)
                assert line is not None, f"worker exited: {worker.stderr.read()[-2000:]}"
                markers.append(line)
            time.sleep(rng.uniform(0.0, 0.03))
        assert worker.poll() is None, f"worker died on its own: {worker.stderr.read()[-2000:]}"
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    while (line := lines.get(timeout=10)) is not None:
        markers.append(line)
    transaction_markers = [m for m in markers if m in ("BEGIN", "COMMIT", "ROLLBACK")]
    mid_transaction = bool(transaction_markers) and transaction_markers[-1] == "BEGIN"

    _assert_recovers(url, reference)
    helpers.record(kills_survived=1, kills_mid_transaction=int(mid_transaction))
    print(
        f"{mode} seed {seed}: killed after {sum(m.startswith('ITERATION') for m in markers)} full runs, "
        f"{transaction_markers.count('COMMIT')} commits, mid-transaction={mid_transaction}"
    )


@pytest.mark.parametrize("seed", TERMINATE_SEEDS)
@pytest.mark.parametrize("mode", MODES)
def test_backend_terminated_mid_transaction_then_rerun_equals_one_clean_run(mode, seed, scratch, admin):
    reference, url = scratch(mode)
    application = f"reliability-victim-{mode}-{seed}"
    victim = make_engine(helpers.with_application_name(url, application))
    errors: list[BaseException] = []

    def work():
        try:
            while True:
                _run(victim, reference)
        except BaseException as exc:  # the terminated connection ends the job, as it ends a run
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    time.sleep(random.Random(seed).uniform(0.0, reference.seconds))
    terminated: set[int] = set()  # a terminated backend stays listed until it has exited
    deadline = time.monotonic() + 60
    while thread.is_alive() and time.monotonic() < deadline:
        for pid, _state, in_transaction, _xid, _wait in helpers.backends(admin, application):
            if in_transaction and pid not in terminated and helpers.terminate(admin, pid):
                terminated.add(pid)
        thread.join(0.002)
    assert not thread.is_alive(), "the job survived 60 s of terminated backends"
    victim.dispose()
    assert len(errors) == 1 and isinstance(errors[0], DBAPIError), repr(errors)
    assert any(word in str(errors[0]) for word in ("terminat", "closed", "lost"))

    _assert_recovers(url, reference)
    helpers.record(backends_terminated=len(terminated))
