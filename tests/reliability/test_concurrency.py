"""Real concurrent transactions on PostgreSQL: ten uploads for ten programs sharing customers are
loaded at once (no deadlock, no lost update), and eight overlapping birthday runs and backfills
of one program race each other (each pass rewarded once per year; logs, notifications and
balances agree exactly)."""

from __future__ import annotations

import csv
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from loyalty_pipeline.db import make_engine
from loyalty_pipeline.ingest import load_upload
from loyalty_pipeline.programs import get_program, save_program
from loyalty_pipeline.rewards import award_birthdays
from tests.conftest import _admin_engine
from tests.reliability import jobs
from tests.reliability.helpers import (
    NOW,
    backends,
    diff,
    ingestion_violations,
    record,
    reward_violations,
    snapshot,
    validate_file,
    with_application_name,
)

PROGRAMS = [f"program-{k}" for k in range(10)]
USERS = 600
TIMEOUT = 120  # a deadlock that PostgreSQL did not detect would hang here, not forever


def _owners(i: int) -> dict[str, int]:
    """Which of the three files that carry user i sets which field (the others leave it blank)."""
    return {"first_name": i % 10, "last_name": (i + 3) % 10, "phone": (i + 7) % 10}


def _write_files(directory: Path, version: int, seed: int) -> dict[str, Path]:
    rng = random.Random(seed)
    rows: dict[int, list] = {k: [] for k in range(10)}
    for i in range(USERS):
        owners = _owners(i)
        born = date(1970 + i % 40, 1 + i % 12, 1 + i % 28)
        for k in set(owners.values()):
            email = f"shared{i:04d}@example.com"
            rows[k].append(
                [
                    email.upper() if (i + k) % 4 == 0 else email,
                    f"First{i}v{version}" if owners["first_name"] == k else "",
                    f"Last{i}v{version}" if owners["last_name"] == k else "",
                    born.isoformat(),
                    f"+121255{version}{i:04d}" if owners["phone"] == k else "",
                ]
            )
    paths = {}
    for k, slug in enumerate(PROGRAMS):
        body = rows[k] + [[f"broken-{k}-{j}", "x", "", "", ""] for j in range(5)]
        rng.shuffle(body)  # every file in its own order: the load must lock in a stable key order
        path = directory / f"v{version}" / slug / "customers.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "first_name", "last_name", "birth_date", "phone"])
            writer.writerows(body)
        paths[slug] = path
    return paths


def _expected_user(i: int, versions: dict[str, int]) -> tuple:
    owners = _owners(i)
    born = date(1970 + i % 40, 1 + i % 12, 1 + i % 28)
    first = versions[PROGRAMS[owners["first_name"]]]
    last = versions[PROGRAMS[owners["last_name"]]]
    phone = versions[PROGRAMS[owners["phone"]]]
    return (f"shared{i:04d}@example.com", f"First{i}v{first}", f"Last{i}v{last}", born, f"+121255{phone}{i:04d}")


def _load_at_once(engine, programs, validated_by_slug, paths) -> list:
    barrier = threading.Barrier(len(programs))

    def load(slug):
        program = programs[slug]
        barrier.wait(timeout=TIMEOUT)
        return load_upload(
            engine,
            key=f"{slug}/customers.csv",
            file_name="customers.csv",
            sha256=validated_by_slug[slug].sha256,
            program=program,
            validated=validated_by_slug[slug],
            now=NOW,
        )

    with ThreadPoolExecutor(max_workers=len(programs)) as pool:
        futures = [pool.submit(load, slug) for slug in programs]
        results = [future.result(timeout=TIMEOUT) for future in futures]  # re-raises a deadlock error
    record(concurrent_runs=len(programs))
    return results


def test_ten_uploads_with_overlapping_users_at_once(pg_db, tmp_path):
    url = pg_db("reliability")
    engine = make_engine(url)  # pool of 5 + 10 overflow: room for the ten concurrent transactions
    with engine.begin() as conn:
        programs = {slug: save_program(conn, slug, slug.title()) for slug in PROGRAMS}

    # Round 1 creates the users; round 2 (new file versions) changes every field of every user in
    # three concurrent transactions per user, each owning a different column; round 3 repeats
    # round 2 at once (idempotent under concurrency).
    versions = {slug: 0 for slug in PROGRAMS}
    for round_number, version in enumerate([1, 2, 2], start=1):
        paths = _write_files(tmp_path, version, seed=version)  # round 3 rewrites the same bytes
        validated = {
            slug: validate_file(paths[slug], programs[slug], label=f"{slug}/customers.csv") for slug in PROGRAMS
        }
        before = snapshot(engine) if round_number == 3 else None
        results = _load_at_once(engine, programs, validated, paths)
        versions = {slug: version for slug in PROGRAMS}

        assert ingestion_violations(engine, [(f"{s}/customers.csv", programs[s], validated[s]) for s in PROGRAMS]) == []
        with engine.connect() as conn:
            users = sorted(
                tuple(r)
                for r in conn.execute(
                    text("SELECT email, first_name, last_name, birth_date, phone_number FROM users ORDER BY email")
                )
            )
            passes = conn.execute(text("SELECT count(*) FROM passes_master")).scalar_one()
            issue_rows = conn.execute(text("SELECT count(*) FROM upload_issues WHERE severity = 'error'")).scalar_one()
        assert users == [_expected_user(i, versions) for i in range(USERS)], "a concurrent update was lost"
        assert passes == 3 * USERS  # each user is in exactly three programs
        assert issue_rows == 5 * len(PROGRAMS)
        if round_number == 1:
            assert sum(r.passes_created for r in results) == 3 * USERS
            assert sum(r.users_created for r in results) == USERS  # each user counted by the one upload that created it
        assert all(r.users_updated >= 0 for r in results)
        if round_number == 3:
            assert diff(before, snapshot(engine)) == []
            assert sum(r.passes_created for r in results) == 0
    engine.dispose()


