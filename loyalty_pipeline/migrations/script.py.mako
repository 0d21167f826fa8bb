"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from pathlib import Path

from loyalty_pipeline.migrations import run_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    # Runs sql/postgresql/<this file's name>.sql or sql/sqlite/<this file's name>.sql: write both.
    run_sql(Path(__file__).stem)


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
