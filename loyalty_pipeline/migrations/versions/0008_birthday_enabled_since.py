"""programs.birthday_enabled_since, kept by the database; birthday_alerts per (program, day, status)

`programs.birthday_enabled_since`: the moment the program's birthday bot was switched on, set by
the database whoever writes the row (the pipeline, the front end's plain SQL, staff): when a row is
inserted enabled, or `birthday_bot_enabled` turns true, it becomes the transaction's `now` unless
the statement set it itself (a writer with its own clock - a replay, a test - stamps it); when the
bot is switched off it is cleared. Catch-up covers the days from then on (within its limits), so a
program created or enabled while the daemon was down is not rewarded from the daemon's return only.
It replaces the table `birthday_enabled_since` (0007), whose value was the daemon's clock when it
first saw the program enabled.

Existing rows: an enabled program takes the daemon's sighting when there is one (the best record of
its last switch-on: exact while the daemon was running), else its `created_at` (it was created
enabled, or enabled before the daemon ever saw it; it cannot have been enabled earlier).

`birthday_alerts` replaces `birthday_late_alerts`: one row per (program, day, status) the alert
sensor dealt with - `FAILURE` (the day failed), `NOT_RUN` (late with no result), `EXPIRED` (lost
for good: recorded `skipped` by catch-up). `noticed_at` is when it was first seen, `alerted_at`
when its alert was delivered (NULL: waiting - a late day whose run is requested or in flight, or a
lost day's alert not delivered yet). Existing late alerts are carried over as delivered, `FAILURE`
when the day's result is `failed`, else `NOT_RUN`.

PostgreSQL: a BEFORE trigger. SQLite: triggers cannot change NEW, so AFTER triggers rewrite the row
(SQLite does not run triggers from a trigger's own statements). Both fire only when there is
something to set, so the pipeline's own writes of other columns do not run them.

Its SQL, in three steps: the column and the table (sql/{postgresql,sqlite}/0008_birthday_enabled_since.1.sql),
the existing rows carried over and the old tables dropped (sql/common/0008_birthday_enabled_since.2.sql),
the triggers (sql/{postgresql,sqlite}/0008_birthday_enabled_since.3.sql).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0008"
down_revision = "0007"

upgrade, downgrade = sql_revision("0008_birthday_enabled_since")
