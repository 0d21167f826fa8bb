"""`loyalty`: the command line for operators and the demo. Every run goes through Dagster on the
instance in DAGSTER_HOME, so it shows in the UI like a scheduled one."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

from loyalty_pipeline import config, members, program_admin, schema_admin, upload_admin
from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.errors import one_line
from loyalty_pipeline.instance import dagster_instance
from loyalty_pipeline.names import InvalidName
from loyalty_pipeline.run_results import failure_reason
from loyalty_pipeline.runs import RunError, ingest_file, run_birthdays
from loyalty_pipeline.summaries import upload_summary


def cmd_init_db(args, settings: Settings) -> int:
    applied = migrate(make_engine(settings.database_url))
    print(
        f"schema up to date on {settings.database_url.split('@')[-1]}"
        + (f" (applied {', '.join(applied)})" if applied else " (nothing to apply)")
    )
    return 0


def cmd_ingest(args, settings: Settings) -> int:
    key, result = ingest_file(dagster_instance(), settings, Path(args.file), args.program)
    if not result.success:
        reason = failure_reason(result)
        raise RunError(reason if reason.startswith(key) else f"{key}: {reason}")
    print(upload_summary(make_engine(settings.database_url), key))
    return 0


def _print_outcomes(outcomes, start: date, end: date) -> int:
    span = start.isoformat() if start == end else f"{start.isoformat()}..{end.isoformat()}"
    for slug, ok, summary in outcomes:
        print(f"{span}|{slug}: {'ok' if ok else 'FAILED'} - {summary}")
    return 0 if all(ok for _, ok, _ in outcomes) else 1


def cmd_rewards(args, settings: Settings) -> int:
    day = date.fromisoformat(args.date)
    return _print_outcomes(run_birthdays(dagster_instance(), settings, day, day, args.program), day, day)


def cmd_backfill(args, settings: Settings) -> int:
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    return _print_outcomes(run_birthdays(dagster_instance(), settings, start, end, args.program), start, end)


def cmd_demo(args, settings: Settings) -> int:
    from loyalty_pipeline.demo import run_demo

    return run_demo(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init-db", help="create or upgrade the schema on LOYALTY_DATABASE_URL").set_defaults(
        func=cmd_init_db
    )
    ingest = commands.add_parser(
        "ingest", help="register a customer file (.csv, .tsv, .txt or .xlsx) as an upload of a program and ingest it"
    )
    ingest.add_argument("file", help="the file; its name (kept as the upload's partition key) says its kind")
    ingest.add_argument("--program", required=True, metavar="SLUG")
    ingest.set_defaults(func=cmd_ingest)
    rewards = commands.add_parser("rewards", help="run the birthday partitions of one day")
    rewards.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    rewards.add_argument("--program", metavar="SLUG")
    rewards.set_defaults(func=cmd_rewards)
    backfill = commands.add_parser("backfill", help="run the birthday partitions of a date range (one run per program)")
    backfill.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--end", required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--program", metavar="SLUG")
    backfill.set_defaults(func=cmd_backfill)
    commands.add_parser("demo", help="sample programs and CSVs on the embedded database").set_defaults(func=cmd_demo)
    schema_admin.register(commands)
    program_admin.register(commands)
    members.register(commands)
    upload_admin.register(commands)
    return parser


# A value such as a year-less ISO birthday (--03-14) looks like an option to argparse.
_DASHED_VALUE = re.compile(r"--\d")


def _attach_dashed_values(argv: list[str]) -> list[str]:
    """`--birth-date --03-14` as `--birth-date=--03-14`, the form argparse accepts."""
    joined: list[str] = []
    for arg in argv:
        if joined and _DASHED_VALUE.match(arg) and joined[-1].startswith("--") and "=" not in joined[-1]:
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(_attach_dashed_values(sys.argv[1:] if argv is None else list(argv)))
    # `programs add SLUG --name NAME --json key=value`: argparse has closed the settings before --json.
    if extras and isinstance(getattr(args, "settings", None), list) and not any(e.startswith("-") for e in extras):
        args.settings += extras
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        return args.func(args, Settings.from_env())
    except (RunError, InvalidName, ValueError, LookupError) as exc:
        print(f"loyalty {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an operator needs the reason, not a traceback
        if config.DEBUG.is_set():
            raise
        print(f"loyalty {args.command}: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
