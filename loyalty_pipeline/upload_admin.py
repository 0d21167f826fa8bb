"""`loyalty uploads list|show|rerun`: each file's result as the `uploads` table records it, and
ingesting one file or a set again (through Dagster, so the runs show in the UI)."""

from __future__ import annotations

import argparse
import json

from loyalty_pipeline import uploads
from loyalty_pipeline.db import make_engine
from loyalty_pipeline.instance import dagster_instance
from loyalty_pipeline.program_admin import refusing
from loyalty_pipeline.runs import RunError, ingest_keys
from loyalty_pipeline.summaries import upload_summary

_LIST_COLUMNS = ("key", "status", "rows_read", "rows_accepted", "rows_rejected", "warnings", "arrived_at", "error")


def _rows(args, settings, limit=None) -> list[dict]:
    with make_engine(settings.database_url).connect() as conn:
        return uploads.select(
            conn, keys=getattr(args, "keys", ()) or (), program=args.program, status=args.status, limit=limit
        )


def _list(args, settings) -> int:
    rows = _rows(args, settings, limit=args.limit)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        error = f"  {row['error'][:120]}" if row["error"] else ""
        print(
            f"{row['key']}  {row['status']:<9} {row['rows_read']:>7} read {row['rows_accepted']:>7} accepted "
            f"{row['rows_rejected']:>6} rejected  arrived {str(row['arrived_at'])[:19]}  run {row['run_id'] or '-'}"
            + error
        )
    if not rows:
        print("no uploads match")
    return 0


def _show(args, settings) -> int:
    engine = make_engine(settings.database_url)
    for key in args.keys:
        print(upload_summary(engine, key))
        with engine.connect() as conn:
            for row in uploads.select(conn, keys=[key]):
                print(
                    f"  status {row['status']}, run {row['run_id'] or '-'}, arrived {str(row['arrived_at'])[:19]}, "
                    f"finished {str(row['finished_at'] or '-')[:19]}, sha256 {row['sha256'][:16]}; "
                    f"issues: upload_issues WHERE upload_key = '{key}'"
                )
    return 0


def _rerun(args, settings) -> int:
    if not (args.keys or args.program or args.status):
        raise RunError("name the uploads to rerun: KEY ..., --program SLUG and/or --status STATUS")
    keys = [row["key"] for row in _rows(args, settings)]
    missing = sorted(set(args.keys) - set(keys))
    if missing:
        raise RunError(f"no such upload: {', '.join(missing)} (see `loyalty uploads list`)")
    if not keys:
        print("no uploads match")
        return 0
    results = ingest_keys(dagster_instance(), settings, sorted(keys), trigger="rerun")
    engine = make_engine(settings.database_url)
    for key in sorted(keys):
        print(upload_summary(engine, key))
    print(f"{len(keys)} upload(s) in {len(results)} run(s): " + ", ".join(r.run_id for r in results))
    with engine.connect() as conn:
        failed = [row["key"] for row in uploads.select(conn, keys=keys, status="failed")]
    return 1 if failed else 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("uploads", help="each uploaded file's status and counts; ingest files again")
    actions = parser.add_subparsers(dest="action", required=True)

    def filters(sub, keys_help: str):
        sub.add_argument("keys", nargs="*", metavar="KEY", help=keys_help)
        sub.add_argument("--program", metavar="SLUG")
        sub.add_argument("--status", choices=uploads.STATUSES)

    list_ = actions.add_parser("list", help="uploads, newest arrival first")
    filters(list_, "only these upload keys (<program>/<file>)")
    list_.add_argument("--limit", type=int, default=50)
    list_.add_argument("--json", action="store_true")
    list_.set_defaults(func=refusing("uploads", _list))
    show = actions.add_parser("show", help="one upload's counts, status, run and first issues")
    show.add_argument("keys", nargs="+", metavar="KEY")
    show.set_defaults(func=refusing("uploads", _show))
    rerun = actions.add_parser("rerun", help="read, validate and load uploads again (by key, program and/or status)")
    filters(rerun, "upload keys (<program>/<file>) to ingest again")
    rerun.set_defaults(func=refusing("uploads", _rerun))
