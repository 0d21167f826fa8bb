"""Per (day, program) results of the birthday bot, and the decisions made from them.

The birthday assets are partitioned by day; the programs of a day are a batch inside the run. Each
program's result for each day is a `birthday_runs` row, written in the same transaction as that
program's rewards (or, for a failure, right after its rollback). From those rows and the programs
table - one query each, whatever the number of programs - this module decides:

- which programs are due now on their local date (the schedule),
- which earlier days were missed since the program's bot was switched on
  (`programs.birthday_enabled_since`, kept by the database) and can still be caught up, and which
  are lost for good (older than the catch-up's reach: recorded `skipped` with the reason),
- what on-call is told (`birthday_alerts`, one alert per (program, day, status)): a failed day at
  once, a lost day once, and a day late past its send hour + LOYALTY_LATE_ALERT_HOURS - unless a
  run for it is requested or in flight, which it waits for (bounded, see `waiting`).

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
# Lost days are looked for this far back at most: an outage longer than a month is a restore and a
# backfill by hand, not something to report one day at a time.
LOST_LOOKBACK_DAYS = 31
# A late day not requested yet, noticed this long after its deadline, means the daemon (or the
# database) was down at the deadline: it waits REQUEST_GRACE for the schedule (every 15 minutes) or
# catch-up (every minute) to request it before it alerts NOT_RUN.
TICK_SLACK = timedelta(minutes=5)
REQUEST_GRACE = timedelta(minutes=20)
# A batch is one run: big enough that runs per day follow time zones, small enough that a batch of
# one time zone finishes well within 15 minutes and several run side by side in the queue.
BATCH_SIZE = 500


@dataclass(frozen=True)
class ProgramState:
    """An enabled program as the schedule, catch-up and the late alert see it."""

    program: Program
    zone: ZoneInfo
    enabled_since: datetime | None  # programs.birthday_enabled_since: when the bot was switched on
    last_before: date | None = None  # the newest birthday_runs day older than the snapshot's rows

    def local_date(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def send_moment(self, day: date) -> datetime:
        return datetime.combine(day, time(hour=self.program.birthday_send_hour), tzinfo=self.zone).astimezone(
            timezone.utc
        )

    def enabled_on(self) -> date | None:
        return None if self.enabled_since is None else self.local_date(self.enabled_since)

    def reach(self, catchup_days: int) -> int:
        """How many days back catch-up requests a missed day: older ones are lost."""
        return min(catchup_days, self.program.birthday_max_delay_days)


@dataclass
class Snapshot:
    """Enabled programs and the recent `birthday_runs` rows, read in two queries."""

    programs: list[ProgramState]
    results: dict[tuple[str, date], str]  # (program id, day) -> status
    # slug -> why its time zone is unusable: it is scheduled on the default zone's clock, so its run
    # fails with that reason and alerts, instead of the program silently never running.
    unusable: dict[str, str] = field(default_factory=dict)
    first: date | None = None  # the oldest day whose rows are in `results`


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _as_instant(value) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _day_param(conn: Connection, day: date):
    return day if is_postgres(conn) else day.isoformat()


def snapshot(conn: Connection, now: datetime, default_timezone: str, history_days: int) -> Snapshot:
    """Every enabled program with when it was enabled and its last successful day, and the
    `birthday_runs` rows of the last `history_days` days."""
    first = now.date() - timedelta(days=history_days + 2)
    rows = conn.execute(
        text(f"""
        SELECT {_program_columns()}, p.birthday_enabled_since AS enabled_since,
               (SELECT max(r.run_date) FROM birthday_runs r
                WHERE r.program_id = p.id AND r.run_date < :first) AS last_before
        FROM programs p
        WHERE p.birthday_bot_enabled
        ORDER BY p.slug
    """),
        {"first": _day_param(conn, first)},
    ).all()
    zones: dict[str, ZoneInfo | None] = {}
    states, unusable = [], {}
    for row in rows:
        values = dict(row._mapping)
        enabled_since, last_before = values.pop("enabled_since"), values.pop("last_before")
        program = _program_of(values)
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
                program, zone, _as_instant(enabled_since), _as_date(last_before) if last_before is not None else None
            )
        )
    results = {
        (str(program_id), _as_date(run_date)): status
        for program_id, run_date, status in conn.execute(
            text("SELECT program_id, run_date, status FROM birthday_runs WHERE run_date >= :first"),
            {"first": _day_param(conn, first)},
        )
    }
    return Snapshot(states, results, unusable, first)


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
    """Catch-up: for each enabled program, the days before its local date that have no result,
    from the day its bot was switched on, within its reach (birthday_max_delay_days and
    `catchup_days`). Today's local date is the schedule's."""
    missed: dict[date, list[str]] = defaultdict(list)
    for state in snap.programs:
        enabled_on = state.enabled_on()
        if enabled_on is None:
            continue
        today = state.local_date(now)
        day = max(today - timedelta(days=state.reach(catchup_days)), enabled_on)
        while day < today:
            if (state.program.id, day) not in snap.results and not _in_flight(in_flight, day, state.program.slug):
                missed[day].append(state.program.slug)
            day += timedelta(days=1)
    return dict(missed)


@dataclass(frozen=True)
class LostDay:
    program: Program
    day: date
    reason: str


def _lost_reason(state: ProgramState, now: datetime, catchup_days: int) -> str:
    until = now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    limit = state.program.birthday_max_delay_days
    if limit <= catchup_days:
        return f"lost: the daemon was down until {until}; older than birthday_max_delay_days = {limit}"
    return (
        f"lost: the daemon was down until {until}; older than LOYALTY_CATCHUP_DAYS = {catchup_days} "
        f"(a backfill can still reward it within birthday_max_delay_days = {limit})"
    )


def lost_days(
    snap: Snapshot, now: datetime, in_flight: dict[date, set[str] | None], catchup_days: int
) -> list[LostDay]:
    """Days catch-up can no longer request: since the program's bot was switched on and after its
    newest result before them, older than its reach, with no result (LOST_LOOKBACK_DAYS at most)."""
    lost = []
    for state in snap.programs:
        enabled_on = state.enabled_on()
        if enabled_on is None:
            continue
        today = state.local_date(now)
        day = max(enabled_on, today - timedelta(days=LOST_LOOKBACK_DAYS))
        if state.last_before is not None:  # no rows between it and the snapshot's first day
            day = max(day, state.last_before + timedelta(days=1))
        last = today - timedelta(days=state.reach(catchup_days) + 1)
        reason = None
        while day <= last:
            known = snap.first is None or day >= snap.first
            missing = not known or (state.program.id, day) not in snap.results
            if missing and not _in_flight(in_flight, day, state.program.slug):
                reason = reason or _lost_reason(state, now, catchup_days)
                lost.append(LostDay(state.program, day, reason))
            day += timedelta(days=1)
    return lost


def record_lost(conn: Connection, lost: list[LostDay], now: datetime) -> None:
    """Each lost day as a `skipped` result with the reason, and its EXPIRED alert waiting to be
    delivered - together, in the caller's transaction (two statements for any number of days)."""
    if not lost:
        return
    rows = [
        {"p": item.program.id, "d": _day_param(conn, item.day), "reason": item.reason, "now": db_time(conn, now)}
        for item in lost
    ]
    conn.execute(
        text("""
        INSERT INTO birthday_runs (program_id, run_date, status, note, attempts, started_at, finished_at)
        VALUES (:p, :d, 'skipped', :reason, 0, :now, :now)
        ON CONFLICT (program_id, run_date) DO NOTHING
    """),
        rows,
    )
    conn.execute(
        text("""
        INSERT INTO birthday_alerts (program_id, run_date, status, reason, noticed_at)
        VALUES (:p, :d, 'EXPIRED', :reason, :now)
        ON CONFLICT (program_id, run_date, status) DO NOTHING
    """),
        rows,
    )


