"""The birthday bot's reward rule, as a few set-based statements per (program, date range).

For each due date D of a program P, a pass is rewarded when P has the bot enabled, the pass is in
P and active, its user's birthday falls on D (29 February falls on 28 February in other years),
the pass existed by the end of D in P's time zone, the birthday was known N days before D
(birthday_min_notice_days), and the pass has no reward in D's year nor one less than 365 days
from D. Dates later than birthday_max_delay_days ago, or not yet reached, are skipped."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from loyalty_pipeline import birthday_runs, templates
from loyalty_pipeline.db import bulk_insert, create_temp_table, create_temp_table_as, db_time, is_postgres
from loyalty_pipeline.programs import Program, check_config, get_program

REWARD_WINDOW_DAYS = 365
LOCK_NAMESPACE = 7_311_202_602
_NO_NOTICE_NEEDED = datetime(9999, 1, 1, tzinfo=timezone.utc)
SAMPLE_SIZE = 5
NOT_DUE = "not due yet"

_REWARD_DAYS = [
    ("reward_date", "date"),
    ("year", "integer"),
    ("birth_month", "smallint"),
    ("birth_day", "smallint"),
    ("created_cutoff", "timestamptz"),
    ("notice_cutoff", "timestamptz"),
    ("window_start", "date"),
    ("window_end", "date"),
]

# The reward rule, once. A member is a pass with its user; `column(name)` is the SQL of one of the
# member's columns below, so each query shape can read them from its own tables or subquery.
_MEMBER_COLUMNS = {
    "id": "p.id",
    "program_id": "p.program_id",
    "user_id": "p.user_id",
    "status": "p.status",
    "created_at": "p.created_at",
    "first_name": "u.first_name",
    "birth_month": "u.birth_month",
    "birth_day": "u.birth_day",
    "birthday_known_at": "COALESCE(u.birth_date_set_at, u.created_at)",
}


def _member_conditions(column) -> list[str]:
    """Which members can be rewarded at all: an active pass of the program whose user has a birthday."""
    return [
        f"{column('program_id')} = :program_id",
        f"{column('status')} = 'active'",
        f"{column('birth_month')} IS NOT NULL",
    ]


def _day_conditions(column) -> list[str]:
    """Which members are candidates on reward day `d`: born on it, with the pass created by the end of
    the day and the birthday known `birthday_min_notice_days` before it (cut-offs in reward_days)."""
    return [
        f"{column('birth_month')} = d.birth_month",
        f"{column('birth_day')} = d.birth_day",
        f"{column('created_at')} < d.created_cutoff",
        f"{column('birthday_known_at')} < d.notice_cutoff",
    ]


# Each candidate is a (pass, reward day) with what the log row and the message need.
_CANDIDATE_COLUMNS = ("id", "program_id", "user_id", "first_name")
_DAY_COLUMNS = "d.year, d.reward_date, d.window_start, d.window_end"


def _birthday_first_query() -> str:
    """From the reward days through the birthday index to the users born on them, then their passes."""
    member = _MEMBER_COLUMNS.__getitem__
    return (
        f"SELECT {', '.join(f'{member(name)} AS {name}' for name in _CANDIDATE_COLUMNS)}, {_DAY_COLUMNS} "
        "FROM reward_days d, users u, passes_master p "
        f"WHERE {' AND '.join(['p.user_id = u.id', *_member_conditions(member), *_day_conditions(member)])}"
    )


def _member_first_query() -> str:
    """From the program's passes and their users, read once, to the reward days of their birthdays:
    for a date range (a backfill) the birthday index would visit every user born on any of the days
    and then look for their passes one by one (seconds to minutes on millions of passes).
    OFFSET 0 keeps the subquery as written (PostgreSQL only)."""
    inner = ", ".join(f"{sql} AS {name}" for name, sql in _MEMBER_COLUMNS.items())
    outer = ", ".join(f"m.{name}" for name in _CANDIDATE_COLUMNS)
    return (
        f"SELECT {outer}, {_DAY_COLUMNS} "
        f"FROM (SELECT {inner} FROM passes_master p JOIN users u ON u.id = p.user_id "
        f"WHERE {' AND '.join(_member_conditions(_MEMBER_COLUMNS.__getitem__))} OFFSET 0) m, reward_days d "
        f"WHERE {' AND '.join(_day_conditions(lambda name: f'm.{name}'))}"
    )


# The two shapes of the candidate query, generated from the one rule above.
CANDIDATES_BY_BIRTHDAY = _birthday_first_query()
CANDIDATES_BY_MEMBER = _member_first_query()
# Up to this many birthdays (reward_days rows) the birthday index is the cheaper way in.
BIRTHDAY_FIRST_MAX_DAYS = 7

# The candidates are found once into a temp table that the count, the insert and the messages then
# read; it carries the user and first name, so the messages do not visit passes and users again, and
# whether the pass was already rewarded, decided as the candidates are found: a check inside the
# INSERT reads the table the INSERT fills, and on an empty birthday_logs (a fresh database's first
# backfill) the planner's nested loop scanned the growing table again for each row (14 s for 37k).
_ALREADY_REWARDED = """
    EXISTS (SELECT 1 FROM birthday_logs b
            WHERE b.pass_id = c.id
              AND (b.year = c.year OR b.reward_date BETWEEN c.window_start AND c.window_end))
