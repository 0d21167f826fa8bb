"""Benchmark case: a 200,000-row .xlsx upload (x scale), read, validated and loaded.

    python benchmarks/xlsx_case.py [--scale 1.0] [--database-url URL]

The workbook holds benchmarks/generate_csv.py's messy rows (seed 42, the same generator as the CSV
cases) the way Excel users save them: every third phone that is all digits is a number cell, every
fourth ISO birthday is a date cell, the rest is text. A child process (fresh interpreter, its own
peak RSS) then runs what the ingestion assets run - read_upload (calamine), validate_upload and
load_upload - into a throwaway database: a new PostgreSQL database on LOYALTY_BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres) or, with --database-url sqlite:///..., that
file. The same rows read as CSV are timed alongside for scale.

benchmarks/run.py can run it as one case: `measurements["xlsx"] = xlsx_case.run_case(scale, work)`
and print `xlsx_case.closing_note(measurements["xlsx"])`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL_ROWS = 200_000
SEED = 42
TODAY = date(2026, 6, 15)
ADMIN_URL = os.environ.get("LOYALTY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULT_MARK = "XLSX_CASE_RESULT "


def write_workbook(csv_path: Path, xlsx_path: Path) -> int:
    """The generated CSV's rows as an Excel user's workbook; returns the row count."""
    import polars as pl
    import xlsxwriter

    frame = pl.read_csv(csv_path, infer_schema=False, truncate_ragged_lines=True, quote_char='"')
    header = frame.columns
    phone = next(i for i, name in enumerate(header) if name.strip().lower() == "mobile")
    birthday = next(i for i, name in enumerate(header) if name.strip().lower() == "dob")
    workbook = xlsxwriter.Workbook(
        str(xlsx_path),
        {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
    sheet = workbook.add_worksheet("Customers")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, header)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            if c == phone and r % 3 == 0 and value.isdigit() and len(value) <= 15:
                sheet.write_number(r, c, int(value))
            elif c == birthday and r % 4 == 0 and len(value) == 10 and value[4] == "-" and value[7] == "-":
                try:
                    sheet.write_datetime(r, c, datetime.strptime(value, "%Y-%m-%d"), date_format)
                except ValueError:
                    sheet.write_string(r, c, value)
            else:
                sheet.write_string(r, c, value)
    workbook.close()
    return frame.height


def bench_program(db_url: str):
    """A migrated database at db_url with the benchmark's program: (engine, program)."""
    from loyalty_pipeline.db import make_engine, migrate
    from loyalty_pipeline.programs import save_program

    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        program = save_program(conn, "bench-pizza", "Bench Pizza", date_order="MDY", default_phone_region="US")
    return engine, program


def ingest_file(engine, program, path: Path) -> dict:
    """read_upload, validate_upload and load_upload of one file, as the ingestion assets run them:
    rows, accepted, users_created and the seconds of each stage."""
    from loyalty_pipeline.csv_reader import read_upload
    from loyalty_pipeline.ingest import load_upload
    from loyalty_pipeline.validation import validate_upload

    key = f"bench-pizza/{path.name}"
    started = time.perf_counter()
    raw = read_upload(path, file_label=key)
    read = time.perf_counter()
    validated = validate_upload(raw, date_order="MDY", phone_region="US", today=TODAY)
    checked = time.perf_counter()
    result = load_upload(
        engine,
        key=key,
        file_name=path.name,
        sha256=raw.sha256,
        program=program,
        validated=validated,
        now=datetime(2026, 6, 15, 12, tzinfo=UTC),
    )
    loaded = time.perf_counter()
    return {
        "rows": raw.rows_read,
        "accepted": result.rows_accepted,
        "users_created": result.users_created,
        "read": read - started,
        "validate": checked - read,
        "load": loaded - checked,
    }


