"""Test data written straight into the tables with SQL, so each test states exactly the rows a
rule depends on (birthdays, when they were set, when a pass was created, its status)."""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dagster import Definitions, in_process_executor, materialize
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from assets.birthdays import birthday_job, birthday_log, birthday_notifications
from assets.ingestion import batch_config, ingest_uploads
from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import db_time, make_engine, migrate
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.programs import Program, save_program

LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)
_serial = itertools.count(1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def make_program(engine: Engine, slug: str = "joes-pizza", **settings) -> Program:
    values = dict(name="Joe's Pizza", birthday_bot_enabled=True, birthday_reward_points=50)
    values.update(settings)
    with engine.begin() as conn:
        return save_program(conn, slug, **values)


def program_record(slug: str = "joes-pizza", **fields) -> Program:
    """A Program with no database behind it (for code that takes programs as values): enabled, 50
    points like make_program's, every other field a plain value unless given."""
    values = dict(
        id=slug,
        slug=slug,
        name=slug,
        birthday_bot_enabled=True,
        birthday_reward_points=50,
        birthday_message="Happy birthday!",
        default_phone_region="US",
        date_order="MDY",
        timezone=None,
        birthday_min_notice_days=0,
        birthday_max_delay_days=30,
        birthday_send_hour=9,
    )
    return Program(**{**values, **fields})


def birthday_definitions(resources: dict, **more) -> Definitions:
    """The birthday job and its assets on `resources`, in process, with `more` (schedules, sensors)."""
    return Definitions(
        assets=[birthday_log, birthday_notifications],
        jobs=[birthday_job],
        resources=resources,
        executor=in_process_executor,
        **more,
    )


def switched_on(engine: Engine, moment: datetime, *slugs: str) -> None:
    """Say when the programs' birthday bots were switched on (every program's without slugs), as a
    writer with its own clock does: the programs trigger stamps the database's clock otherwise."""
    where = " WHERE slug IN (" + ", ".join(f":s{i}" for i in range(len(slugs))) + ")" if slugs else ""
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE programs SET birthday_enabled_since = :at{where}"),
            {"at": db_time(conn, moment), **{f"s{i}": slug for i, slug in enumerate(slugs)}},
        )


def insert_user(
    conn: Connection,
    *,
    birthday: tuple[int, int] | None,
    year: int | None = 1990,
    first_name: str | None = "Ada",
    email: str | None = None,
    birth_date_set_at: datetime | None = LONG_AGO,
    created_at: datetime = LONG_AGO,
) -> str:
    """A user born on `birthday` (month, day); year=None stores a year-less birthday."""
    month, day = birthday if birthday else (None, None)
    birth_date = date(year, month, day) if birthday and year else None
    return str(
        conn.execute(
            text("""INSERT INTO users (email, first_name, birth_date, birth_month, birth_day, birth_date_set_at,
                                   created_at, updated_at)
                VALUES (:email, :first_name, :birth_date, :month, :day, :set_at, :created, :created)
                RETURNING id"""),
            {
                "email": email or f"user{next(_serial)}@example.com",
                "first_name": first_name,
                "birth_date": birth_date,
                "month": month,
                "day": day,
                "set_at": db_time(conn, birth_date_set_at) if birth_date_set_at else None,
                "created": db_time(conn, created_at),
            },
        ).scalar_one()
    )


def insert_pass(
    conn: Connection,
    program: Program,
    user_id: str,
    *,
    status: str = "active",
    created_at: datetime = LONG_AGO,
    points_balance: int = 0,
) -> str:
    return str(
        conn.execute(
            text("""INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
                VALUES (:program_id, :user_id, :status, :balance, :created) RETURNING id"""),
            {
                "program_id": program.id,
                "user_id": user_id,
                "status": status,
                "balance": points_balance,
                "created": db_time(conn, created_at),
            },
        ).scalar_one()
    )


def member(
    engine: Engine,
    program: Program,
    birthday: tuple[int, int] | None,
    *,
    status: str = "active",
    pass_created_at: datetime = LONG_AGO,
    points_balance: int = 0,
    **user,
) -> str:
    """A user with a pass in `program`; returns the pass id."""
    with engine.begin() as conn:
        user_id = insert_user(conn, birthday=birthday, **user)
        return insert_pass(
            conn, program, user_id, status=status, created_at=pass_created_at, points_balance=points_balance
        )


