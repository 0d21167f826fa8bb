"""Programs (tenants) and the rules they configure in the `programs` table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from loyalty_pipeline.db import db_time
from loyalty_pipeline.fields import COUNTRY, FIELDS
from loyalty_pipeline.names import check_slug

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
    if value is None:  # JSON null, as a front end may write "no mapping"
        return None
    if not isinstance(value, dict):
        raise InvalidProgramConfig(
            f"program {program.slug!r}: csv_columns must be a JSON object of "
            f"field -> header name(s), got {type(value).__name__}"
        )
    mapping = {}
    for name, headers in value.items():
        headers = [headers] if isinstance(headers, str) else headers
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) and h.strip() for h in headers):
            raise InvalidProgramConfig(
                f"program {program.slug!r}: csv_columns[{name!r}] must be a header name "
                "or a non-empty list of header names"
            )
        if name not in (*FIELDS, "full_name", COUNTRY):
            raise InvalidProgramConfig(
                f"program {program.slug!r}: csv_columns maps an unknown field {name!r} (to "
                + ", ".join(repr(" ".join(h.split())[:80]) for h in headers[:5])
                + f"); the fields are {', '.join(FIELDS)}, full_name, {COUNTRY}"
            )
        mapping[name] = headers
    return mapping or None


def get_program(conn: Connection, slug: str) -> Program:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM programs WHERE slug = :slug"), {"slug": slug}).first()
    if row is None:
        raise ProgramNotFound(f"program {slug!r} does not exist in the programs table")
    return _program(row)


def get_programs(conn: Connection, slugs: Iterable[str]) -> dict[str, Program]:
    """The programs of these slugs that exist, by slug (one statement)."""
    slugs = sorted(set(slugs))
    if not slugs:
        return {}
    query = text(f"SELECT {_COLUMNS} FROM programs WHERE slug IN :slugs").bindparams(bindparam("slugs", expanding=True))
    return {p.slug: p for p in map(_program, conn.execute(query, {"slugs": slugs}))}


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


def setting_problems(program: Program, default_timezone: str) -> list[str]:
    """Everything wrong with a program's settings: the birthday bot's rules (config_problems) and
    those of its uploads. `loyalty programs` refuses a change that leaves any of these."""
    problems = config_problems(program, default_timezone)
    if not (program.name or "").strip():
        problems.append("name is empty")
    if not 0 <= program.birthday_send_hour <= 23:
        problems.append(f"birthday_send_hour must be an hour 0-23, got {program.birthday_send_hour}")
    if program.date_order not in DATE_ORDERS:
        problems.append(f"date_order must be one of {', '.join(DATE_ORDERS)}, got {program.date_order!r}")
    if (program.default_phone_region or "").upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            f"default_phone_region {program.default_phone_region!r} is not a phone region "
            "(an ISO 3166 country code such as US, GB, DE)"
        )
    try:
        csv_column_mapping(program)
    except InvalidProgramConfig as exc:
        problems.append(str(exc).removeprefix(f"program {program.slug!r}: "))
    return problems


DATE_ORDERS = ("MDY", "DMY")


_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")
_DEFAULT_WORDS = ("", "default", "null", "none")


# The integer settings are PostgreSQL `integer` columns.
_INTEGER_MAX = 2**31 - 1


def _integer(raw: str) -> int:
    value = int(raw.strip())
    if abs(value) > _INTEGER_MAX:
        raise ValueError(f"out of range (an integer setting is at most {_INTEGER_MAX})")
    return value


def _boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _optional_text(raw: str) -> str | None:
    return None if raw.strip().lower() in _DEFAULT_WORDS else raw.strip()


def _json_object(raw: str) -> str | None:
    if raw.strip().lower() in _DEFAULT_WORDS:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object of field -> header name(s)")
    return json.dumps(value, ensure_ascii=False)


# Every setting of the programs table, with how a value typed by an operator is read.
SETTINGS = {
    "name": str.strip,
    "birthday_bot_enabled": _boolean,
    "birthday_reward_points": _integer,
    "birthday_message": str,
    "default_phone_region": lambda raw: raw.strip().upper(),
    "date_order": lambda raw: raw.strip().upper(),
    "timezone": _optional_text,  # default/empty: the deployment's LOYALTY_TIMEZONE
    "birthday_min_notice_days": _integer,
    "birthday_max_delay_days": _integer,
    "birthday_send_hour": _integer,
    "csv_columns": _json_object,  # default/empty: recognise the headers from the field table
}


def parse_settings(assignments: list[str]) -> dict:
    """`key=value` words typed by an operator -> column values. InvalidProgramConfig names the word."""
    values = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep:
            raise InvalidProgramConfig(f"{assignment!r} is not key=value")
        if key not in SETTINGS:
            raise InvalidProgramConfig(f"unknown setting {key!r}; the settings are {', '.join(SETTINGS)}")
        try:
            values[key] = SETTINGS[key](raw)
        except (ValueError, TypeError) as exc:
            raise InvalidProgramConfig(f"{key}={raw!r}: {exc}") from exc
    return values


def save_program(
    conn: Connection, slug: str, name: str, *, enabled_since: datetime | None = None, **settings
) -> Program:
    """Create the program or update the given settings (used by the demo, tests and operators).

    The database records when the birthday bot is switched on (`programs.birthday_enabled_since`,
    migration 0008: its `now`). A writer with its own clock - a replay, a test - gives that moment
    as `enabled_since`: it is stamped if this statement switches the bot on, and ignored otherwise."""
    check_slug(slug)
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown program settings: {sorted(unknown)}")
    values = {"slug": slug, "name": name, **settings}
    columns = sorted(values)
    updates = [f"{c} = EXCLUDED.{c}" for c in columns if c != "slug"]
    if enabled_since is not None:
        values["birthday_enabled_since"] = db_time(conn, enabled_since)
        columns.append("birthday_enabled_since")
        # Kept when the bot was already on: the stamp belongs to the statement that switches it on.
        updates.append(
            "birthday_enabled_since = CASE WHEN programs.birthday_bot_enabled THEN programs.birthday_enabled_since "
            "ELSE EXCLUDED.birthday_enabled_since END"
        )
    # Column names come from the SETTINGS whitelist above, values are bound parameters.
    insert = text(
        f"INSERT INTO programs ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT (slug) DO UPDATE SET {', '.join(updates)}"
    )
    conn.execute(insert, values)
    return get_program(conn, slug)


def change_program(
    conn: Connection, slug: str, values: dict, default_timezone: str, *, create: bool = False
) -> Program:
    """Create (`create`) or change a program, refusing with InvalidProgramConfig - before anything is
    written - a change that leaves any setting_problems. A new program starts from the table's
    defaults; run inside the caller's transaction, so a refusal leaves no trace."""
    check_slug(slug)
    exists = conn.execute(text("SELECT 1 FROM programs WHERE slug = :slug"), {"slug": slug}).first() is not None
    if create and exists:
        raise InvalidProgramConfig(f"program {slug!r} already exists (change it with `loyalty programs set`)")
    if create:
        if not str(values.get("name") or "").strip():
            raise InvalidProgramConfig("a new program needs a name")
        conn.execute(
            text("INSERT INTO programs (slug, name) VALUES (:slug, :name)"), {"slug": slug, "name": values["name"]}
        )
    base = get_program(conn, slug)
    candidate = replace(base, **values)
    problems = setting_problems(candidate, default_timezone)
    if problems:
        raise InvalidProgramConfig(f"program {slug!r} not {'added' if create else 'changed'}: " + "; ".join(problems))
    changes = {key: value for key, value in values.items() if key != "name"}
    return save_program(conn, slug, candidate.name, **changes)


__all__ = [
    "DATE_ORDERS",
    "SETTINGS",
    "InvalidProgramConfig",
    "Program",
    "ProgramNotFound",
    "change_program",
    "check_config",
    "config_problems",
    "csv_column_mapping",
    "get_program",
    "list_programs",
    "parse_settings",
    "save_program",
    "setting_problems",
]