# --- alerts --------------------------------------------------------------------------------------

FAILURE, NOT_RUN, EXPIRED = "FAILURE", "NOT_RUN", "EXPIRED"


@dataclass(frozen=True)
class DayAlert:
    """One alert on-call gets about a program's day (one per (program, day, status))."""

    program: Program
    day: date
    status: str  # FAILURE | NOT_RUN | EXPIRED
    at: datetime  # when it failed, its deadline, or when it was found lost
    reason: str | None  # the error, why the day is late, or why it is lost
    run_id: str | None = None


@dataclass(frozen=True)
class AlertRow:
    noticed_at: datetime
    alerted_at: datetime | None


def alert_rows(conn: Connection, since: date) -> dict[tuple[str, date, str], AlertRow]:
    """(program id, day, status) -> when it was noticed and alerted, from `since` on."""
    return {
        (str(p), _as_date(d), status): AlertRow(_as_instant(noticed), _as_instant(alerted))
        for p, d, status, noticed, alerted in conn.execute(
            text(
                "SELECT program_id, run_date, status, noticed_at, alerted_at FROM birthday_alerts "
                "WHERE run_date >= :first"
            ),
            {"first": _day_param(conn, since)},
        )
    }


def _program_of(values: dict) -> Program:
    return Program(**{**values, "id": str(values["id"]), "birthday_bot_enabled": bool(values["birthday_bot_enabled"])})


def _program_columns() -> str:
    return ", ".join(f"p.{f.name}" for f in fields(Program))


def failures_to_alert(conn: Connection, since: date, now: datetime) -> list[DayAlert]:
    """Failed days from `since` on without their FAILURE alert: they alert at once (one query)."""
    rows = conn.execute(
        text(f"""
        SELECT {_program_columns()}, r.run_date AS day, r.error AS reason, r.run_id AS run_id,
               r.finished_at AS at
        FROM birthday_runs r JOIN programs p ON p.id = r.program_id
        WHERE r.status = 'failed' AND r.run_date >= :first
          AND NOT EXISTS (SELECT 1 FROM birthday_alerts a WHERE a.program_id = r.program_id
                          AND a.run_date = r.run_date AND a.status = 'FAILURE' AND a.alerted_at IS NOT NULL)
        ORDER BY r.finished_at, p.slug, r.run_date
    """),
        {"first": _day_param(conn, since)},
    ).mappings()
    return [_day_alert(dict(row), FAILURE, now) for row in rows]


