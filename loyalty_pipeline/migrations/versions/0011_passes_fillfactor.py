"""passes_master keeps a tenth of each page free (PostgreSQL)

So a reward's balance update (points_balance is in no index) stays on its page, a HOT update, instead
of moving the row and adding an entry to each of the table's three indexes; why and what it measured
is in its SQL, sql/postgresql/0011_passes_fillfactor.sql. On SQLite there is nothing to do.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0011"
down_revision = "0010"

upgrade, downgrade = sql_revision("0011_passes_fillfactor")
