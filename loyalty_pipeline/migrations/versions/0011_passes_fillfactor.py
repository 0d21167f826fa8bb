"""passes_master keeps a tenth of each page free (PostgreSQL)

A reward changes a pass's points_balance, which no index holds: with room on its page, the new row
version stays there (a HOT update), without new entries in the table's three indexes. Densely
filled pages had no room, so every pass's first reward moved it: on the benchmark's 5M passes the
balance updates of three programs x 365 days took 6.0 s, now 2.0 s. Its SQL:
sql/postgresql/0011_passes_fillfactor.sql; on SQLite there is nothing to do, as its file says.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0011"
down_revision = "0010"

upgrade, downgrade = sql_revision("0011_passes_fillfactor")