def set_birthday(engine: Engine, pass_id: str, birthday: tuple[int, int], set_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""UPDATE users SET birth_month = :m, birth_day = :d, birth_date = NULL, birth_date_set_at = :at
                    WHERE id = (SELECT user_id FROM passes_master WHERE id = :p)"""),
            {"m": birthday[0], "d": birthday[1], "at": db_time(conn, set_at), "p": pass_id},
        )


def rewarded_passes(engine: Engine, program: Program | None = None) -> list[tuple[str, str]]:
    """(pass_id, reward_date ISO) of every birthday_logs row, sorted."""
    where = "WHERE program_id = :program_id" if program else ""
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT pass_id, reward_date FROM birthday_logs {where}"),
            {"program_id": program.id} if program else {},
        ).all()
    return sorted((str(p), str(d)) for p, d in rows)


def count(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def balance(engine: Engine, pass_id: str) -> int:
    return count(engine, "SELECT points_balance FROM passes_master WHERE id = :p", p=pass_id)


@dataclass
class ReceivedPost:
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class HttpReceiver:
    """A webhook endpoint on 127.0.0.1 (a free port) for the tests of the code that POSTs: records
    each request and answers with `answer(request)`, which returns a status, (status, body) or
    (status, body, headers), or "hang" to stall until stop(). Use the `http_receiver` fixture;
    a module-scoped fixture may start one itself and must stop() it."""

    def __init__(self, answer):
        self.requests: list[ReceivedPost] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                request = ReceivedPost(dict(self.headers), self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with receiver.lock:
                    receiver.requests.append(request)
                    reply = answer(request)
                if reply == "hang":
                    receiver.release.wait(10)
                    reply = 200
                reply = reply if isinstance(reply, tuple) else (reply,)
                status, body, headers = reply + ((b"ok", {})[len(reply) - 1 :])
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def answers(*plan):
    """An `answer` giving each POST the next entry of `plan`; the last one repeats."""
    queue = list(plan)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def write_csv(path: Path, text_or_bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text_or_bytes, bytes):
        path.write_bytes(text_or_bytes)
    else:
        path.write_text(text_or_bytes, encoding="utf-8", newline="")
    return path


def folder_settings(database_url: str, folder: Path) -> Settings:
    """Settings on `database_url`, with every folder (uploads, reports) under `folder`."""
    return Settings(
        database_url=database_url,
        uploads_dir=folder / "uploads",
        timezone="UTC",
        reports_dir=folder / "reports",
    )


def sqlite_world(tmp_path: Path) -> tuple[Settings, Engine]:
    """A migrated SQLite application database with the program joes-pizza, and settings that keep
    every folder under tmp_path; the caller disposes of the engine."""
    settings = folder_settings(f"sqlite:///{tmp_path / 'loyalty.db'}", tmp_path)
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza")
    return settings, engine


INGESTION = [ingest_uploads]
# The pinned "now" of ingestion tests, and the arrival partition it falls in.
INGEST_NOW = "2026-11-26T10:00:00+00:00"
INGEST_DAY = "2026-11-26"


def ingest_run(instance, settings: Settings, keys: list[str], *, resources: dict | None = None, **config):
    """Materialize the ingestion assets for the uploads `keys` (already in the uploads folder)."""
    return materialize(
        INGESTION,
        partition_key=INGEST_DAY,
        instance=instance,
        raise_on_error=False,
        run_config=batch_config(keys, **config),
        resources=resources or build_resources(settings, frozen_now=INGEST_NOW),
    )


def run_upload(instance, settings: Settings, key: str, content):
    """Write `content` as the upload `key` and materialize the ingestion assets for it."""
    write_csv(settings.uploads_dir / key, content)
    return ingest_run(instance, settings, [key])


LEGACY_SQL_DIR = Path(__file__).resolve().parent / "data" / "legacy_sql"
# The hand-written runner of loyalty_pipeline/db.py before Alembic, kept verbatim so tests can build
# a database exactly as a deployment of that version left it (the files are its sql/ directory).
_LEGACY_SQLITE_UUID = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
_LEGACY_SQLITE_REWRITES = [
    (re.compile(r"gen_random_uuid\(\)"), _LEGACY_SQLITE_UUID),
    (re.compile(r"\bnow\(\)"), "CURRENT_TIMESTAMP"),
    (re.compile(r"\btimestamptz\b"), "timestamp"),
    (re.compile(r"\buuid\b(?= )"), "text"),
    (re.compile(r"ADD COLUMN IF NOT EXISTS"), "ADD COLUMN"),
]
_LEGACY_POSTGRES_ONLY = re.compile(r"^(CREATE (OR REPLACE )?FUNCTION|ALTER TABLE \w+ (DROP CONSTRAINT|ALTER COLUMN))")


def legacy_runner_migrate(engine: Engine, upto: str = "999") -> None:
    """Apply tests/data/legacy_sql/NNN_*.sql (up to and including `upto`) the way the old runner did."""
    postgres = engine.dialect.name == "postgresql"

    def for_dialect(statement: str) -> str:
        if postgres:
            return statement
        for pattern, replacement in _LEGACY_SQLITE_REWRITES:
            statement = pattern.sub(replacement, statement)
        return statement

    with engine.begin() as conn:
        conn.exec_driver_sql(
            for_dialect(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        for path in sorted(LEGACY_SQL_DIR.glob("[0-9][0-9][0-9]_*.sql")):
            if path.stem[:3] > upto:
                break
            lines = [
                line for line in path.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("--")
            ]
            for statement in (s.strip() for s in "\n".join(lines).split(";")):
                if not statement or (not postgres and _LEGACY_POSTGRES_ONLY.match(statement)):
                    continue
                conn.exec_driver_sql(for_dialect(statement))
            conn.execute(text("INSERT INTO schema_migrations (version) VALUES (:v)"), {"v": path.stem})


def load_csv(
    engine: Engine, program: Program, folder: Path, content: str, *, name: str = "u.csv", now: datetime | None = None
):
    """Ingest `content` as the pipeline does (read, validate, merge), without Dagster."""
    from loyalty_pipeline import ingest
    from loyalty_pipeline.csv_reader import read_csv
    from loyalty_pipeline.validation import validate_upload

    now = now or datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
    path = folder / program.slug / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", newline="")
    raw = read_csv(path)
    validated = validate_upload(
        raw, date_order=program.date_order, phone_region=program.default_phone_region, today=now.date()
    )
    return ingest.load_upload(
        engine,
        key=f"{program.slug}/{name}",
        file_name=name,
        sha256=raw.sha256,
        program=program,
        validated=validated,
        now=now,
    )


def set_csv_columns(engine: Engine, program: Program, value: str | None) -> None:
    """programs.csv_columns as the front end writes it: JSON text (or NULL)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE programs SET csv_columns = :value WHERE id = :id"), {"value": value, "id": program.id}
        )