def child(task: dict) -> dict:
    """Read, validate and load the workbook; timings per stage and this process's peak RSS."""
    from loyalty_pipeline.csv_reader import read_upload

    engine, program = bench_program(task["db_url"])
    done = ingest_file(engine, program, Path(task["xlsx"]))
    csv_started = time.perf_counter()
    read_upload(Path(task["csv"]))
    csv_read = time.perf_counter() - csv_started
    engine.dispose()
    return {
        **summary(done),
        "same_rows_as_csv_read_seconds": round(csv_read, 3),
    }


def summary(done: dict) -> dict:
    """ingest_file's counts and stage seconds (one file's or summed) as a case reports them, with
    rows/s and this process's peak RSS."""
    seconds = done["read"] + done["validate"] + done["load"]
    return {
        "rows": done["rows"],
        "accepted": done["accepted"],
        "users_created": done["users_created"],
        "read_seconds": round(done["read"], 3),
        "validate_seconds": round(done["validate"], 3),
        "load_seconds": round(done["load"], 3),
        "seconds": round(seconds, 3),
        "rows_per_s": round(done["rows"] / seconds),
        "read_rows_per_s": round(done["rows"] / done["read"]),
        "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _admin(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    return create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")


def run_child(script: Path, task: dict, mark: str, database_url: str | None, label: str) -> tuple[dict, str]:
    """`script --child <task + db_url>` in a fresh interpreter (its own peak RSS) against
    database_url, or a throwaway PostgreSQL database on ADMIN_URL dropped afterwards; returns the
    child's result (its line marked `mark`) and the database URL used."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    database = None
    if database_url is None:
        database = f"loyalty_bench_{label}_{uuid.uuid4().hex[:8]}"
        with _admin(ADMIN_URL).connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        database_url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    try:
        proc = subprocess.run(
            [sys.executable, str(script.resolve()), "--child", json.dumps({**task, "db_url": database_url})],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith(mark)]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{label} case failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(lines[-1][len(mark) :]), database_url
    finally:
        if database:
            with _admin(ADMIN_URL).connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))


def run_case(scale: float, work: Path, database_url: str | None = None) -> dict:
    from sqlalchemy.engine import make_url

    from benchmarks.generate_csv import generate_csv

    rows = int(FULL_ROWS * scale)
    csv_path = work / "xlsx_case.csv"
    xlsx_path = work / "xlsx_case.xlsx"
    generate_csv(csv_path, rows, seed=SEED)
    started = time.perf_counter()
    written = write_workbook(csv_path, xlsx_path)
    generation = time.perf_counter() - started
    task = {"xlsx": str(xlsx_path), "csv": str(csv_path)}
    result, database_url = run_child(Path(__file__), task, RESULT_MARK, database_url, "xlsx")
    return {
        **result,
        "workbook_rows": written,
        "workbook_bytes": xlsx_path.stat().st_size,
        "workbook_write_seconds": round(generation, 1),
        "database": make_url(database_url).get_backend_name(),
    }


def closing_note(result: dict) -> str:
    return (
        f"xlsx {result['rows']:,} rows ({result['workbook_bytes'] / 1e6:.1f} MB workbook): "
        f"{result['rows_per_s']:,} rows/s end to end ({result['seconds']:.2f} s: read {result['read_seconds']:.2f} s "
        f"[{result['read_rows_per_s']:,} rows/s; the same rows as CSV {result['same_rows_as_csv_read_seconds']:.2f} s], "
        f"validate {result['validate_seconds']:.2f} s, load {result['load_seconds']:.2f} s on {result['database']}), "
        f"peak RSS {result['maxrss_bytes'] / 2**20:,.0f} MiB"
    )


def case_parser(doc: str) -> argparse.ArgumentParser:
    """A case's command line: --scale, --database-url, and --child (the child process's task)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 200,000 rows")
    parser.add_argument("--database-url", help="load into this database instead of a new PostgreSQL one")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = case_parser(__doc__).parse_args(argv)
    if args.child:
        print(RESULT_MARK + json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="loyalty_bench_xlsx_") as work:
        result = run_case(args.scale, Path(work), args.database_url)
    print(json.dumps(result, indent=2))
    print(closing_note(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