"""


@dataclass
class RewardResult:
    program_slug: str
    enabled: bool
    dates: list[date]
    skipped: dict[str, str] = field(default_factory=dict)  # ISO date -> why
    eligible: int = 0
    already_rewarded: int = 0
    rewarded_now: int = 0
    points_awarded: int = 0
    per_date: dict[str, int] = field(default_factory=dict)  # ISO date -> rewarded now
    eligible_per_date: dict[str, int] = field(default_factory=dict)  # ISO date -> eligible passes
    sample_messages: list[str] = field(default_factory=list)
    batch_id: str = ""
    program: dict = field(default_factory=dict)


def birthdays_on(day: date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on `day`."""
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        return [(2, 28), (2, 29)]
    return [(day.month, day.day)]


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)


def due_dates(
    program: Program, dates: list[date], now: datetime, default_timezone: str
) -> tuple[list[date], dict[str, str]]:
    today = now.astimezone(program.zone(default_timezone)).date()
    due, skipped = [], {}
    for day in sorted(set(dates)):
        late = (today - day).days
        if late < 0:
            skipped[day.isoformat()] = f"{NOT_DUE}: {program.slug}'s local date is {today.isoformat()}"
        elif late > program.birthday_max_delay_days:
            skipped[day.isoformat()] = (
                f"too late: {late} days after the birthday, more than birthday_max_delay_days="
                f"{program.birthday_max_delay_days}"
            )
        else:
            due.append(day)
    return due, skipped


def _reward_days(conn: Connection, program: Program, days: list[date], default_timezone: str) -> pl.DataFrame:
    zone = program.zone(default_timezone)
    as_text = (lambda m: m.isoformat(sep=" ")) if is_postgres(conn) else (lambda m: db_time(conn, m))
    rows = []
    for day in days:
        notice = (
            local_midnight(day - timedelta(days=program.birthday_min_notice_days - 1), zone)
            if program.birthday_min_notice_days > 0
            else _NO_NOTICE_NEEDED
        )
        for month, mday in birthdays_on(day):
            rows.append(
                {
                    "reward_date": day,
                    "year": day.year,
                    "birth_month": month,
                    "birth_day": mday,
                    "created_cutoff": as_text(local_midnight(day + timedelta(days=1), zone)),
                    "notice_cutoff": as_text(notice),
                    "window_start": day - timedelta(days=REWARD_WINDOW_DAYS - 1),
                    "window_end": day + timedelta(days=REWARD_WINDOW_DAYS - 1),
                }
            )
    frame = pl.DataFrame(
        rows,
        schema={
            "reward_date": pl.Date,
            "year": pl.Int32,
            "birth_month": pl.Int16,
            "birth_day": pl.Int16,
            "created_cutoff": pl.Utf8,
            "notice_cutoff": pl.Utf8,
            "window_start": pl.Date,
            "window_end": pl.Date,
        },
    )
    if not is_postgres(conn):
        # sqlite3 stores what it is given: keep dates in the ISO text form the tables use.
        frame = frame.with_columns(pl.col(pl.Date).dt.to_string("%Y-%m-%d"))
    return frame


