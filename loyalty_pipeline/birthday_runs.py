"""Per (day, program) results of the birthday bot, and the decisions made from them.

The birthday assets are partitioned by day; the programs of a day are a batch inside the run. Each
program's result for each day is a `birthday_runs` row, written in the same transaction as that
program's rewards (or, for a failure, right after its rollback). From those rows and the programs
table - one query each, whatever the number of programs - this module decides:

- which programs are due now on their local date (the schedule),
- which earlier days were missed since a program's last successful day (catch-up),
- which days are late past their send hour + LOYALTY_LATE_ALERT_HOURS (the freshness alert).

A `birthday_runs` row of any status means "attempted": neither the schedule nor catch-up requests
that day again on its own (a failure alerts instead and is rerun by a person), so each missed day
is requested once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from loyalty_pipeline.db import db_time, is_postgres
from loyalty_pipeline.programs import Program

DONE = ("succeeded", "skipped")
ERROR_LENGTH = 500
# A batch is one run: big enough that runs per day follow time zones, small enough that a batch of
# one time zone finishes well within 15 minutes and several run side by side in the queue.
BATCH_SIZE = 500


@dataclass(frozen=True)
class ProgramState:
    """An enabled program as the schedule, catch-up and the late alert see it."""

    program: Program
    zone: ZoneInfo
    enabled_since: datetime | None
    last_success: date | None

    def local_date(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def send_moment(self, day: date) -> datetime:
        return datetime.combine(day, time(hour=self.program.birthday_send_hour), tzinfo=self.zone).astimezone(
            timezone.utc
        )


@dataclass
class Snapshot:
    """Enabled programs and the recent `birthday_runs` rows, read in two queries."""

    programs: list[ProgramState]
    results: dict[tuple[str, date], str]  # (program id, day) -> status
    errors: dict[tuple[str, date], tuple[str | None, str | None]] = field(default_factory=dict)  # -> (error, run id)
    # slug -> why its time zone is unusable: it is scheduled on the default zone's clock, so its run
    # fails with that reason and alerts, instead of the program silently never running.
    unusable: dict[str, str] = field(default_factory=dict)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _as_instant(value) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _day_param(conn: Connection, day: date):
    return day if is_postgres(conn) else day.isoformat()


def sync_enabled_since(conn: Connection, now: datetime) -> None:
    """Mark programs newly seen enabled (catch-up starts there) and forget disabled ones."""
    conn.execute(
        text("""
        INSERT INTO birthday_enabled_since (program_id, since)
        SELECT id, :now FROM programs WHERE birthday_bot_enabled
        ON CONFLICT (program_id) DO NOTHING
    """),
        {"now": db_time(conn, now)},
    )
    conn.execute(
        text("""
        DELETE FROM birthday_enabled_since
        WHERE program_id IN (SELECT id FROM programs WHERE NOT birthday_bot_enabled)
    """)
    )


def snapshot(conn: Connection, now: datetime, default_timezone: str, history_days: int) -> Snapshot:
    """Every enabled program with when it was enabled and its last successful day, and the
    `birthday_runs` rows of the last `history_days` days."""
    names = [f.name for f in fields(Program)]
    columns = ", ".join(f"p.{name}" for name in names)
    rows = conn.execute(
        text(f"""
        SELECT {columns}, e.since AS enabled_since,
               (SELECT max(r.run_date) FROM birthday_runs r
                WHERE r.program_id = p.id AND r.status IN ('succeeded', 'skipped')) AS last_success
        FROM programs p LEFT JOIN birthday_enabled_since e ON e.program_id = p.id
        WHERE p.birthday_bot_enabled
        ORDER BY p.slug
    """)
    ).all()
    zones: dict[str, ZoneInfo | None] = {}
    states, unusable = [], {}
    for row in rows:
        values = dict(row._mapping)
        enabled_since, last_success = values.pop("enabled_since"), values.pop("last_success")
        program = Program(
            **{**values, "id": str(values["id"]), "birthday_bot_enabled": bool(values["birthday_bot_enabled"])}
        )
        name = program.timezone or default_timezone
        if name not in zones:
            try:
                zones[name] = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                zones[name] = None
        zone = zones[name]
        if zone is None:
            unusable[program.slug] = f"timezone {program.timezone!r} is not an IANA time zone name"
            zone = ZoneInfo(default_timezone)
        states.append(
            ProgramState(
                program, zone, _as_instant(enabled_since), _as_date(last_success) if last_success is not None else None
            )
        )
    first = now.date() - timedelta(days=history_days + 2)
    results, errors = {}, {}
    for program_id, run_date, status, error, run_id in conn.execute(
        text("SELECT program_id, run_date, status, error, run_id FROM birthday_runs WHERE run_date >= :first"),
        {"first": _day_param(conn, first)},
    ):
        key = (str(program_id), _as_date(run_date))
        results[key] = status
        errors[key] = (error, run_id)
    return Snapshot(states, results, errors, unusable)


def batches(due: dict[date, list[str]], size: int = BATCH_SIZE) -> list[tuple[date, list[str]]]:
    """(day, up to `size` slugs) per run, in date order."""
    out = []
    for day in sorted(due):
        slugs = sorted(due[day])
        out.extend((day, slugs[i : i + size]) for i in range(0, len(slugs), size))
    return out


def _in_flight(in_flight: dict[date, set[str] | None], day: date, slug: str) -> bool:
    if day not in in_flight:
        return False
    programs = in_flight[day]
    return programs is None or slug in programs


def due_today(snap: Snapshot, now: datetime, in_flight: dict[date, set[str] | None]) -> dict[date, list[str]]:
    """The schedule's batch: enabled programs whose send time on their local date has passed, with
    no result for that date yet and no run in flight for it."""
    due: dict[date, list[str]] = defaultdict(list)
    for state in snap.programs:
        day = state.local_date(now)
        if state.send_moment(day) > now:
            continue
        if (state.program.id, day) in snap.results or _in_flight(in_flight, day, state.program.slug):
            continue
        due[day].append(state.program.slug)
    return dict(due)


def missed_days(
    snap: Snapshot, now: datetime, in_flight: dict[date, set[str] | None], catchup_days: int
) -> dict[date, list[str]]:
    """Catch-up: for each enabled program that has succeeded before, the days before its local
    date that have no result, after its last successful day and the day it was enabled, within
    birthday_max_delay_days and `catchup_days`. Today's local date is the schedule's."""
    missed: dict[date, list[str]] = defaultdict(list)
    for state in snap.programs:
        if state.last_success is None or state.enabled_since is None:
            continue  # never run: its history starts with the schedule, not with a back-fill
        today = state.local_date(now)
        reach = min(catchup_days, state.program.birthday_max_delay_days)
        first = max(
            today - timedelta(days=reach), state.last_success + timedelta(days=1), state.local_date(state.enabled_since)
        )
        day = first
        while day < today:
            if (state.program.id, day) not in snap.results and not _in_flight(in_flight, day, state.program.slug):
                missed[day].append(state.program.slug)
            day += timedelta(days=1)
    return dict(missed)


@dataclass(frozen=True)
class LateDay:
    program: Program
    day: date
    deadline: datetime
    status: str  # the day's birthday_runs status, or "missing"
    error: str | None
    run_id: str | None


def late_days(snap: Snapshot, now: datetime, late_hours: int, alerted: set[tuple[str, date]]) -> list[LateDay]:
    """(program, local day) not succeeded by the day's send time + `late_hours` (or by the time the
    program was enabled + `late_hours`), not alerted yet."""
    late = []
    span = (23 + late_hours) // 24 + 1  # days back a deadline can still be reached from
    for state in snap.programs:
        if state.enabled_since is None:
            continue
        today, enabled_on = state.local_date(now), state.local_date(state.enabled_since)
        for back in range(span, -1, -1):
            day = today - timedelta(days=back)
            key = (state.program.id, day)
            if day < enabled_on or snap.results.get(key) in DONE or key in alerted:
                continue
            deadline = max(state.send_moment(day), state.enabled_since) + timedelta(hours=late_hours)
            if deadline > now or (today - day).days > state.program.birthday_max_delay_days:
                continue
            error, run_id = snap.errors.get(key, (None, None))
            late.append(LateDay(state.program, day, deadline, snap.results.get(key, "missing"), error, run_id))
    return late


def alerted_days(conn: Connection, since: date) -> set[tuple[str, date]]:
    return {
        (str(p), _as_date(d))
        for p, d in conn.execute(
            text("SELECT program_id, run_date FROM birthday_late_alerts WHERE run_date >= :first"),
            {"first": _day_param(conn, since)},
        )
    }


def record_alert(engine: Engine, program_id: str, day: date, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO birthday_late_alerts (program_id, run_date, alerted_at) VALUES (:p, :d, :now)
            ON CONFLICT (program_id, run_date) DO NOTHING
        """),
            {"p": program_id, "d": _day_param(conn, day), "now": db_time(conn, now)},
        )


