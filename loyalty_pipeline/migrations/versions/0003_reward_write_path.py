"""Birthday bot write path: outbox without copied foreign keys (PostgreSQL)

The birthday bot's write path at scale (issue 5's 365-day x 10-program backfill). PostgreSQL only.

notifications is an outbox: each row belongs to its birthday_logs row (birthday_log_id, which
cascades from passes, users and programs), and pass_id, program_id and user_id are copies taken
from that reward in the same statement. Checking them again as foreign keys cost three index
probes and row locks per message (1.2 s of a 46k-message backfill run, most of it dirtying
users' pages for a KEY SHARE lock); the reward itself stays checked. SQLite cannot drop a
constraint without rebuilding the table, and keeps them. Its SQL: sql/postgresql/0003_reward_write_path.sql
(was the old runner's sql/003_reward_write_path.sql); sql/sqlite/0003_reward_write_path.sql says why
SQLite has nothing to do.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0003"
down_revision = "0002"

upgrade, downgrade = sql_revision("0003_reward_write_path")
