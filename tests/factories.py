"""Test data written straight into the tables with SQL, so each test states exactly the rows a
rule depends on (birthdays, when they were set, when a pass was created, its status)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timezone
from pathlib import Path

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


def set_csv_columns(engine: Engine, program: Program, value: str | None) -> None:
    """programs.csv_columns as the front end writes it: JSON text (or NULL)."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE programs SET csv_columns = :value WHERE id = :id"), {"value": value, "id": program.id})


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
    sheet.write(0, 0, "Customer list - November")                                        # row 1: a title
    sheet.write_row(1, 0, ["Email", "First Name", "Last Name", "Phone", "Birthday", "Member since"])  # row 2
    sheet.write_row(2, 0, ["ann.lee@example.com", "Ann", "Lee"])                           # row 3
    sheet.write_number(2, 3, 4155550134)                                                    # a phone stored as a number
    sheet.write_datetime(2, 4, datetime(1990, 3, 14), date_format)                         # a date cell
    sheet.write_datetime(2, 5, datetime(2024, 5, 1), date_format)
    sheet.write_row(3, 0, ["bo.chan@example.com", "Bo", "Chan", "'+1 415 555 0178"])        # row 4
    sheet.write_number(3, 4, 32946)                                                         # a serial: 1990-03-14
    sheet.write_row(5, 0, ["cy.diaz@example.com", "Cy", "Diaz", "(415) 555-0199", "03/21"])  # row 6 (row 5 blank)
    sheet.write_row(6, 0, ["not-an-address", "Dee", "Fox", "4155550100", "1991-01-01"])     # row 7
    workbook.close()
    return path


def write_empty_workbook(path: Path) -> Path:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet("Sheet1")
    workbook.close()
    return path
