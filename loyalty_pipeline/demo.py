"""`loyalty demo`: two sample programs, their messy CSVs, and today's birthday run, on whatever
LOYALTY_DATABASE_URL points at (the embedded SQLite file by default)."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from sqlalchemy import text

from loyalty_pipeline.clock import now_utc
from loyalty_pipeline.config import DEFAULT_HOME, Settings
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.instance import dagster_instance
from loyalty_pipeline.programs import save_program
from loyalty_pipeline.run_results import failure_reason
from loyalty_pipeline.runs import ingest_file, run_birthdays
from loyalty_pipeline.summaries import upload_summary

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
# The two sample programs' settings, as rows of `programs` (slug -> columns).
PROGRAMS = json.loads((SAMPLE_DIR / "programs.json").read_text(encoding="utf-8"))


def _birthdays_today_csv(today: date) -> Path:
    """Static samples cannot know today's date, so the demo writes one more upload whose customers
    are born today (one without a year, one already in the sample files)."""
    path = DEFAULT_HOME / "demo" / "birthdays-today.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "last_name", "birth_date"])
        writer.writerow(["ada.birthday@example.com", "Ada", "Lovelace", f"{today.month:02d}/{today.day:02d}/1990"])
        writer.writerow(["noyear.birthday@example.com", "", "Anonymous", f"{today.month:02d}/{today.day:02d}"])
    return path


def run_demo(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as conn:
        for slug, config in PROGRAMS.items():
            save_program(conn, slug, **config)
    instance = dagster_instance()
    ok = True
    uploads = [(SAMPLE_DIR / f"{slug}.csv", slug) for slug in PROGRAMS]
    uploads.append((_birthdays_today_csv(now_utc().date()), "joes-pizza"))
    for path, slug in uploads:
        key, result = ingest_file(instance, settings, path, slug)
        if result.success:
            print(upload_summary(engine, key), end="\n\n")
        else:
            ok = False
            print(f"{key}: FAILED - {failure_reason(result)}\n")
    today = now_utc().date()
    for slug, success, summary in run_birthdays(instance, settings, today, today, None):
        ok = ok and success
        print(f"birthday run {today}|{slug}: {'ok' if success else 'FAILED'} - {summary}")
    with engine.connect() as conn:
        rewarded = conn.execute(
            text("""
            SELECT pr.slug, u.email, b.points, n.message FROM birthday_logs b
            JOIN programs pr ON pr.id = b.program_id JOIN passes_master p ON p.id = b.pass_id
            JOIN users u ON u.id = p.user_id JOIN notifications n ON n.birthday_log_id = b.id
            WHERE b.reward_date = :today ORDER BY pr.slug, u.email"""),
            {"today": today},
        ).all()
        users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
        passes = conn.execute(text("SELECT count(*) FROM passes_master")).scalar_one()
    print(f"\nrewarded today ({today}):")
    for slug, email, points, message in rewarded:
        print(f"  {slug:<12} {email:<32} +{points:<4} {message}")
    print(f"\ntotals: {users} users, {passes} passes on {settings.database_url}")
    print("open the Dagster UI with `make ui` to see the runs")
    return 0 if ok else 1
