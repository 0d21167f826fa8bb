"""Shared pieces of the reliability suite: counters, the end-to-end ingestion call, database
snapshots keyed by natural keys (so two databases can be compared), the invariants every test
asserts, a TCP proxy that plays a PostgreSQL server going away, and pg_stat_activity helpers."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, settings
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from loyalty_pipeline.csv_reader import read_csv
from loyalty_pipeline.ingest import IngestResult
from loyalty_pipeline.programs import Program
from loyalty_pipeline.validation import ValidatedUpload, validate_upload
from tests.reliability import jobs

STATS: Counter = Counter()
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
TODAY = NOW.date()

# Modest and deterministic: CI has 2 cores, and a failure must reproduce on the next run.
# LOYALTY_RELIABILITY_EXAMPLES=5000 explores further (randomised) when hunting bugs by hand.
_EXPLORE = int(os.environ.get("LOYALTY_RELIABILITY_EXAMPLES") or 0)
PROPERTY_SETTINGS = settings(
    max_examples=_EXPLORE or 200,
    deadline=None,
    database=None,
    derandomize=not _EXPLORE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def record(**counts: int) -> None:
    STATS.update(counts)


# --- ingestion, in process --------------------------------------------------------------------


@dataclass
class Loaded:
    key: str
    validated: ValidatedUpload
    result: IngestResult


def validate_file(path: Path, program: Program, *, today: date = TODAY, label: str | None = None) -> ValidatedUpload:
    raw = read_csv(path, file_label=label)
    return validate_upload(raw, date_order=program.date_order, phone_region=program.default_phone_region, today=today)


def ingest_file(engine: Engine, program: Program, path: Path, *, now: datetime = NOW) -> Loaded:
    """read -> validate -> load, exactly what the three ingestion assets do for one partition."""
    return Loaded(*jobs.load_file(engine, program, path, now))


# --- snapshots --------------------------------------------------------------------------------


def _rows(conn, sql: str) -> list[tuple]:
    return sorted(tuple("" if v is None else str(v) for v in row) for row in conn.execute(text(sql)))


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Everything the pipeline writes, by natural key (ids and batch ids differ between databases)."""
    with engine.connect() as conn:
        return {
            "users": _rows(
                conn,
                """SELECT email, first_name, last_name, birth_date, birth_month, birth_day,
                                           phone_number, birth_date_set_at, created_at, updated_at FROM users""",
            ),
            "passes": _rows(
                conn,
                """SELECT pr.slug, u.email, p.status, p.points_balance, p.created_at
                                     FROM passes_master p JOIN programs pr ON pr.id = p.program_id
                                     JOIN users u ON u.id = p.user_id""",
            ),
            "uploads": _rows(
                conn,
                """SELECT key, file_name, sha256, rows_read, rows_accepted, rows_rejected, warnings
                                      FROM uploads""",
            ),
            "upload_issues": _rows(
                conn, 'SELECT upload_key, line, "column", value, severity, reason FROM upload_issues'
            ),
            "birthday_logs": _rows(
                conn,
                """SELECT pr.slug, u.email, b.year, b.reward_date, b.points
                                            FROM birthday_logs b JOIN programs pr ON pr.id = b.program_id
                                            JOIN passes_master p ON p.id = b.pass_id JOIN users u ON u.id = p.user_id""",
            ),
            "notifications": _rows(
                conn,
                """SELECT pr.slug, u.email, n.kind, n.message, n.status, n.attempts
                                            FROM notifications n JOIN programs pr ON pr.id = n.program_id
                                            JOIN users u ON u.id = n.user_id""",
            ),
        }


def diff(expected: dict, actual: dict) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    problems = []
    for table in expected:
        missing = set(expected[table]) - set(actual[table])
        extra = set(actual[table]) - set(expected[table])
        if missing or extra or len(expected[table]) != len(actual[table]):
            problems.append(
                f"{table}: {len(missing)} missing (e.g. {sorted(missing)[:2]}), "
                f"{len(extra)} unexpected (e.g. {sorted(extra)[:2]}), "
                f"{len(expected[table])} vs {len(actual[table])} rows"
            )
    return problems


# --- invariants -------------------------------------------------------------------------------