def stage_reward_days(conn: Connection, program: Program, days: list[date], default_timezone: str) -> int:
    """The temp table `reward_days` the candidate queries read: a row per (day, birthday celebrated
    on it) with the day's cut-offs. Returns its row count."""
    create_temp_table(conn, "reward_days", _REWARD_DAYS)
    rows = bulk_insert(conn, "reward_days", _reward_days(conn, program, days, default_timezone))
    if is_postgres(conn):
        # Bulk statements whose estimated cost passes the JIT thresholds; compiling costs more.
        conn.exec_driver_sql("SET LOCAL jit = off")
        # The anti-join with birthday_logs sorts a year of candidates: in memory, not on disk.
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        # A temp table has no statistics until analysed; with none the planner guesses 1,270 rows
        # and walks the whole birthday index for a single day (0.6 s instead of 25 ms).
        conn.exec_driver_sql("ANALYZE reward_days")
    return rows


def _lock_program(conn: Connection, program_slug: str) -> None:
    """Serialise one program's reward transactions: the 365-day rule reads rows that a concurrent
    partition of the same program may be writing. SQLite's BEGIN IMMEDIATE already serialises."""
    if is_postgres(conn):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, :namespace))"),
            {"key": f"birthday:{program_slug}", "namespace": LOCK_NAMESPACE},
        )


def _candidates(conn: Connection, reward_days: int) -> str:
    """The candidates in the shape that suits the range, each with whether it was already rewarded."""
    shape = (
        CANDIDATES_BY_MEMBER if is_postgres(conn) and reward_days > BIRTHDAY_FIRST_MAX_DAYS else CANDIDATES_BY_BIRTHDAY
    )
    return f"SELECT c.*, {_ALREADY_REWARDED} AS already_rewarded FROM ({shape}) c"


def _insert_logs(conn: Connection, program: Program, batch_id: str, now_param) -> int:
    return conn.execute(
        text("""
            INSERT INTO birthday_logs (pass_id, program_id, year, reward_date, points, batch_id, created_at)
            SELECT c.id, c.program_id, c.year, c.reward_date, :points, :batch_id, :now
            FROM reward_candidates c
            WHERE NOT c.already_rewarded
            ON CONFLICT (pass_id, year) DO NOTHING
        """),
        {"points": program.birthday_reward_points, "batch_id": batch_id, "now": now_param},
    ).rowcount


def _credit_balances(conn: Connection, batch_id: str) -> None:
    conn.execute(
        text("""
            UPDATE passes_master SET points_balance = passes_master.points_balance + b.points
            FROM (SELECT pass_id, sum(points) AS points FROM birthday_logs
                  WHERE batch_id = :batch_id GROUP BY pass_id) b
            WHERE b.pass_id = passes_master.id
        """),
        {"batch_id": batch_id},
    )


def _queue_notifications(conn: Connection, program: Program, batch_id: str, now_param) -> None:
    message_sql, params = templates.sql_expression(
        program.birthday_message,
        {
            # As templates.render: a NULL or empty first name is missing.
            "first_name": f"COALESCE(NULLIF(c.first_name, ''), '{templates.MISSING_FIRST_NAME}')",
            "program_name": "CAST(:program_name AS text)",
            "points": "CAST(b.points AS text)",
        },
    )
    # A pass has one birthday, so (pass, reward date) names one candidate.
    conn.execute(
        text(f"""
            INSERT INTO notifications (pass_id, program_id, user_id, birthday_log_id, kind, message,
                                       status, attempts, created_at)
            SELECT b.pass_id, b.program_id, c.user_id, b.id, 'birthday', {message_sql}, 'pending', 0, :now
            FROM birthday_logs b
            JOIN reward_candidates c ON c.id = b.pass_id AND c.reward_date = b.reward_date
            WHERE b.batch_id = :batch_id
        """),
        {**params, "program_name": program.name, "batch_id": batch_id, "now": now_param},
    )


