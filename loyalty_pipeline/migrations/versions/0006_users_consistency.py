"""users stays consistent whoever writes it (triggers and checks)

users stays consistent whoever writes it: the pipeline, the Supabase front end, staff with SQL.

- email is stored trimmed and lower-cased, and the uniqueness check sees that form, so the front
  end's `INSERT ... ON CONFLICT (email) DO UPDATE` finds the person a CSV created;
- a write that changes birth_date alone derives birth_month/birth_day from it (NULL clears the
  birthday); one that changes birth_month/birth_day alone, to a day the stored birth_date
  disagrees with, drops the stored year (it belonged to the old birthday);
- when the birthday (month, day, or a year both sides know) changes, birth_date_set_at moves to now
  unless the statement moved it itself; a cleared birthday clears it;
- updated_at moves on every real change the statement did not stamp itself;
- a birth_date that disagrees with birth_month/birth_day, or a month without a day, is refused.

PostgreSQL: one BEFORE trigger function (it runs before the ON CONFLICT arbiter check, so the
normalised email is the one checked) plus CHECK constraints.

SQLite: triggers cannot change NEW, and ALTER TABLE cannot add a CHECK, so AFTER triggers rewrite
the row and RAISE(ABORT) where PostgreSQL has CHECKs. To let `ON CONFLICT (email)` find the person
for an email typed differently, a BEFORE INSERT trigger gives the existing row the incoming
spelling for the length of the statement: the conflict check then matches it, the statement's
DO UPDATE runs on it and the AFTER UPDATE trigger stores the normalised spelling again. A unique
index on the normalised email makes a second person for the same address impossible on every
path; a partial index finds the rare row left with another spelling (an `ON CONFLICT DO NOTHING`
that matched that way), which the pipeline normalises before it merges.

Every trigger has a WHEN clause the pipeline's own rows fail (it writes normalised emails,
consistent birthdays and its own timestamps), so the bulk merge does not run them.

"Unless the statement set it" is read from the values: an update that leaves updated_at or
birth_date_set_at as they were did not set them. A writer with its own clock (the pipeline: a
replay pins "now", so a rerun stamps the very value already stored) declares, for its transaction
only, that it stamps both itself: the setting `loyalty.own_timestamps` on PostgreSQL, a row in
`loyalty_own_timestamps` on SQLite (one writer at a time, and the row is deleted before commit, so
no one else ever sees it) - see db.own_timestamps().

Its SQL: sql/{postgresql,sqlite}/0006_users_consistency.sql (the existing rows fixed in place, then
the triggers, checks and indexes). What stays here is the refusal that needs a person to decide.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from loyalty_pipeline.migrations import dialect, sql_revision

revision = "0006"
down_revision = "0005"

# An email as stored (trimmed, lower-cased), and a SQLite birth_date's month (NULL: not YYYY-MM-DD),
# as the SQL files write them.
_NORMAL_EMAIL = {
    "postgresql": "lower(btrim(email, E' \\t\\n\\r\\f\\x0B'))",
    "sqlite": "lower(trim(email, ' ' || char(9, 10, 11, 12, 13)))",
}
_SQLITE_MONTH = "CAST(strftime('%m', birth_date) AS INTEGER)"


def _refuse_unfixable_rows() -> None:
    """The SQL fixes existing rows the triggers would have prevented in place, except what needs a
    person to decide: two users that are one address, and a birth_date that is not a date. Those
    are listed and nothing is changed."""
    normal_email, month = _NORMAL_EMAIL[dialect()], _SQLITE_MONTH if dialect() == "sqlite" else ""
    conn = op.get_bind()
    twins = conn.execute(
        text(
            f"SELECT {normal_email} AS address, count(*) FROM users"
            f" GROUP BY {normal_email} HAVING count(*) > 1 ORDER BY 1 LIMIT 20"
        )
    ).all()
    if twins:
        raise RuntimeError(
            "users holds the same address under several spellings; merge or delete these users, then run "
            "init-db again: " + ", ".join(f"{address} ({count} users)" for address, count in twins)
        )
    if month:
        bad = conn.execute(
            text(f"SELECT email, birth_date FROM users WHERE birth_date IS NOT NULL AND {month} IS NULL LIMIT 20")
        ).all()
        if bad:
            raise RuntimeError(
                "users.birth_date holds values that are not YYYY-MM-DD dates; fix them, then run "
                "init-db again: " + ", ".join(f"{email}: {value!r}" for email, value in bad)
            )


upgrade, downgrade = sql_revision("0006_users_consistency", first=_refuse_unfixable_rows)