# --- what a run does -------------------------------------------------------------------------------


def programs_for_run(
    conn: Connection,
    days: list[date],
    named: list[str],
    now: datetime,
    default_timezone: str,
    ignore_send_hour: bool = False,
) -> tuple[dict[str, list[date]], list[str]]:
    """The run's batch: {slug: its days} and the named slugs that do not exist.
    With no names, every enabled program whose send time has passed on each day (with
    `ignore_send_hour`, every enabled program); named programs get every day of the run (the reward
    rule then skips what is not due, and says why)."""
    if named:
        names = sorted(set(named))
        found = {
            row[0]
            for row in conn.execute(
                text("SELECT slug FROM programs WHERE slug IN :slugs").bindparams(bindparam("slugs", expanding=True)),
                {"slugs": names},
            )
        }
        return {slug: sorted(days) for slug in names if slug in found}, [slug for slug in names if slug not in found]
    snap_programs = snapshot(conn, now, default_timezone, history_days=0).programs
    batch: dict[str, list[date]] = {}
    for state in snap_programs:
        due = [day for day in sorted(days) if ignore_send_hour or state.send_moment(day) <= now]
        if due:
            batch[state.program.slug] = due
    return batch, []


@dataclass
class DayResult:
    day: date
    status: str  # succeeded | skipped | failed
    eligible: int = 0
    rewarded: int = 0
    points: int = 0
    note: str | None = None
    error: str | None = None


