"""Programs (tenants) and the rules they configure in the `programs` table."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.engine import Connection

from loyalty_pipeline.fields import FIELDS
from loyalty_pipeline.names import InvalidName, check_slug

_COLUMNS = (
    "id, slug, name, birthday_bot_enabled, birthday_reward_points, birthday_message, "
    "default_phone_region, date_order, timezone, birthday_min_notice_days, "
    "birthday_max_delay_days, birthday_send_hour, csv_columns"
)


class ProgramNotFound(LookupError):
    pass


class InvalidProgramConfig(ValueError):
    pass


@dataclass(frozen=True)
class Program:
    id: str
    slug: str
    name: str
    birthday_bot_enabled: bool
    birthday_reward_points: int
    birthday_message: str
    default_phone_region: str
    date_order: str
    timezone: str | None
    birthday_min_notice_days: int
    birthday_max_delay_days: int
    birthday_send_hour: int
    csv_columns: object = None  # JSON as stored (text on SQLite); read it through csv_column_mapping()

    def zone(self, default_timezone: str) -> ZoneInfo:
        return ZoneInfo(self.timezone or default_timezone)

    def as_metadata(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}


def _program(row) -> Program:
    values = dict(row._mapping)
    values["id"] = str(values["id"])
    values["birthday_bot_enabled"] = bool(values["birthday_bot_enabled"])
    return Program(**values)


def csv_column_mapping(program: Program) -> dict[str, list[str]] | None:
    """The program's own header mapping (`programs.csv_columns`, written by the front end: a JSON
    object of field -> header name or list of header names), or None to detect columns from the
    field table. InvalidProgramConfig names the field and the headers that are wrong."""
    value = program.csv_columns
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidProgramConfig(f"program {program.slug!r}: csv_columns is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InvalidProgramConfig(f"program {program.slug!r}: csv_columns must be a JSON object of "
                                   f"field -> header name(s), got {type(value).__name__}")
    mapping = {}
    for name, headers in value.items():
        headers = [headers] if isinstance(headers, str) else headers
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) and h.strip() for h in headers):
            raise InvalidProgramConfig(f"program {program.slug!r}: csv_columns[{name!r}] must be a header name "
                                       "or a non-empty list of header names")
        if name not in (*FIELDS, "full_name"):
            raise InvalidProgramConfig(
                f"program {program.slug!r}: csv_columns maps an unknown field {name!r} (to "
                + ", ".join(repr(" ".join(h.split())[:80]) for h in headers[:5])
                + f"); the fields are {', '.join(FIELDS)}, full_name")
        mapping[name] = headers
    return mapping or None


def get_program(conn: Connection, slug: str) -> Program:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM programs WHERE slug = :slug"), {"slug": slug}
    ).first()
    if row is None:
        raise ProgramNotFound(f"program {slug!r} does not exist in the programs table")
    return _program(row)


def list_programs(conn: Connection) -> list[Program]:
    return [_program(row) for row in conn.execute(text(f"SELECT {_COLUMNS} FROM programs ORDER BY slug"))]


def config_problems(program: Program, default_timezone: str) -> list[str]:
    """What makes a program's birthday configuration unusable (the table is edited by hand and by
    the front end, so the database constraints are not the only line of defence)."""
    problems = []
    if program.birthday_reward_points is None or program.birthday_reward_points < 0:
        problems.append(f"birthday_reward_points must be >= 0, got {program.birthday_reward_points}")
    if not (program.birthday_message or "").strip():
        problems.append("birthday_message is empty")
    try:
        program.zone(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {program.timezone!r} is not an IANA time zone name")
    if program.birthday_min_notice_days < 0 or program.birthday_max_delay_days < 0:
        problems.append("birthday_min_notice_days and birthday_max_delay_days must be >= 0")
    return problems


def check_config(program: Program, default_timezone: str) -> None:
    problems = config_problems(program, default_timezone)
    if problems:
        raise InvalidProgramConfig(f"program {program.slug!r} has invalid config: " + "; ".join(problems))


_SETTABLE = {
    "name", "birthday_bot_enabled", "birthday_reward_points", "birthday_message",
    "default_phone_region", "date_order", "timezone", "birthday_min_notice_days",
    "birthday_max_delay_days", "birthday_send_hour",
}


def save_program(conn: Connection, slug: str, name: str, **settings) -> Program:
    """Create the program or update the given settings (used by the demo, tests and operators)."""
    check_slug(slug)
    unknown = set(settings) - _SETTABLE
    if unknown:
        raise ValueError(f"unknown program settings: {sorted(unknown)}")
    values = {"slug": slug, "name": name, **settings}
    columns = sorted(values)
    # Column names come from the _SETTABLE whitelist above, values are bound parameters.
    insert = text(
        f"INSERT INTO programs ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT (slug) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns if c != 'slug')}"
    )
    conn.execute(insert, values)
    return get_program(conn, slug)


def program_slugs(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(text("SELECT slug FROM programs ORDER BY slug"))]


def valid_program_slugs(conn: Connection, warn=lambda message: None) -> list[str]:
    """Slugs usable as partition keys and folder names. The front end writes `programs` directly,
    so a slug like 'a|b' (ambiguous in 'date|program' keys) is skipped with a warning."""
    valid = []
    for slug in program_slugs(conn):
        try:
            valid.append(check_slug(slug))
        except InvalidName as exc:
            warn(f"{exc}; the program gets no birthday partitions until its slug is fixed")
    return valid


__all__ = [
    "InvalidProgramConfig",
    "Program",
    "ProgramNotFound",
    "check_config",
    "config_problems",
    "csv_column_mapping",
    "get_program",
    "list_programs",
    "program_slugs",
    "save_program",
    "valid_program_slugs",
]
