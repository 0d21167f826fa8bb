"""`loyalty db current|history`: where the database's schema stands among the Alembic revisions."""

from __future__ import annotations

import argparse

from alembic import command

from loyalty_pipeline.db import alembic_config, make_engine


def _current(args, settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            command.current(alembic_config(conn), verbose=args.verbose)
    finally:
        engine.dispose()
    return 0


def _history(args, settings) -> int:
    command.history(alembic_config(), verbose=args.verbose)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="the schema's Alembic revision (current) and the revisions (history)")
    actions = db.add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("current", _current, "the revision LOYALTY_DATABASE_URL is at"),
        ("history", _history, "every revision, newest first"),
    ):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("-v", "--verbose", action="store_true")
        parser.set_defaults(func=handler)