def award_birthdays(
    engine: Engine,
    *,
    program_slug: str,
    dates: list[date],
    now: datetime,
    default_timezone: str = "UTC",
    batch_id: str | None = None,
    run_id: str | None = None,
    started_at: datetime | None = None,
) -> RewardResult:
    """Award one program's birthdays for `dates` in one transaction; safe to rerun at any time.
    With `run_id`, each date's outcome is recorded in birthday_runs in the same transaction."""
    with engine.begin() as conn:
        result, program_id = _award(conn, program_slug, dates, now, default_timezone, batch_id)
        if run_id:
            birthday_runs.record(conn, program_id, _day_results(result), run_id, started_at or now, now)
        _drop_scratch_tables(conn)
    return result


def _day_results(result: RewardResult) -> list[birthday_runs.DayResult]:
    """The per-day outcome of one program's reward transaction; days not due yet get no row."""
    points = result.program.get("birthday_reward_points", 0)
    days = []
    for day in result.dates:
        key = day.isoformat()
        why = result.skipped.get(key)
        if why is None:
            rewarded = result.per_date.get(key, 0)
            days.append(
                birthday_runs.DayResult(
                    day,
                    "succeeded",
                    eligible=result.eligible_per_date.get(key, 0),
                    rewarded=rewarded,
                    points=rewarded * points,
                )
            )
        elif not why.startswith(NOT_DUE):
            days.append(birthday_runs.DayResult(day, "skipped", note=why))
    return days


def _drop_scratch_tables(conn: Connection) -> None:
    if not is_postgres(conn):  # Postgres drops them on commit
        conn.exec_driver_sql("DROP TABLE IF EXISTS temp.reward_days")
        conn.exec_driver_sql("DROP TABLE IF EXISTS temp.reward_candidates")


def _award(
    conn: Connection, program_slug: str, dates: list[date], now: datetime, default_timezone: str, batch_id: str | None
) -> tuple[RewardResult, str]:
    # batch_id names this transaction's rows (the balance update and notifications select them by it),
    # so a caller's id - the Dagster run, which may award several programs or retry a step - is only a prefix.
    batch_id = f"{batch_id}:{uuid.uuid4()}" if batch_id else str(uuid.uuid4())
    _lock_program(conn, program_slug)
    program = get_program(conn, program_slug)
    check_config(program, default_timezone)
    result = RewardResult(
        program_slug=program_slug,
        enabled=program.birthday_bot_enabled,
        dates=sorted(set(dates)),
        batch_id=batch_id,
        program=program.as_metadata(),
    )
    if not program.birthday_bot_enabled:
        result.skipped = {d.isoformat(): "birthday bot disabled for this program" for d in result.dates}
        return result, program.id
    due, result.skipped = due_dates(program, dates, now, default_timezone)
    if not due:
        return result, program.id
    days_rows = stage_reward_days(conn, program, due, default_timezone)
    create_temp_table_as(conn, "reward_candidates", _candidates(conn, days_rows), {"program_id": program.id})
    if is_postgres(conn):
        conn.exec_driver_sql("ANALYZE reward_candidates")
    counts = conn.execute(
        text(
            "SELECT c.reward_date, count(*), COALESCE(sum(CASE WHEN c.already_rewarded THEN 1 ELSE 0 END), 0) "
            "FROM reward_candidates c GROUP BY c.reward_date"
        ),
    ).all()
    result.eligible_per_date = {str(day): int(eligible) for day, eligible, _ in counts}
    result.eligible = sum(int(row[1]) for row in counts)
    result.already_rewarded = sum(int(row[2]) for row in counts)
    now_param = db_time(conn, now)
    result.rewarded_now = _insert_logs(conn, program, batch_id, now_param)
    if result.rewarded_now:
        _credit_balances(conn, batch_id)
        _queue_notifications(conn, program, batch_id, now_param)
    result.points_awarded = result.rewarded_now * program.birthday_reward_points
    result.per_date = {
        str(day): count
        for day, count in conn.execute(
            text(
                "SELECT reward_date, count(*) FROM birthday_logs WHERE batch_id = :b GROUP BY reward_date ORDER BY reward_date"
            ),
            {"b": batch_id},
        )
    }
    result.sample_messages = [
        row[0]
        for row in conn.execute(
            text(
                "SELECT n.message FROM notifications n JOIN birthday_logs b ON b.id = n.birthday_log_id "
                "WHERE b.batch_id = :b ORDER BY n.message LIMIT :n"
            ),
            {"b": batch_id, "n": SAMPLE_SIZE},
        )
    ]
    return result, program.id
