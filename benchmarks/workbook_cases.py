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

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.xlsx_case import FULL_ROWS, SEED, bench_program, case_parser, ingest_file, run_child, summary  # noqa: E402

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
    engine, program = bench_program(task["db_url"])
    totals = {"rows": 0, "accepted": 0, "users_created": 0, "read": 0.0, "validate": 0.0, "load": 0.0}
    for name in task["files"]:
        for stat, value in ingest_file(engine, program, Path(name)).items():
            totals[stat] += value
    engine.dispose()
    return {"files": len(task["files"]), **summary(totals)}


def run_case(kind: str, scale: float, work: Path, database_url: str | None = None) -> dict:
    from sqlalchemy.engine import make_url

    from benchmarks.generate_csv import generate_csv

    csv_path = work / f"{kind}_case.csv"
    generate_csv(csv_path, int(FULL_ROWS * scale), seed=SEED)
    started = time.perf_counter()
    files = write_xls(csv_path, work) if kind == "xls" else [work / "customers.vcf"]
    if kind == "vcf":
        write_vcf(csv_path, files[0])
    generation = time.perf_counter() - started
    task = {"files": [str(path) for path in files]}
    result, database_url = run_child(Path(__file__), task, RESULT_MARK, database_url, kind)
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
    parser = case_parser(__doc__)
    parser.add_argument("--kind", choices=("xls", "vcf", "both"), default="both")
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
