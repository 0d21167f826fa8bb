"""Per-program birthday bot settings

Per-program birthday bot settings. A NULL timezone means "the deployment's LOYALTY_TIMEZONE",
which a column default cannot read. Was sql/002_birthday_bot.sql.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from loyalty_pipeline.migrations import execute

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        "ALTER TABLE programs ADD COLUMN timezone text",
        "ALTER TABLE programs ADD COLUMN birthday_min_notice_days integer NOT NULL DEFAULT 0"
        " CHECK (birthday_min_notice_days >= 0)",
        "ALTER TABLE programs ADD COLUMN birthday_max_delay_days integer NOT NULL DEFAULT 30"
        " CHECK (birthday_max_delay_days >= 0)",
        "ALTER TABLE programs ADD COLUMN birthday_send_hour integer NOT NULL DEFAULT 9"
        " CHECK (birthday_send_hour BETWEEN 0 AND 23)",
    )


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
