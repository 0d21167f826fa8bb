"""Test data written straight into the tables with SQL, so each test states exactly the rows a
rule depends on (birthdays, when they were set, when a pass was created, its status)."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from loyalty_pipeline.db import db_time
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


def insert_user(conn: Connection, *, birthday: tuple[int, int] | None, year: int | None = 1990,
                first_name: str | None = "Ada", email: str | None = None,
                birth_date_set_at: datetime | None = LONG_AGO, created_at: datetime = LONG_AGO) -> str:
    """A user born on `birthday` (month, day); year=None stores a year-less birthday."""
    month, day = birthday if birthday else (None, None)
    birth_date = date(year, month, day) if birthday and year else None
    return str(conn.execute(
        text("""INSERT INTO users (email, first_name, birth_date, birth_month, birth_day, birth_date_set_at,
                                   created_at, updated_at)
                VALUES (:email, :first_name, :birth_date, :month, :day, :set_at, :created, :created)
                RETURNING id"""),
        {"email": email or f"user{next(_serial)}@example.com", "first_name": first_name,
         "birth_date": birth_date, "month": month, "day": day,
         "set_at": db_time(conn, birth_date_set_at) if birth_date_set_at else None,
         "created": db_time(conn, created_at)},
    ).scalar_one())


def insert_pass(conn: Connection, program: Program, user_id: str, *, status: str = "active",
                created_at: datetime = LONG_AGO, points_balance: int = 0) -> str:
    return str(conn.execute(
        text("""INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
                VALUES (:program_id, :user_id, :status, :balance, :created) RETURNING id"""),
        {"program_id": program.id, "user_id": user_id, "status": status, "balance": points_balance,
         "created": db_time(conn, created_at)},
    ).scalar_one())


def member(engine: Engine, program: Program, birthday: tuple[int, int] | None, *,
           status: str = "active", pass_created_at: datetime = LONG_AGO, points_balance: int = 0,
           **user) -> str:
    """A user with a pass in `program`; returns the pass id."""
    with engine.begin() as conn:
        user_id = insert_user(conn, birthday=birthday, **user)
        return insert_pass(conn, program, user_id, status=status, created_at=pass_created_at,
                           points_balance=points_balance)


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
        rows = conn.execute(text(f"SELECT pass_id, reward_date FROM birthday_logs {where}"),
                            {"program_id": program.id} if program else {}).all()
    return sorted((str(p), str(d)) for p, d in rows)


def count(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def balance(engine: Engine, pass_id: str) -> int:
    return count(engine, "SELECT points_balance FROM passes_master WHERE id = :p", p=pass_id)


class WebhookReceiver:
    """A webhook on 127.0.0.1 that records each POST and answers with the next queued status."""

    def __init__(self, statuses=()):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
