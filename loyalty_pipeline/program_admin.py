"""`loyalty programs list|show|add|set`: operators manage programs without SQL. Every change is
checked by programs.setting_problems (the rules the birthday bot and the uploads apply) and
refused - exit 2, nothing written - with the reason."""

from __future__ import annotations

import argparse
import json
import sys

from loyalty_pipeline.db import make_engine
from loyalty_pipeline.names import InvalidName
from loyalty_pipeline.programs import (
    SETTINGS,
    InvalidProgramConfig,
    Program,
    ProgramNotFound,
    change_program,
    get_program,
    list_programs,
    parse_settings,
    setting_problems,
)

REFUSED = 2


def program_record(program: Program, default_timezone: str) -> dict:
    """The program as scripts read it (--json): every setting, csv_columns as JSON, and its problems."""
    record = {"slug": program.slug, **{name: getattr(program, name) for name in SETTINGS}}
    columns = program.csv_columns
    if isinstance(columns, str) and columns.strip():
        try:
            record["csv_columns"] = json.loads(columns)
        except ValueError:
            pass  # shown as stored; setting_problems says what is wrong with it
    problems = setting_problems(program, default_timezone)
    record["config_valid"] = not problems
    record["problems"] = problems
    return record


def _list(args, settings) -> int:
    with make_engine(settings.database_url).connect() as conn:
        records = [program_record(p, settings.timezone) for p in list_programs(conn)]
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return 0
    header = ("SLUG", "NAME", "BOT", "POINTS", "TIMEZONE", "SEND HOUR", "CONFIG")
    rows = [header] + [
        (
            r["slug"],
            r["name"],
            "on" if r["birthday_bot_enabled"] else "off",
            str(r["birthday_reward_points"]),
            r["timezone"] or f"default ({settings.timezone})",
            str(r["birthday_send_hour"]),
            "valid" if r["config_valid"] else "INVALID: " + "; ".join(r["problems"]),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    return 0


def _print_program(record: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    for key, value in record.items():
        if key == "csv_columns" and isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        if key == "problems":
            value = "; ".join(value) or "none"
        print(f"{key}: {'' if value is None else value}")


def _show(args, settings) -> int:
    with make_engine(settings.database_url).connect() as conn:
        program = get_program(conn, args.slug)
    _print_program(program_record(program, settings.timezone), args.json)
    return 0


def _change(args, settings, *, create: bool) -> int:
    assignments = list(args.settings)
    if create:  # --name NAME [key=value ...]: argparse ends the positionals at the first option
        assignments += args.name[1:]
    values = parse_settings(assignments)
    if create:
        values["name"] = args.name[0]
    with make_engine(settings.database_url).begin() as conn:
        program = change_program(conn, args.slug, values, settings.timezone, create=create)
    _print_program(program_record(program, settings.timezone), args.json)
    return 0


def refusing(command: str, handler):
    """`handler` as a CLI command: a refused program, setting or name prints the reason (and, with
    --json, {"error": ...}) and exits 2 - the programs and members commands alike."""

    def run(args, settings) -> int:
        try:
            return handler(args, settings)
        except (InvalidProgramConfig, ProgramNotFound, InvalidName) as exc:
            message = str(exc)
            if getattr(args, "json", False):
                print(json.dumps({"error": message}))
            print(f"loyalty {command} {args.action}: {message}", file=sys.stderr)
            return REFUSED

    return run


def register(commands: argparse._SubParsersAction) -> None:
    programs = commands.add_parser("programs", help="list, show, add and change programs (validated)")
    actions = programs.add_subparsers(dest="action", required=True)
    settings_help = "key=value settings: " + ", ".join(SETTINGS)

    list_ = actions.add_parser(
        "list", help="every program: slug, name, bot on/off, points, time zone, send hour, valid"
    )
    list_.set_defaults(func=refusing("programs", _list))
    show = actions.add_parser("show", help="all settings of one program and what is wrong with them")
    show.add_argument("slug")
    show.set_defaults(func=refusing("programs", _show))
    add = actions.add_parser("add", help="create a program")
    add.add_argument("slug")
    add.add_argument("--name", required=True, nargs="+", metavar="NAME", help="then optionally key=value settings")
    add.add_argument("settings", nargs="*", metavar="key=value", help=settings_help)
    add.set_defaults(func=refusing("programs", lambda args, settings: _change(args, settings, create=True)))
    set_ = actions.add_parser("set", help="change settings of a program")
    set_.add_argument("slug")
    set_.add_argument("settings", nargs="+", metavar="key=value", help=settings_help)
    set_.set_defaults(func=refusing("programs", lambda args, settings: _change(args, settings, create=False)))
    for parser in (list_, show, add, set_):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
