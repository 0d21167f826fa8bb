"""Per-program birthday bot settings

Per-program birthday bot settings. A NULL timezone means "the deployment's LOYALTY_TIMEZONE",
which a column default cannot read. Its SQL:
sql/{postgresql,sqlite}/0002_birthday_bot.sql (was the old runner's sql/002_birthday_bot.sql).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from loyalty_pipeline.migrations import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0002_birthday_bot")


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