def write_contacts_workbook(path: Path) -> Path:
    """A small .xlsx as Excel users make them: a notes sheet first, then a sheet with a title row
    above the header, a phone stored as a number, a birthday stored as a date, a date serial that
    lost its format, a blank row and a bad address (fake people)."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    notes = workbook.add_worksheet("Read me")
    notes.write(0, 0, "Exported for the loyalty program")
    sheet = workbook.add_worksheet("Customers")
    date_format = workbook.add_format({"num_format": "mm/dd/yyyy"})
    sheet.write(0, 0, "Customer list - November")  # row 1: a title
    sheet.write_row(1, 0, ["Email", "First Name", "Last Name", "Phone", "Birthday", "Member since"])  # row 2
    sheet.write_row(2, 0, ["ann.lee@example.com", "Ann", "Lee"])  # row 3
    sheet.write_number(2, 3, 4155550134)  # a phone stored as a number
    sheet.write_datetime(2, 4, datetime(1990, 3, 14), date_format)  # a date cell
    sheet.write_datetime(2, 5, datetime(2024, 5, 1), date_format)
    sheet.write_row(3, 0, ["bo.chan@example.com", "Bo", "Chan", "'+1 415 555 0178"])  # row 4
    sheet.write_number(3, 4, 32946)  # a serial: 1990-03-14
    sheet.write_row(5, 0, ["cy.diaz@example.com", "Cy", "Diaz", "(415) 555-0199", "03/21"])  # row 6 (row 5 blank)
    sheet.write_row(6, 0, ["not-an-address", "Dee", "Fox", "4155550100", "1991-01-01"])  # row 7
    workbook.close()
    return path


_SHEET_ROWS = [
    ["Customers"],  # row 1: a title
    ["Email", "First Name", "Last Name", "Mobile Phone", "Birthday"],  # row 2
    ["ann.lee@example.com", "Ann", "Lee", 4155550134, "1990-03-14"],  # a phone stored as a number
    ["bo.chan@example.com", "Bo", "Chan", "(415) 555-0178", "03/21"],
    ["not-an-address", "Dee", "Fox", "4155550100", ""],  # row 5
]


def write_contacts_sheet(path: Path) -> Path:
    """The same small customer sheet as a legacy .xls (xlwt) or a LibreOffice .ods (odfpy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xls":
        import xlwt

        book = xlwt.Workbook()
        sheet = book.add_sheet("Customers")
        for r, row in enumerate(_SHEET_ROWS):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
        book.save(str(path))
        return path
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Customers")
    for row in _SHEET_ROWS:
        line = TableRow()
        for value in row:
            number = isinstance(value, int)
            cell = TableCell(valuetype="float", value=value) if number else TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            line.addElement(cell)
        table.addElement(line)
    document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


def write_empty_workbook(path: Path) -> Path:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet("Sheet1")
    workbook.close()
    return path
