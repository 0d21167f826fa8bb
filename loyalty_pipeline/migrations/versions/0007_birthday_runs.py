"""birthday_runs: each program's birthday result per day; enabled-since and late-alert records

The birthday bot's partitions are days; the programs of a day are a batch inside the run. Each
(day, program) result is a `birthday_runs` row, written in the same transaction as that program's
rewards, so a program's outcome is visible per day and the schedule, the catch-up sensor and the
late alert read in one query what is done, what failed and what is missing. `rewarded` and `points`
are the day's totals over every attempt; the other columns describe the latest attempt (`run_id`),
and `rewarded_by_run` is what that attempt added.

`birthday_enabled_since`: when each program's bot was (last) seen enabled. Catch-up never reaches
back before it, so a program is not back-filled for the days before it was enabled.

`birthday_late_alerts`: one late alert per (program, day); the freshness sensor records each alert
it delivered.

A database with history (every one at 0006, and those adopted from the hand-written runner) gets a
`succeeded` row per program and day that already has rewards in `birthday_logs`, so catch-up knows
each program's last successful day (`eligible` is the rewarded count: earlier runs did not record
it), and the programs enabled today count as enabled since they were created. Every statement is
idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING). Its SQL: the tables in
sql/{postgresql,sqlite}/0007_birthday_runs.1.sql, then the indexes and the rows from history in
sql/common/0007_birthday_runs.2.sql.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0007"
down_revision = "0006"

upgrade, downgrade = sql_revision("0007_birthday_runs")