RANGES = [(1, 14), (1, 14), (1, 7), (8, 14), (4, 11), (5, 5), (5, 5), (14, 14)]


@pytest.mark.parametrize("round_seed", [1, 2, 3])
def test_eight_overlapping_birthday_runs_and_backfills_of_one_program(pg_db, round_seed):
    url = pg_db("reliability")
    engine = make_engine(url)
    with engine.begin() as conn:
        save_program(
            conn,
            "solo",
            "Solo",
            birthday_bot_enabled=True,
            birthday_reward_points=15,
            birthday_message="{first_name}: {points} points from {program_name} {0} {{",
        )
        program = get_program(conn, "solo")
        conn.execute(
            text("""INSERT INTO users (email, first_name, birth_month, birth_day, birth_date_set_at, created_at, updated_at)
                             SELECT 'solo' || n || '@example.com', 'S' || n, 11, 1 + n % 20, '2020-01-01', '2020-01-01', '2020-01-01'
                             FROM generate_series(0, 799) AS n""")
        )
        conn.execute(
            text("""INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
                             SELECT :p, id, 'active', 0, '2020-01-01' FROM users"""),
            {"p": program.id},
        )
    first = jobs.REWARD_FIRST_DAY
    ranges = RANGES[:]
    random.Random(round_seed).shuffle(ranges)
    barrier = threading.Barrier(len(ranges))
    now = datetime.fromisoformat(jobs.REWARD_NOW)

    def run(span):
        days = [first + timedelta(days=d - 1) for d in range(span[0], span[1] + 1)]
        barrier.wait(timeout=TIMEOUT)
        return award_birthdays(engine, program_slug="solo", dates=days, now=now, default_timezone="UTC")

    with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
        results = [f.result(timeout=TIMEOUT) for f in [pool.submit(run, span) for span in ranges]]
    record(concurrent_runs=len(ranges))

    assert reward_violations(engine) == []
    with engine.connect() as conn:
        logs = conn.execute(
            text("SELECT count(*), count(DISTINCT pass_id), COALESCE(sum(points), 0) FROM birthday_logs")
        ).one()
        notifications = conn.execute(text("SELECT count(*) FROM notifications")).scalar_one()
        balance = conn.execute(text("SELECT sum(points_balance) FROM passes_master")).scalar_one()
        expected = conn.execute(text("SELECT count(*) FROM users WHERE birth_day BETWEEN 1 AND 14")).scalar_one()
        sample = conn.execute(text("SELECT message FROM notifications ORDER BY message LIMIT 1")).scalar_one()
    assert logs[0] == logs[1] == expected == sum(r.rewarded_now for r in results)  # once each, counted once
    assert notifications == logs[0] and balance == logs[2] == 15 * expected
    assert sample.endswith(": 15 points from Solo {0} {{")
    engine.dispose()


def test_users_created_counts_only_the_users_this_upload_created(pg_db, tmp_path):
    """Deterministic form of the race: another transaction inserts the same users, uncommitted,
    and commits while the upload's merge waits for it."""
    url = pg_db("reliability")
    engine = make_engine(url)
    with engine.begin() as conn:
        program = save_program(conn, "racer", "Racer")
    path = tmp_path / "racer" / "customers.csv"
    path.parent.mkdir(parents=True)
    path.write_text("email,first_name\n" + "".join(f"race{i}@example.com,R{i}\n" for i in range(50)))
    validated = validate_file(path, program, label="racer/customers.csv")
    loader = make_engine(with_application_name(url, "reliability-racer"))
    admin = _admin_engine()
    outcome: list = []
    with engine.connect() as other:
        transaction = other.begin()
        other.execute(
            text("INSERT INTO users (email, first_name) VALUES (:e, :f)"),
            [{"e": f"race{i}@example.com", "f": f"R{i}"} for i in range(50)],
        )
        thread = threading.Thread(
            target=lambda: outcome.append(
                load_upload(
                    loader,
                    key="racer/customers.csv",
                    file_name="customers.csv",
                    sha256=validated.sha256,
                    program=program,
                    validated=validated,
                    now=NOW,
                )
            )
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not any(wait == "Lock" for *_, wait in backends(admin, "reliability-racer")):
            assert time.monotonic() < deadline, "the upload never waited for the other transaction"
            time.sleep(0.01)
        transaction.commit()
        thread.join(TIMEOUT)
    record(concurrent_runs=2)
    loader.dispose()
    admin.dispose()
    engine.dispose()
    (result,) = outcome
    assert (result.users_created, result.passes_created) == (0, 50)
    assert result.users_updated >= 0
