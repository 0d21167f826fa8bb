"""The ingestion cases: file B (1,000,000 rows x scale) through the Dagster assets, against dlt, pandas,
the physical floor (a bare COPY of every row the ingest writes), a COPY of its accepted users,
the seed-style per-row import and the same assets on SQLite; the module docstring of
benchmarks/run.py says how each is measured.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path

from benchmarks import harness

FULL_ROWS = 1_000_000
FULL_SEED_SAMPLE = 5_000
COPY_REPEATS = 3
SEED = 42
PROGRAM = "bench"
FINGERPRINTS_PATH = Path(__file__).resolve().parent / "fingerprints.json"


def child_ingest(task: dict) -> dict:
    from dagster import materialize

    from assets.ingestion import batch_config, ingest_uploads
    from assets.partitions import arrival_day
    from loyalty_pipeline.definitions import build_resources

    settings = harness.bench_settings(task)
    instance = harness.bench_instance(task)
    key = task["key"]
    resources = build_resources(settings, frozen_now=harness.FROZEN_NOW)
    day = arrival_day(datetime.fromisoformat(harness.FROZEN_NOW))
    started = time.perf_counter()
    result = materialize(
        [ingest_uploads],
        partition_key=day,
        instance=instance,
        resources=resources,
        run_config={**harness.QUIET, **batch_config([key])},
        raise_on_error=False,
    )
    seconds = time.perf_counter() - started
    if not result.success:
        from loyalty_pipeline.run_results import failure_reason

        raise RuntimeError(f"ingest of {key} failed: {failure_reason(result)}")
    return {"seconds": seconds, "metadata": harness.run_metadata(result)}


def setup_program(url: str) -> None:
    from loyalty_pipeline.db import make_engine, migrate
    from loyalty_pipeline.programs import save_program

    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        save_program(conn, PROGRAM, "Bench Pizza", date_order="MDY", default_phone_region="US")
    engine.dispose()


def accepted_users_csv(path: Path) -> tuple[bytes, int]:
    """File B's accepted rows as the pipeline validates them (one row per email), as COPY input."""
    import io

    from loyalty_pipeline.csv_reader import read_csv
    from loyalty_pipeline.validation import validate_upload

    today = datetime.fromisoformat(harness.FROZEN_NOW).date()
    validated = validate_upload(read_csv(path), date_order="MDY", phone_region="US", today=today)
    users = validated.users.drop("line")
    buffer = io.BytesIO()
    users.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
    return buffer.getvalue(), users.height


