"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from pathlib import Path

from loyalty_pipeline.migrations import sql_revision

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
% if branch_labels:
branch_labels = ${repr(branch_labels)}
% endif
% if depends_on:
depends_on = ${repr(depends_on)}
% endif

# Runs sql/postgresql/<this file's name>.sql or sql/sqlite/<this file's name>.sql (write both), or
# sql/common/<this file's name>.sql, or numbered steps of them: see loyalty_pipeline/migrations/__init__.py.
upgrade, downgrade = sql_revision(Path(__file__).stem)
