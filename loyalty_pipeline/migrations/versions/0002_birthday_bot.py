"""Per-program birthday bot settings

Per-program birthday bot settings. A NULL timezone means "the deployment's LOYALTY_TIMEZONE",
which a column default cannot read. Its SQL, the same on both databases:
sql/common/0002_birthday_bot.sql (was the old runner's sql/002_birthday_bot.sql).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0002"
down_revision = "0001"

upgrade, downgrade = sql_revision("0002_birthday_bot")