def copy_baseline(url: str, payload: bytes, columns: list[str], repeats: int = COPY_REPEATS) -> list[float]:
    """A bare COPY of the accepted rows into an empty table shaped like users (indexes, defaults)."""
    times = []
    cols = ", ".join(columns)
    with harness.psycopg_conn(url) as conn:
        for _ in range(repeats):
            conn.execute("DROP TABLE IF EXISTS bench_copy_users")
            conn.execute("CREATE TABLE bench_copy_users (LIKE users INCLUDING ALL)")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(f"COPY bench_copy_users ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                        copy.write(payload)
            times.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_copy_users")
    return times


_SEED_UPSERT = """
WITH u AS (
    INSERT INTO seed.users (email, first_name, last_name, birth_date, birth_month, birth_day,
                            birth_date_set_at, phone_number, created_at, updated_at)
    VALUES (%(email)s, %(first_name)s, %(last_name)s, %(birth_date)s, %(birth_month)s, %(birth_day)s,
            CASE WHEN %(birth_month)s::smallint IS NOT NULL THEN now() END, %(phone)s, now(), now())
    ON CONFLICT (email) DO UPDATE SET
        first_name = COALESCE(EXCLUDED.first_name, seed.users.first_name),
        last_name = COALESCE(EXCLUDED.last_name, seed.users.last_name),
        birth_date = COALESCE(EXCLUDED.birth_date, seed.users.birth_date),
        birth_month = COALESCE(EXCLUDED.birth_month, seed.users.birth_month),
        birth_day = COALESCE(EXCLUDED.birth_day, seed.users.birth_day),
        phone_number = COALESCE(EXCLUDED.phone_number, seed.users.phone_number),
        updated_at = now()
    RETURNING id
)
INSERT INTO seed.passes_master (program_id, user_id, status, points_balance, created_at)
SELECT %(program_id)s, id, 'active', 0, now() FROM u
ON CONFLICT (program_id, user_id) DO NOTHING
"""


def seed_style_baseline(url: str, path: Path, sample_rows: int) -> dict:
    """The seed script's shape: csv.DictReader, per-row dateutil/phonenumbers, one upsert per row,
    each its own transaction (autocommit), against tables in the state the measured file meets."""
    import csv
    import io
    import re

    import phonenumbers
    from dateutil import parser as dateparser

    from loyalty_pipeline.csv_reader import normalize_header
    from loyalty_pipeline.validation import EMAIL_PATTERN

    email_re = re.compile(EMAIL_PATTERN)
    with harness.psycopg_conn(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS seed CASCADE")
        conn.execute("CREATE SCHEMA seed")
        conn.execute("CREATE TABLE seed.users (LIKE public.users INCLUDING ALL)")
        conn.execute("CREATE TABLE seed.passes_master (LIKE public.passes_master INCLUDING ALL)")
        conn.execute("INSERT INTO seed.users SELECT * FROM public.users")
        conn.execute("INSERT INTO seed.passes_master SELECT * FROM public.passes_master")
        conn.execute("VACUUM ANALYZE seed.users")
        conn.execute("VACUUM ANALYZE seed.passes_master")
        program_id = conn.execute("SELECT id FROM programs WHERE slug = %s", (PROGRAM,)).fetchone()[0]
        conn.execute("CHECKPOINT")

        default = datetime(1900, 1, 1)
        processed = upserts = 0
        started = time.perf_counter()
        text = path.read_bytes().decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [normalize_header(h) for h in next(reader)]
        with conn.cursor() as cur:
            for record in reader:
                if processed >= sample_rows:
                    break
                processed += 1
                row = dict(zip(header, record, strict=False))  # a short row leaves fields out
                email = (row.get("email") or "").strip().lower()
                if len(record) > len(header) or not email_re.match(email) or len(email) > 254:
                    continue
                birth = None
                raw_date = (row.get("birth_date") or "").strip()
                if raw_date:
                    try:
                        birth = dateparser.parse(raw_date, default=default).date()
                    except (ValueError, OverflowError):
                        birth = None
                phone = None
                raw_phone = (row.get("phone_number") or "").strip()
                if raw_phone:
                    try:
                        number = phonenumbers.parse(raw_phone, "US")
                        if phonenumbers.is_valid_number(number):
                            phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    except phonenumbers.NumberParseException:
                        pass
                cur.execute(
                    _SEED_UPSERT,
                    {
                        "email": email,
                        "first_name": (row.get("first_name") or "").strip()[:1000] or None,
                        "last_name": (row.get("last_name") or "").strip()[:1000] or None,
                        "birth_date": birth,
                        "birth_month": birth.month if birth else None,
                        "birth_day": birth.day if birth else None,
                        "phone": phone,
                        "program_id": program_id,
                    },
                )
                upserts += 1
        seconds = time.perf_counter() - started
        conn.execute("DROP SCHEMA seed CASCADE")
    return {"rows": processed, "upserts": upserts, "seconds": seconds}


_FLOOR_TABLES = {"users": "floor_users", "passes_master": "floor_passes", "upload_issues": "floor_issues"}


def rows_written(url: str, key: str) -> dict[str, bytes]:
    """Every row the ingest of `key` wrote, as COPY data: the rows of users, passes_master and
    upload_issues whose current version the upload's transaction created (its xid, read from the
    uploads row it updated last). Taken right after the measured ingest, before the re-import."""
    out = {}
    with harness.psycopg_conn(url) as conn:
        xid = conn.execute("SELECT xmin::text FROM uploads WHERE key = %s", (key,)).fetchone()[0]
        for table in _FLOOR_TABLES:
            buffer = bytearray()
            with conn.cursor().copy(f"COPY (SELECT * FROM {table} WHERE xmin = '{int(xid)}'::xid) TO STDOUT") as copy:
                for chunk in copy:
                    buffer += chunk
            out[table] = bytes(buffer)
    return out


def floor_copy(url: str, rows: dict[str, bytes], *, foreign_keys: bool = False) -> float:
    """The physical floor: a bare COPY of exactly those rows, in one transaction, into empty tables
    with the same columns, defaults and indexes (LIKE ... INCLUDING ALL; no triggers). The fair
    floor (`foreign_keys`) also has the foreign keys of the real tables, pointing at the same
    referenced tables (a new pass's user and program, an issue's upload), checked row by row as
    the contract requires of every writer."""
    with harness.psycopg_conn(url) as conn:
        for table, floor in _FLOOR_TABLES.items():
            conn.execute(f"DROP TABLE IF EXISTS {floor}")
            conn.execute(f"CREATE TABLE {floor} (LIKE {table} INCLUDING ALL)")
            if foreign_keys:
                keys = conn.execute(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
                    (table,),
                ).fetchall()
                for (definition,) in keys:
                    conn.execute(f"ALTER TABLE {floor} ADD {definition}")
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            for table, floor in _FLOOR_TABLES.items():
                with cur.copy(f"COPY {floor} FROM STDIN") as copy:
                    copy.write(rows[table])
        seconds = time.perf_counter() - started
        for floor in _FLOOR_TABLES.values():
            conn.execute(f"DROP TABLE {floor}")
    return seconds


_FINGERPRINT_QUERIES = {
    "users": "SELECT email, first_name, last_name, birth_date, birth_month, birth_day, phone_number FROM users "
    "ORDER BY email",
    "passes": "SELECT u.email, pr.slug, p.status, p.points_balance FROM passes_master p "
    "JOIN users u ON u.id = p.user_id JOIN programs pr ON pr.id = p.program_id ORDER BY u.email, pr.slug",
    "upload_issues": 'SELECT upload_key, line, "column", value, severity, reason FROM upload_issues '
    'ORDER BY upload_key, line, "column", reason',
    "uploads": "SELECT key, rows_read, rows_accepted, rows_rejected, warnings, users_created, users_updated, "
    "passes_created FROM uploads ORDER BY key",
}


def fingerprint(url: str) -> dict:
    """Row count and a SHA-256 of every table's content the ingest decides (no ids or timestamps),
    read the same way from Postgres and SQLite, so both databases and every version of the code can
    be compared."""
    import hashlib

    from loyalty_pipeline.db import make_engine

    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for name, query in _FINGERPRINT_QUERIES.items():
            digest, count = hashlib.sha256(), 0
            for row in conn.exec_driver_sql(query).yield_per(50_000):
                digest.update("\x1f".join("\\N" if v is None else str(v) for v in row).encode() + b"\x1e")
                count += 1
            out[name] = {"rows": count, "sha256": digest.hexdigest()}
    engine.dispose()
    return out


def copy_sqlite(source: Path, target: Path) -> str:
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


def ingestion_cases(
    scale: float,
    work: Path,
    bench_id: str,
    measurements: dict,
    repeats: int,
    sqlite_repeats: int = 1,
    *,
    record_fingerprints: bool = False,
) -> dict:
    from benchmarks.generate_csv import generate_csv
    from benchmarks.peers import dlt_prepare

    rows = int(FULL_ROWS * scale)
    name = f"loyalty_bench_{bench_id}_ingest"
    peers_name = f"loyalty_bench_{bench_id}_peers"
    databases = [name, peers_name]
    url = harness.create_database(name)
    peers_url = harness.create_database(peers_name)
    try:
        setup_program(url)
        uploads = work / "uploads" / PROGRAM
        harness.log(f"generating 2 x {rows:,} rows")
        file_a = generate_csv(uploads / "first.csv", rows, seed=SEED)
        file_b = generate_csv(
            uploads / "second.csv", rows, seed=SEED, existing_emails_fraction=0.5, email_domain_offset=1
        )
        measurements["files"] = {"first": file_a, "second": file_b}
        task = {"kind": "ingest", "work_dir": str(work), **harness.CHILD_EXTRA}
        key = f"{PROGRAM}/second.csv"

        # Every tool meets file B in the same state: file A already loaded its own way.
        harness.log("file A through Dagster (fills users with the half file B shares)")
        first = harness.run_child({**task, "db_url": url, "key": f"{PROGRAM}/first.csv"})
        measurements["ingest_first_into_empty"] = first
        with harness.psycopg_conn(url) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done since that upload
        sqlite_dir = work / "sqlite"
        sqlite_dir.mkdir()
        sqlite_url = f"sqlite:///{sqlite_dir / 'state.db'}"
        setup_program(sqlite_url)
        harness.log("file A through Dagster on SQLite")
        measurements["sqlite_first_into_empty"] = harness.run_child(
            {**task, "db_url": sqlite_url, "key": f"{PROGRAM}/first.csv"}
        )
        harness.log("file A with dlt and with pandas (the peers' starting state)")
        dlt_dir = work / "dlt_state"
        measurements["dlt_first"] = harness.run_child(
            {"kind": "dlt", "db_url": peers_url, "path": file_a["path"], "pipelines_dir": str(dlt_dir)}
        )
        measurements["pandas_first"] = harness.run_child(
            {"kind": "pandas", "db_url": peers_url, "path": file_a["path"]}
        )
        with harness.psycopg_conn(peers_url) as conn:
            dlt_prepare(conn)
            conn.execute("VACUUM ANALYZE")

        sample = int(FULL_SEED_SAMPLE * scale)
        harness.log(f"seed-style baseline: {sample:,} rows one by one")
        seed = seed_style_baseline(url, uploads / "second.csv", sample)
        seed["extrapolated_seconds"] = seed["seconds"] / seed["rows"] * rows
        measurements["seed_style"] = seed

        payload, accepted = accepted_users_csv(uploads / "second.csv")
        columns = ["email", "first_name", "last_name", "birth_date", "birth_month", "birth_day", "phone_number"]
        runs: dict[str, list] = {k: [] for k in ("ingest", "reingest", "dlt", "pandas", "sqlite")}
        copies, floors, fk_floors, floor_rows, prints = [], [], [], None, {}
        for repeat in range(repeats):
            # One round = every tool once, each from a copy of the same state: noise hits all alike.
            copy_name = f"{name}_{repeat}"
            databases.append(copy_name)
            copy_url = harness.clone_database(name, copy_name)
            harness.checkpoint(copy_url)
            harness.log(f"round {repeat + 1}/{repeats}: file B through Dagster")
            runs["ingest"].append(harness.run_child({**task, "db_url": copy_url, "key": key}))
            # This round's rows: the fair floor's passes point at the users this round's ingest created.
            round_rows = rows_written(copy_url, key)
            if floor_rows is None:
                floor_rows = round_rows
                prints["postgres"] = fingerprint(copy_url)
            harness.checkpoint(copy_url)
            harness.log("file B again (nothing changed)")
            runs["reingest"].append(harness.run_child({**task, "db_url": copy_url, "key": key}))
            harness.log("COPY of file B's accepted users; COPY of every row the ingest wrote (the floors)")
            copies += copy_baseline(copy_url, payload, columns, max(1, COPY_REPEATS // repeats))
            floors.append(floor_copy(copy_url, round_rows))
            fk_floors.append(floor_copy(copy_url, round_rows, foreign_keys=True))
            if repeat == repeats - 1:
                with harness.psycopg_conn(copy_url) as conn:
                    measurements["database_after"] = {
                        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in ("users", "passes_master", "upload_issues")
                    }
            harness.drop_database(copy_name)

            peers_copy = f"{peers_name}_{repeat}"
            databases.append(peers_copy)
            peers_copy_url = harness.clone_database(peers_name, peers_copy)
            harness.checkpoint(peers_copy_url)
            harness.log("file B with dlt (merge, Arrow -> csv -> COPY)")
            state = work / f"dlt_state_{repeat}"
            shutil.copytree(dlt_dir, state)
            runs["dlt"].append(
                harness.run_child(
                    {"kind": "dlt", "db_url": peers_copy_url, "path": file_b["path"], "pipelines_dir": str(state)}
                )
            )
            shutil.rmtree(state)
            harness.checkpoint(peers_copy_url)
            harness.log("file B with pandas (to_sql + one upsert)")
            runs["pandas"].append(
                harness.run_child({"kind": "pandas", "db_url": peers_copy_url, "path": file_b["path"]})
            )
            if repeat == 0:
                with harness.psycopg_conn(peers_copy_url) as conn:
                    measurements["peers_after"] = {
                        "dlt_users": conn.execute("SELECT count(*) FROM dlt_bench.users").fetchone()[0],
                        "pandas_users": conn.execute("SELECT count(*) FROM pandas_users").fetchone()[0],
                    }
            harness.drop_database(peers_copy)

            if repeat >= sqlite_repeats:
                continue
            harness.log("file B through Dagster on SQLite")
            sqlite_copy = copy_sqlite(sqlite_dir / "state.db", sqlite_dir / f"round{repeat}.db")
            runs["sqlite"].append(harness.run_child({**task, "db_url": sqlite_copy, "key": key}))
            if repeat == 0:
                prints["sqlite"] = fingerprint(sqlite_copy)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_dir / f'round{repeat}.db'}{suffix}").unlink(missing_ok=True)

        median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        for k, v in runs.items():
            measurements[k] = {
                "seconds": median[k],
                "runs": v,
                "peak_rss_gb": round(max(r["maxrss_bytes"] for r in v) / 1e9, 3),
            }
        copy_seconds, floor_seconds = min(copies), min(floors)
        measurements["copy_baseline"] = {
            "rows": accepted,
            "bytes": len(payload),
            "seconds": copies,
            "best": copy_seconds,
            "rows_per_s": round(accepted / copy_seconds),
        }
        measurements["floor"] = {
            "seconds": floors,
            "best": floor_seconds,
            "with_foreign_keys": {"seconds": fk_floors, "best": min(fk_floors)},
            "rows": {t: data.count(b"\n") for t, data in floor_rows.items()},
            "bytes": sum(len(d) for d in floor_rows.values()),
        }
        measurements["fingerprints"] = prints
        measurements["fingerprints_check"] = check_fingerprints(prints, scale, record_fingerprints)
        ingest = median["ingest"]
        return {
            "ingest_vs_dlt": ingest / median["dlt"],
            "ingest_vs_pandas": ingest / median["pandas"],
            "ingest_vs_floor": ingest / floor_seconds,
            "ingest_vs_fk_floor": ingest / min(fk_floors),
            "reingest_vs_copy": median["reingest"] / copy_seconds,
            "ingest_peak_rss": max(r["maxrss_bytes"] for r in runs["ingest"]) / 1e9,
            "sqlite_vs_postgres": median["sqlite"] / ingest,
            "ingest_vs_copy": ingest / copy_seconds,
            "seed_style_vs_ours": seed["extrapolated_seconds"] / ingest,
        }
    finally:
        for database in databases:
            harness.drop_database(database)


def check_fingerprints(prints: dict, scale: float, record: bool = False) -> dict:
    """SQLite and Postgres must end in the same state, and both in the state the reference code
    left (benchmarks/fingerprints.json, per scale; --record-fingerprints writes it)."""
    check = {"sqlite_equals_postgres": prints.get("sqlite") == prints.get("postgres")}
    reference = json.loads(FINGERPRINTS_PATH.read_text()) if FINGERPRINTS_PATH.exists() else {}
    if str(scale) in reference:
        check["postgres_equals_reference"] = prints.get("postgres") == reference[str(scale)]
    if record:
        reference[str(scale)] = prints["postgres"]
        FINGERPRINTS_PATH.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
        check["recorded"] = True
    for name, ok in check.items():
        if ok is False:
            harness.log(f"FINGERPRINT MISMATCH: {name} ({json.dumps(prints)})")
    return check