def expired_to_alert(conn: Connection, now: datetime) -> list[DayAlert]:
    """Lost days whose EXPIRED alert is not delivered yet (and that no backfill has run since)."""
    rows = conn.execute(
        text(f"""
        SELECT {_program_columns()}, a.run_date AS day, a.reason AS reason, NULL AS run_id, a.noticed_at AS at
        FROM birthday_alerts a JOIN programs p ON p.id = a.program_id
        JOIN birthday_runs r ON r.program_id = a.program_id AND r.run_date = a.run_date AND r.status = 'skipped'
        WHERE a.status = 'EXPIRED' AND a.alerted_at IS NULL
        ORDER BY a.noticed_at, p.slug, a.run_date
    """)
    ).mappings()
    return [_day_alert(dict(row), EXPIRED, now) for row in rows]


def _day_alert(values: dict, status: str, now: datetime) -> DayAlert:
    day, reason, run_id, at = (values.pop(k) for k in ("day", "reason", "run_id", "at"))
    return DayAlert(_program_of(values), _as_date(day), status, _as_instant(at) or now, reason, run_id)


def late_days(
    snap: Snapshot,
    now: datetime,
    late_hours: int,
    catchup_days: int,
    in_flight: dict[date, set[str] | None],
    book: dict[tuple[str, date, str], AlertRow],
) -> tuple[list[DayAlert], list[tuple[str, date]]]:
    """(NOT_RUN alerts due, days that start waiting now). A (program, local day) is late when it has
    no result by the day's send time + `late_hours` (or the time the bot was switched on +
    `late_hours`). A late day then waits, counted from when it was first noticed late:
    - while a run for it is queued or running: at most `late_hours` more;
    - when no run is requested yet but it was noticed late well after its deadline (the daemon or
      the database was down then; the schedule or catch-up requests it on their next tick): at
      most REQUEST_GRACE.
    A day with a result is not late: a failure alerts at once (FAILURE), a lost day once (EXPIRED)."""
    due, waiting = [], []
    span = (23 + late_hours) // 24 + 1  # days back a deadline can still be reached from
    for state in snap.programs:
        enabled_on = state.enabled_on()
        if enabled_on is None:
            continue
        today, program = state.local_date(now), state.program
        for back in range(min(span, state.reach(catchup_days)), -1, -1):
            day = today - timedelta(days=back)
            row = book.get((program.id, day, NOT_RUN))
            if day < enabled_on or (program.id, day) in snap.results or (row and row.alerted_at):
                continue
            deadline = max(state.send_moment(day), state.enabled_since) + timedelta(hours=late_hours)
            if deadline > now:
                continue
            noticed = row.noticed_at if row else now
            flying = _in_flight(in_flight, day, program.slug)
            if flying:
                wait_until = noticed + timedelta(hours=late_hours)
            elif noticed > deadline + TICK_SLACK:
                wait_until = noticed + REQUEST_GRACE
            else:
                wait_until = now
            if now < wait_until:
                if row is None:
                    waiting.append((program.id, day))
                continue
            reason = (
                f"its run is still queued or running {late_hours} h after the day was found late "
                f"({noticed.isoformat()})"
                if flying
                else "no run has rewarded it yet"
            )
            due.append(DayAlert(program, day, NOT_RUN, deadline, reason))
    return due, waiting


def record_waiting(conn: Connection, keys: list[tuple[str, date]], now: datetime) -> None:
    """Late days that start waiting for their requested or running run (NOT_RUN, not alerted)."""
    if keys:
        conn.execute(
            text("""
            INSERT INTO birthday_alerts (program_id, run_date, status, noticed_at) VALUES (:p, :d, 'NOT_RUN', :now)
            ON CONFLICT (program_id, run_date, status) DO NOTHING
        """),
            [{"p": p, "d": _day_param(conn, d), "now": db_time(conn, now)} for p, d in keys],
        )


def record_alerts(engine: Engine, delivered: list[DayAlert], now: datetime) -> None:
    """The delivered alerts, in one statement: none of them is sent again."""
    if not delivered:
        return
    with engine.begin() as conn:
        conn.execute(
            text("""
            INSERT INTO birthday_alerts (program_id, run_date, status, reason, noticed_at, alerted_at)
            VALUES (:p, :d, :status, :reason, :now, :now)
            ON CONFLICT (program_id, run_date, status) DO UPDATE SET
                alerted_at = EXCLUDED.alerted_at, reason = EXCLUDED.reason
        """),
            [
                {
                    "p": a.program.id,
                    "d": _day_param(conn, a.day),
                    "status": a.status,
                    "reason": (a.reason or "")[:ERROR_LENGTH] or None,
                    "now": db_time(conn, now),
                }
                for a in delivered
            ],
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
