"""Benchmark cases: 200,000 customers (x scale) as legacy Excel .xls and as a vCard .vcf, read,
validated and loaded - the file kinds issue 19 added, beside benchmarks/xlsx_case.py's .xlsx.

    python benchmarks/workbook_cases.py [--kind xls|vcf|both] [--scale 1.0] [--database-url URL]

Both hold benchmarks/generate_csv.py's messy rows (seed 42, the generator of the CSV and .xlsx
cases). A .xls sheet holds at most 65,536 rows (BIFF8), so the .xls case is the 200,000 rows as
four 50,000-row workbooks (xlwt; every third all-digit phone a number cell), uploaded one after
the other; the .vcf case is one address book of 200,000 vCard 3.0 cards (N, FN, EMAIL, TEL;CELL,
BDAY as written). A child process (fresh interpreter, its own peak RSS) runs what the ingestion
assets run - read_upload, validate_upload, load_upload - into a throwaway database (a new
PostgreSQL database on LOYALTY_BENCH_POSTGRES_URL, or --database-url sqlite:///...).
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.xlsx_case import ADMIN_URL, FULL_ROWS, SEED, TODAY, _admin  # noqa: E402

XLS_ROWS_PER_FILE = 50_000  # under the format's 65,536 rows per sheet
RESULT_MARK = "WORKBOOK_CASE_RESULT "


def _rows(csv_path: Path):
    import polars as pl

    frame = pl.read_csv(csv_path, infer_schema=False, truncate_ragged_lines=True, quote_char='"')
    return frame.columns, frame


def write_xls(csv_path: Path, work: Path) -> list[Path]:
    """The generated rows as .xls workbooks of XLS_ROWS_PER_FILE rows each (header on every one)."""
    import xlwt

    header, frame = _rows(csv_path)
    phone = next(i for i, name in enumerate(header) if name.strip().lower() == "mobile")
    paths = []
    for part, offset in enumerate(range(0, frame.height, XLS_ROWS_PER_FILE), start=1):
        book = xlwt.Workbook(encoding="utf-8")
        sheet = book.add_sheet("Customers")
        for c, name in enumerate(header):
            sheet.write(0, c, name)
        for r, row in enumerate(frame.slice(offset, XLS_ROWS_PER_FILE).iter_rows(), start=1):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if c == phone and r % 3 == 0 and value.isdigit() and len(value) <= 15:
                    sheet.write(r, c, int(value))
                else:
                    sheet.write(r, c, value)
        path = work / f"customers-{part}.xls"
        book.save(str(path))
        paths.append(path)
    return paths


def _escaped(value: str) -> str:
    """A vCard 3.0 text value: backslash, comma, semicolon escaped; no line breaks."""
    flat = " ".join(value.splitlines())
    return flat.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")


def write_vcf(csv_path: Path, path: Path) -> int:
    """The generated rows as one vCard 3.0 address book; returns the card count."""
    header, frame = _rows(csv_path)
    column = {name.strip().lower(): i for i, name in enumerate(header)}
    first, last, email = column["first name"], column["surname"], column["email"]
    phone, born = column["mobile"], column["dob"]
    with path.open("w", encoding="utf-8", newline="") as out:
        for row in frame.iter_rows():
            given, family = row[first] or "", row[last] or ""
            lines = ["BEGIN:VCARD", "VERSION:3.0", f"N:{_escaped(family)};{_escaped(given)};;;"]
            lines.append(f"FN:{_escaped(' '.join(filter(None, (given, family))))}")
            if row[email]:
                lines.append(f"EMAIL;TYPE=INTERNET:{_escaped(row[email].strip())}")
            if row[phone]:
                lines.append(f"TEL;TYPE=CELL:{_escaped(row[phone])}")
            if row[born]:
                lines.append(f"BDAY:{_escaped(row[born])}")
            lines.append("END:VCARD")
            out.write("\r\n".join(lines) + "\r\n")
    return frame.height


def child(task: dict) -> dict:
    """Read, validate and load each file in turn; timings per stage and this process's peak RSS."""
    from loyalty_pipeline.csv_reader import read_upload
    from loyalty_pipeline.db import make_engine, migrate
    from loyalty_pipeline.ingest import load_upload
    from loyalty_pipeline.programs import save_program
    from loyalty_pipeline.validation import validate_upload

    engine = make_engine(task["db_url"])
    migrate(engine)
    with engine.begin() as conn:
        program = save_program(conn, "bench-pizza", "Bench Pizza", date_order="MDY", default_phone_region="US")
    totals = {"rows": 0, "accepted": 0, "users_created": 0, "read": 0.0, "validate": 0.0, "load": 0.0}
    for name in task["files"]:
        path = Path(name)
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
        del raw, validated
        totals["rows"] += result.rows_read
        totals["accepted"] += result.rows_accepted
        totals["users_created"] += result.users_created
        totals["read"] += read - started
        totals["validate"] += checked - read
        totals["load"] += loaded - checked
    engine.dispose()
    seconds = totals["read"] + totals["validate"] + totals["load"]
    return {
        "files": len(task["files"]),
        "rows": totals["rows"],
        "accepted": totals["accepted"],
        "users_created": totals["users_created"],
        "read_seconds": round(totals["read"], 3),
        "validate_seconds": round(totals["validate"], 3),
        "load_seconds": round(totals["load"], 3),
        "seconds": round(seconds, 3),
        "rows_per_s": round(totals["rows"] / seconds),
        "read_rows_per_s": round(totals["rows"] / totals["read"]),
        "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run_case(kind: str, scale: float, work: Path, database_url: str | None = None) -> dict:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from benchmarks.generate_csv import generate_csv

    csv_path = work / f"{kind}_case.csv"
    generate_csv(csv_path, int(FULL_ROWS * scale), seed=SEED)
    started = time.perf_counter()
    files = write_xls(csv_path, work) if kind == "xls" else [work / "customers.vcf"]
    if kind == "vcf":
        write_vcf(csv_path, files[0])
    generation = time.perf_counter() - started
    database = None
    if database_url is None:
        database = f"loyalty_bench_{kind}_{uuid.uuid4().hex[:8]}"
        with _admin(ADMIN_URL).connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        database_url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    try:
        task = {"files": [str(path) for path in files], "db_url": database_url}
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{kind} case failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        result = json.loads(lines[-1][len(RESULT_MARK) :])
    finally:
        if database:
            with _admin(ADMIN_URL).connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
    return {
        **result,
        "kind": kind,
        "file_bytes": sum(path.stat().st_size for path in files),
        "write_seconds": round(generation, 1),
        "database": make_url(database_url).get_backend_name(),
    }


def closing_note(result: dict) -> str:
    files = f"{result['files']} files, " if result["files"] > 1 else ""
    return (
        f"{result['kind']} {result['rows']:,} rows ({files}{result['file_bytes'] / 1e6:.1f} MB): "
        f"{result['rows_per_s']:,} rows/s end to end ({result['seconds']:.2f} s: read {result['read_seconds']:.2f} s "
        f"[{result['read_rows_per_s']:,} rows/s], validate {result['validate_seconds']:.2f} s, "
        f"load {result['load_seconds']:.2f} s on {result['database']}), peak RSS {result['maxrss_bytes'] / 2**20:,.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("xls", "vcf", "both"), default="both")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 200,000 rows")
    parser.add_argument("--database-url", help="load into this database instead of a new PostgreSQL one")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT_MARK + json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    results = []
    for kind in ("xls", "vcf") if args.kind == "both" else (args.kind,):
        with tempfile.TemporaryDirectory(prefix=f"loyalty_bench_{kind}_") as work:
            results.append(run_case(kind, args.scale, Path(work), args.database_url))
    print(json.dumps(results, indent=2))
    for result in results:
        print(closing_note(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
