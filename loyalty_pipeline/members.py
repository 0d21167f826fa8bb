"""Entering one customer by hand (`loyalty members add`) and looking one up (`loyalty members show`).

A manual entry is a one-row upload: the same reader, validation (the program's date_order and phone
region) and merge as a CSV row, recorded in `uploads` under the key
`<program>/manual/<UTC timestamp>` with file_name `manual entry`, its warnings or reject reason in
`upload_issues` - so the data team sees what changed and from where next to the files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from loyalty_pipeline.clock import now_utc
from loyalty_pipeline.csv_reader import read_csv
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.ingest import IngestResult, load_upload
from loyalty_pipeline.program_admin import REFUSED, refusing
from loyalty_pipeline.programs import get_program
from loyalty_pipeline.validation import validate_upload

MANUAL_FILE_NAME = "manual entry"
_COLUMNS = ("email", "first_name", "last_name", "birth_date", "phone_number")


@dataclass(frozen=True)
class ManualEntry:
    result: IngestResult
    email: str | None  # as stored (normalised), None when the row was rejected
    issues: list[dict]

    @property
    def rejected(self) -> bool:
        return self.result.rows_rejected > 0


def _one_row_csv(values: dict) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    writer.writerow([values.get(column) or "" for column in _COLUMNS])
    return buffer.getvalue().encode("utf-8")


def add_member(engine: Engine, program_slug: str, values: dict, *, now: datetime, default_timezone: str) -> ManualEntry:
    """Merge one customer into `program` exactly as a CSV row with these cells would be."""
    with engine.connect() as conn:
        program = get_program(conn, program_slug)
    key = f"{program.slug}/manual/{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manual-entry.csv"
        path.write_bytes(_one_row_csv(values))
        raw = read_csv(path, file_label=MANUAL_FILE_NAME)
    today = now.astimezone(program.zone(default_timezone)).date()
    validated = validate_upload(
        raw, date_order=program.date_order, phone_region=program.default_phone_region, today=today
    )
    result = load_upload(
        engine, key=key, file_name=MANUAL_FILE_NAME, sha256=raw.sha256, program=program, validated=validated, now=now
    )
    with engine.connect() as conn:
        issues = [
            dict(row._mapping)
            for row in conn.execute(
                text(
                    'SELECT "column", value, severity, reason FROM upload_issues WHERE upload_key = :key '
                    'ORDER BY severity, "column"'
                ),
                {"key": key},
            )
        ]
    email = validated.users["email"][0] if validated.users.height else None
    return ManualEntry(result=result, email=email, issues=issues)


def _rows(conn: Connection, sql: str, **params) -> list[dict]:
    return [
        {k: (str(v) if isinstance(v, datetime) else v) for k, v in row._mapping.items()}
        for row in conn.execute(text(sql), params)
    ]


def member_details(conn: Connection, email: str) -> dict | None:
    """The person with `email` (as typed: trimmed and lower-cased like the database does), their
    passes with balances and their birthday rewards."""
    people = _rows(
        conn,
        """
        SELECT id, email, first_name, last_name, birth_date, birth_month, birth_day, birth_date_set_at,
               phone_number, created_at, updated_at
        FROM users WHERE email = :email""",
        email=email.strip().lower(),
    )
    if not people:
        return None
    person = {k: (str(v) if k in ("id", "birth_date") and v is not None else v) for k, v in people[0].items()}
    passes = _rows(
        conn,
        """
        SELECT pr.slug AS program, p.id AS pass_id, p.status, p.points_balance, p.created_at
        FROM passes_master p JOIN programs pr ON pr.id = p.program_id
        WHERE p.user_id = :user_id ORDER BY pr.slug""",
        user_id=person["id"],
    )
    rewards = _rows(
        conn,
        """
        SELECT pr.slug AS program, b.year, b.reward_date, b.points, b.created_at
        FROM birthday_logs b JOIN passes_master p ON p.id = b.pass_id JOIN programs pr ON pr.id = b.program_id
        WHERE p.user_id = :user_id ORDER BY b.reward_date, pr.slug""",
        user_id=person["id"],
    )
    for row in passes:
        row["pass_id"] = str(row["pass_id"])
    for row in rewards:
        row["reward_date"] = str(row["reward_date"])
    return {"user": person, "passes": passes, "birthday_rewards": rewards}


def _add(args, settings) -> int:
    values = {
        "email": args.email,
        "first_name": args.first_name,
        "last_name": args.last_name,
        "birth_date": args.birth_date,
        "phone_number": args.phone,
    }
    engine = make_engine(settings.database_url)
    try:
        entry = add_member(
            engine, args.program, values, now=now_utc(settings.frozen_now), default_timezone=settings.timezone
        )
    finally:
        engine.dispose()
    r = entry.result
    outcome = (
        "rejected"
        if entry.rejected
        else "created"
        if r.users_created
        else "updated"
        if r.users_updated
        else "unchanged"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "outcome": outcome,
                    "email": entry.email,
                    "program": args.program,
                    **r.as_dict(),
                    "issues": entry.issues,
                },
                indent=2,
                default=str,
            )
        )
    else:
        if entry.rejected:
            reasons = "; ".join(f"{i['column']}: {i['reason']}" for i in entry.issues if i["severity"] == "error")
            print(f"rejected: {reasons} (recorded as upload {r.upload_key})", file=sys.stderr)
        else:
            pass_note = "new pass" if r.passes_created else "existing pass"
            print(f"{outcome}: {entry.email} in {args.program} ({pass_note}; upload {r.upload_key})")
        for issue in entry.issues:
            if issue["severity"] == "warning":
                print(f"warning: {issue['column']}: {issue['reason']}")
    return REFUSED if entry.rejected else 0


def _show(args, settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            details = member_details(conn, args.email)
    finally:
        engine.dispose()
    if details is None:
        print(f"loyalty members show: no user with email {args.email.strip().lower()!r}", file=sys.stderr)
        return REFUSED
    if args.json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    for key, value in details["user"].items():
        print(f"{key}: {'' if value is None else value}")
    print("passes:" if details["passes"] else "passes: none")
    for p in details["passes"]:
        print(
            f"  {p['program']}: {p['status']}, balance {p['points_balance']} (pass {p['pass_id']}, since {p['created_at']})"
        )
    print("birthday rewards:" if details["birthday_rewards"] else "birthday rewards: none")
    for b in details["birthday_rewards"]:
        print(f"  {b['reward_date']} {b['program']}: {b['points']} points ({b['year']})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    members = commands.add_parser("members", help="enter one customer by hand, or look one up")
    actions = members.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="merge one customer into a program like a CSV row (recorded as an upload)")
    add.add_argument("--program", required=True, metavar="SLUG")
    add.add_argument("--email", required=True)
    add.add_argument("--first-name")
    add.add_argument("--last-name")
    add.add_argument("--birth-date", help="as in the program's files (its date_order), e.g. 03/14/1990 or 03/14")
    add.add_argument("--phone")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=refusing("members", _add))
    show = actions.add_parser("show", help="a person, their passes with balances, and their birthday rewards")
    show.add_argument("email")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=refusing("members", _show))