def ingestion_violations(engine: Engine, loads: list[tuple[str, Program, ValidatedUpload]]) -> list[str]:
    """For each (upload key, program, validation result) that the database claims to have loaded
    (an `uploads` row exists): every accepted row is a user (exactly once) with a pass in the
    program, every rejected row has an error issue with a reason, and the counts add up. An
    upload without its `uploads` row must have left nothing of its own behind (all or nothing)."""
    problems = []
    with engine.connect() as conn:
        duplicates = conn.execute(
            text("SELECT count(*) FROM (SELECT email FROM users GROUP BY email HAVING count(*) > 1) t")
        ).scalar_one()
        if duplicates:
            problems.append(f"{duplicates} emails stored more than once")
        for key, program, validated in loads:
            upload = conn.execute(
                text("SELECT rows_read, rows_accepted, rows_rejected FROM uploads WHERE key = :k"), {"k": key}
            ).first()
            issues = conn.execute(
                text('SELECT line, "column", severity, reason FROM upload_issues WHERE upload_key = :k'), {"k": key}
            ).all()
            if upload is None:
                if issues:
                    problems.append(f"{key}: {len(issues)} issue rows without the upload row (half-written)")
                continue
            if tuple(upload) != (validated.rows_read, validated.rows_accepted, validated.rows_rejected):
                problems.append(
                    f"{key}: counts {tuple(upload)} != {(validated.rows_read, validated.rows_accepted, validated.rows_rejected)}"
                )
            if upload[0] != upload[1] + upload[2]:
                problems.append(f"{key}: rows_read != accepted + rejected")
            error_lines = {
                line for line, _, severity, reason in issues if severity == "error" and (reason or "").strip()
            }
            expected_errors = set(validated.issues.filter(pl.col("severity") == "error")["line"].to_list())
            if expected_errors - error_lines:
                problems.append(
                    f"{key}: rejected lines without an error issue: {sorted(expected_errors - error_lines)[:5]}"
                )
            if len(expected_errors) != validated.rows_rejected:
                problems.append(
                    f"{key}: {validated.rows_rejected} rejected but {len(expected_errors)} lines with errors"
                )
            if any(not (reason or "").strip() for *_, reason in issues):
                problems.append(f"{key}: an issue row without a reason")
            emails = validated.users["email"].to_list()
            if emails:
                stored = conn.execute(
                    text("""SELECT count(DISTINCT u.email) FROM users u JOIN passes_master p ON p.user_id = u.id
                            WHERE p.program_id = :p AND u.email IN :emails""").bindparams(
                        bindparam("emails", expanding=True)
                    ),
                    {"p": program.id, "emails": emails},
                ).scalar_one()
                if stored != len(emails):
                    problems.append(f"{key}: {len(emails) - stored} accepted users without a user row and pass")
    record(invariant_violations=len(problems))
    return problems


def reward_violations(engine: Engine, initial_balances: dict[str, int] | None = None) -> list[str]:
    """birthday_logs, notifications and balances agree exactly: one log per pass and year, one
    notification per log, and each balance grew by exactly the points of its logs."""
    initial_balances = initial_balances or {}
    problems = []
    with engine.connect() as conn:
        twice = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT pass_id, year FROM birthday_logs GROUP BY pass_id, year HAVING count(*) > 1) t"
            )
        ).scalar_one()
        if twice:
            problems.append(f"{twice} passes rewarded twice in a year")
        orphans = conn.execute(
            text("""SELECT count(*) FROM birthday_logs b WHERE
                                       (SELECT count(*) FROM notifications n WHERE n.birthday_log_id = b.id) <> 1""")
        ).scalar_one()
        if orphans:
            problems.append(f"{orphans} log rows without exactly one notification")
        stray = conn.execute(text("SELECT count(*) FROM notifications WHERE birthday_log_id IS NULL")).scalar_one()
        if stray:
            problems.append(f"{stray} notifications without a log row")
        balances = conn.execute(
            text("""SELECT p.id, p.points_balance, COALESCE((SELECT sum(points) FROM birthday_logs b
                                        WHERE b.pass_id = p.id), 0) FROM passes_master p""")
        ).all()
        wrong = [(str(pid), bal, pts) for pid, bal, pts in balances if bal != initial_balances.get(str(pid), 0) + pts]
        if wrong:
            problems.append(f"{len(wrong)} balances disagree with their logs, e.g. {wrong[:3]}")
    record(invariant_violations=len(problems))
    return problems


# --- PostgreSQL helpers -----------------------------------------------------------------------


def database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).database


def with_application_name(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def backends(admin: Engine, application_name: str) -> list[tuple]:
    with admin.connect() as conn:
        return conn.execute(
            text("""SELECT pid, state, xact_start IS NOT NULL, backend_xid IS NOT NULL, wait_event_type
                    FROM pg_stat_activity WHERE application_name = :a"""),
            {"a": application_name},
        ).all()


def terminate(admin: Engine, pid: int) -> bool:
    with admin.connect() as conn:
        return bool(conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one())


# --- a database that goes away ----------------------------------------------------------------


def closed_port() -> int:
    """A local TCP port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FlakyProxy:
    """A TCP proxy in front of the PostgreSQL server. `down()` stops listening (connection
    refused, as for a stopped server) and cuts every open connection; `up()` listens again on
    the same port. The shared server itself is never touched."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432):
        self.target = (target_host, target_port)
        self.port = closed_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.refused_while_down = 0

    def url(self, database_url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def up(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for _ in range(50):
                try:
                    listener.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    time.sleep(0.05)
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass
