"""Time-ordered (UUID v7) ids for bulk-written tables (PostgreSQL)

Ids that grow with time (the UUID version 7 layout: 48 bits of Unix milliseconds, then random
bits) for the tables that take bulk inserts. PostgreSQL only. A random id lands anywhere in its
primary-key index, so a large upload dirtied - and after each checkpoint logged in full - nearly
every leaf page of users' and passes' keys; time-ordered ids fill the index at one edge. Measured
on the 1M-row upload: the passes insert 5.0 s -> 3.5 s. Ids stay defaults in the database, so other
writers (the front end) need not change. Its SQL: sql/postgresql/0004_time_ordered_ids.sql (was the
old runner's sql/004_time_ordered_ids.sql); SQLite keeps 0001's random ids, as its file says.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0004"
down_revision = "0003"

upgrade, downgrade = sql_revision("0004_time_ordered_ids")