_UPSERT = """
    INSERT INTO birthday_runs (program_id, run_date, status, eligible, rewarded, points, rewarded_by_run, note, error,
                               attempts, run_id, started_at, finished_at)
    VALUES (:program_id, :run_date, :status, :eligible, :rewarded, :points, :rewarded, :note, :error, 1,
            :run_id, :started_at, :finished_at)
    ON CONFLICT (program_id, run_date) DO UPDATE SET
        status = EXCLUDED.status, eligible = EXCLUDED.eligible, rewarded_by_run = EXCLUDED.rewarded_by_run,
        rewarded = birthday_runs.rewarded + EXCLUDED.rewarded, points = birthday_runs.points + EXCLUDED.points,
        note = EXCLUDED.note, error = EXCLUDED.error, attempts = birthday_runs.attempts + 1,
        run_id = EXCLUDED.run_id, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
"""


def record(
    conn: Connection,
    program_id: str,
    results: list[DayResult],
    run_id: str,
    started_at: datetime,
    finished_at: datetime,
) -> None:
    """Upsert one program's day results (one statement). `rewarded` and `points` add up over
    attempts, so they stay the day's totals; the rest describes the latest attempt."""
    if not results:
        return
    conn.execute(
        text(_UPSERT),
        [
            {
                "program_id": program_id,
                "run_date": _day_param(conn, r.day),
                "status": r.status,
                "eligible": r.eligible,
                "rewarded": r.rewarded,
                "points": r.points,
                "note": r.note,
                "error": r.error[:ERROR_LENGTH] if r.error else None,
                "run_id": run_id,
                "started_at": db_time(conn, started_at),
                "finished_at": db_time(conn, finished_at),
            }
            for r in results
        ],
    )


def record_failure(
    engine: Engine, slug: str, days: list[date], error: str, run_id: str, started_at: datetime, finished_at: datetime
) -> bool:
    """Record a program's failed days after its reward transaction rolled back; False when the
    program does not exist (nothing to attach the failure to)."""
    with engine.begin() as conn:
        program_id = conn.execute(text("SELECT id FROM programs WHERE slug = :s"), {"s": slug}).scalar()
        if program_id is None:
            return False
        record(
            conn,
            str(program_id),
            [DayResult(day, "failed", error=error) for day in days],
            run_id,
            started_at,
            finished_at,
        )
    return True


@dataclass(frozen=True)
class RunRow:
    slug: str
    day: date
    status: str
    eligible: int
    rewarded: int  # the day's total
    points: int  # the day's total
    rewarded_by_run: int
    note: str | None
    error: str | None


def rows_for_run(conn: Connection, run_id: str) -> list[RunRow]:
    """The `birthday_runs` rows a run wrote last (a later rerun of the same day takes them over)."""
    return [
        RunRow(slug, _as_date(day), *values)
        for slug, day, *values in conn.execute(
            text("""
            SELECT p.slug, r.run_date, r.status, r.eligible, r.rewarded, r.points, r.rewarded_by_run, r.note, r.error
            FROM birthday_runs r JOIN programs p ON p.id = r.program_id
            WHERE r.run_id = :run_id ORDER BY p.slug, r.run_date
        """),
            {"run_id": run_id},
        )
    ]


def programs_with_pending(conn: Connection, days: list[date]) -> list[str]:
    """Slugs of programs with undelivered birthday messages for rewards on `days`."""
    return [
        row[0]
        for row in conn.execute(
            text("""
        SELECT DISTINCT pr.slug FROM notifications n
        JOIN birthday_logs b ON b.id = n.birthday_log_id
        JOIN programs pr ON pr.id = n.program_id
        WHERE n.status = 'pending' AND b.reward_date BETWEEN :first AND :last
        ORDER BY pr.slug
    """),
            {"first": _day_param(conn, min(days)), "last": _day_param(conn, max(days))},
        )
    ]
