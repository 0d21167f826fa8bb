"""Cheaper time-ordered ids (PostgreSQL)

loyalty_uuid_v7() keeps the UUID version 7 layout of revision 0004 and draws its random bits from
random() instead of gen_random_uuid(), whose strong random source was most of each id's cost: 4.1 ->
1.6 us an id, and an upload of 1M rows makes about a million (its new users and passes, its issue
rows; a year's backfill of ten programs as many birthday logs and notifications). Its SQL:
sql/postgresql/0010_cheaper_time_ordered_ids.sql; on SQLite there is nothing to do, as its file says.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0010"
down_revision = "0009"

upgrade, downgrade = sql_revision("0010_cheaper_time_ordered_ids")
