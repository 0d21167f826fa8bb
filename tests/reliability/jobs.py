"""The work the crash and concurrency tests run, shared by the test process and the crash worker
subprocess (so it imports only the domain code, not Dagster or hypothesis: a worker starts fast).

Each job is deterministic for a fixed "now", so one clean run gives the reference database."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from loyalty_pipeline.csv_reader import read_csv
from loyalty_pipeline.ingest import IngestResult, load_upload
from loyalty_pipeline.programs import Program, get_program, save_program
from loyalty_pipeline.rewards import award_birthdays
from loyalty_pipeline.validation import ValidatedUpload, validate_upload

INGEST_NOW = "2026-11-26T10:00:00+00:00"
REWARD_NOW = "2026-11-26T12:00:00+00:00"
REWARD_FIRST_DAY = date(2026, 11, 1)
REWARD_DAYS = 14  # 1..14 November: all inside birthday_max_delay_days=30 of the frozen now

INGEST_PROGRAMS = {  # slug -> (date_order, phone region)
    "alpha-pizza": ("MDY", "US"),
    "beta-books": ("DMY", "GB"),
    "gamma-gym": ("MDY", "US"),
    "delta-deli": ("DMY", "GB"),
}
REWARD_PROGRAMS = {  # slug -> (points, message)
    "alpha-pizza": (10, "Happy birthday {first_name}! {program_name} added {points} points."),
    "beta-books": (25, "{first_name.__class__} {0} {{ %s - {points} from {program_name}"),
    "gamma-gym": (40, "Hi {first_name}"),
}


def _birthday(i: int) -> date:
    return date(1950 + i % 50, 1 + i % 12, 1 + (i * 7) % 28)


def write_ingest_files(directory: Path, users: int = 1600, seed: int = 7) -> list[dict]:
    """One file per program; every user appears in three of the four files with values that
    agree (a file may leave a cell blank, which never erases), so the result does not depend on
    the order the files are loaded in. Each file also has rejects and warnings."""
    rng = random.Random(seed)
    plan = []
    for k, (slug, (order, _region)) in enumerate(INGEST_PROGRAMS.items()):
        path = directory / slug / f"{slug}-customers.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(users):
            if i % 4 == k:
                continue
            born = _birthday(i)
            dob = born.strftime("%m/%d/%Y") if order == "MDY" else born.strftime("%d/%m/%Y")
            email = f"user{i:05d}@example.com"
            rows.append(
                [
                    email.upper() if (i + k) % 5 == 0 else email,
                    "" if (i + k) % 3 == 0 else f"First{i}",
                    "" if (i + k) % 4 == 1 else f"Last{i}",
                    "N/A" if i % 97 == 0 else dob,
                    f"+1212555{i % 10000:04d}" if i % 2 == 0 else "",
                ]
            )
        for j in range(20):
            rows.append([f"bad-email-{k}-{j}", "Bad", "", "", ""])
        rng.shuffle(rows)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "first_name", "last_name", "dob", "phone"])
            writer.writerows(rows)
        plan.append({"slug": slug, "path": str(path)})
    return plan


def seed_ingest_programs(engine: Engine) -> None:
    with engine.begin() as conn:
        for slug, (order, region) in INGEST_PROGRAMS.items():
            save_program(conn, slug, slug.replace("-", " ").title(), date_order=order, default_phone_region=region)


def load_file(engine: Engine, program: Program, path: Path, now: datetime) -> tuple[str, ValidatedUpload, IngestResult]:
    """read -> validate -> load one file of `program`, what the ingestion assets do for it: its key,
    the validated upload and what the load wrote."""
    key = f"{program.slug}/{path.name}"
    validated = validate_upload(
        read_csv(path, file_label=key),
        date_order=program.date_order,
        phone_region=program.default_phone_region,
        today=now.date(),
    )
    result = load_upload(
        engine, key=key, file_name=path.name, sha256=validated.sha256, program=program, validated=validated, now=now
    )
    return key, validated, result


def run_ingest(engine: Engine, uploads: list[dict], now: str = INGEST_NOW) -> None:
    moment = datetime.fromisoformat(now)
    for upload in uploads:
        with engine.connect() as conn:
            program = get_program(conn, upload["slug"])
        load_file(engine, program, Path(upload["path"]), moment)


def seed_reward_members(engine: Engine, users: int = 900) -> None:
    """Programs with the bot enabled, and `users` members whose birthdays fall on every day of
    the reward window (and outside it). Written with set-based SQL: seeding must be fast."""
    with engine.begin() as conn:
        for slug, (points, message) in REWARD_PROGRAMS.items():
            save_program(
                conn,
                slug,
                slug.replace("-", " ").title(),
                birthday_bot_enabled=True,
                birthday_reward_points=points,
                birthday_message=message,
            )
        rows = []
        for i in range(users):
            day = REWARD_FIRST_DAY + timedelta(days=i % 20)  # days 15..20 are outside the window
            rows.append(
                {
                    "email": f"member{i:05d}@example.com",
                    "first_name": None if i % 11 == 0 else f"Mem{{ber}}{i}",
                    "bd": date(1960 + i % 40, day.month, day.day),
                    "m": day.month,
                    "d": day.day,
                }
            )
        conn.execute(
            text("""INSERT INTO users (email, first_name, birth_date, birth_month, birth_day,
                                                birth_date_set_at, created_at, updated_at)
                             VALUES (:email, :first_name, :bd, :m, :d, '2020-01-01', '2020-01-01', '2020-01-01')"""),
            rows,
        )
        program_ids = [
            conn.execute(text("SELECT id FROM programs WHERE slug = :s"), {"s": s}).scalar_one()
            for s in REWARD_PROGRAMS
        ]
        for k, program_id in enumerate(program_ids):
            conn.execute(
                text(f"""INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
                                  SELECT :p, id, 'active', 0, '2020-01-01' FROM users
                                  WHERE (CAST(substr(email, 7, 5) AS integer) + {k}) % 3 <> 0"""),
                {"p": program_id},
            )


def reward_jobs() -> list[dict]:
    """Day by day for every program (the schedule), then a backfill of the whole window."""
    days = [(REWARD_FIRST_DAY + timedelta(days=n)).isoformat() for n in range(REWARD_DAYS)]
    jobs = [{"slug": slug, "dates": [day]} for day in days for slug in REWARD_PROGRAMS]
    jobs += [{"slug": slug, "dates": days} for slug in REWARD_PROGRAMS]
    return jobs


def run_rewards(engine: Engine, jobs: list[dict], now: str = REWARD_NOW) -> int:
    moment = datetime.fromisoformat(now)
    rewarded = 0
    for job in jobs:
        rewarded += award_birthdays(
            engine,
            program_slug=job["slug"],
            dates=[date.fromisoformat(d) for d in job["dates"]],
            now=moment,
            default_timezone="UTC",
        ).rewarded_now
    return rewarded


def dump_plan(path: Path, mode: str, payload) -> Path:
    path.write_text(json.dumps({"mode": mode, "payload": payload}))
    return path
