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

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from loyalty_pipeline.migrations import dialect, execute_for

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# --- PostgreSQL ----------------------------------------------------------------------------------
_PG_NORMAL_EMAIL = "lower(btrim({email}, E' \\t\\n\\r\\f\\x0B'))"
_PG_AGREES = "(birth_date IS NULL OR (birth_month = extract(month FROM birth_date) AND birth_day = extract(day FROM birth_date)))"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION loyalty_users_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := {_PG_NORMAL_EMAIL.format(email="NEW.email")};
    IF TG_OP = 'INSERT' THEN
        IF NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL THEN
            NEW.birth_month := extract(month FROM NEW.birth_date);
            NEW.birth_day := extract(day FROM NEW.birth_date);
        END IF;
        IF NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL THEN
            NEW.birth_date_set_at := now();
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.birth_date IS DISTINCT FROM OLD.birth_date
       AND NEW.birth_month IS NOT DISTINCT FROM OLD.birth_month
       AND NEW.birth_day IS NOT DISTINCT FROM OLD.birth_day THEN
        NEW.birth_month := extract(month FROM NEW.birth_date);
        NEW.birth_day := extract(day FROM NEW.birth_date);
    ELSIF NEW.birth_date IS NOT NULL AND NEW.birth_date IS NOT DISTINCT FROM OLD.birth_date
       AND (NEW.birth_month IS DISTINCT FROM OLD.birth_month OR NEW.birth_day IS DISTINCT FROM OLD.birth_day)
       AND (NEW.birth_month IS DISTINCT FROM extract(month FROM NEW.birth_date)
            OR NEW.birth_day IS DISTINCT FROM extract(day FROM NEW.birth_date)) THEN
        NEW.birth_date := NULL;
    END IF;

    IF NEW.birth_month IS NULL THEN
        NEW.birth_date_set_at := NULL;
    ELSIF (NEW.birth_month IS DISTINCT FROM OLD.birth_month OR NEW.birth_day IS DISTINCT FROM OLD.birth_day
           OR NEW.birth_date <> OLD.birth_date)
          AND NEW.birth_date_set_at IS NOT DISTINCT FROM OLD.birth_date_set_at
          AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on' THEN
        NEW.birth_date_set_at := now();
    END IF;

    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at AND NEW IS DISTINCT FROM OLD
       AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$
"""
_PG_TRIGGERS = [
    f"""
    CREATE TRIGGER users_before_insert BEFORE INSERT ON users FOR EACH ROW
    WHEN (NEW.email IS DISTINCT FROM {_PG_NORMAL_EMAIL.format(email="NEW.email")}
          OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL)
          OR (NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL))
    EXECUTE FUNCTION loyalty_users_before_write()
    """,
    """
    CREATE TRIGGER users_before_update BEFORE UPDATE ON users FOR EACH ROW
    WHEN (NEW.email IS DISTINCT FROM OLD.email
          OR NEW.birth_date IS DISTINCT FROM OLD.birth_date
          OR NEW.birth_month IS DISTINCT FROM OLD.birth_month
          OR NEW.birth_day IS DISTINCT FROM OLD.birth_day
          OR (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
              AND current_setting('loyalty.own_timestamps', true) IS DISTINCT FROM 'on'))
    EXECUTE FUNCTION loyalty_users_before_write()
    """,
]
_PG_CHECKS = f"""
ALTER TABLE users
    ADD CONSTRAINT users_email_normalised CHECK (email = {_PG_NORMAL_EMAIL.format(email="email")}),
    ADD CONSTRAINT users_birthday_complete CHECK ((birth_month IS NULL) = (birth_day IS NULL)),
    ADD CONSTRAINT users_birth_date_agrees CHECK {_PG_AGREES}
"""
# Rows another writer left with a birth_date the month/day do not follow: the date is the newer fact
# (the pipeline always writes all three). When it changed is unknown; the row's last change is the
# latest it can have been, the safe side of the minimum-notice rule.
_PG_DERIVE_EXISTING = """
UPDATE users SET birth_month = extract(month FROM birth_date), birth_day = extract(day FROM birth_date),
                 birth_date_set_at = updated_at
WHERE birth_date IS NOT NULL AND (birth_month IS DISTINCT FROM extract(month FROM birth_date)
                                  OR birth_day IS DISTINCT FROM extract(day FROM birth_date))
"""

# --- SQLite --------------------------------------------------------------------------------------
_WS = "' ' || char(9, 10, 11, 12, 13)"


def _norm(email: str) -> str:
    return f"lower(trim({email}, {_WS}))"


def _month(d: str) -> str:
    return f"CAST(strftime('%m', {d}) AS INTEGER)"


def _day(d: str) -> str:
    return f"CAST(strftime('%d', {d}) AS INTEGER)"


def _agrees(d: str, m: str, day: str) -> str:
    return f"COALESCE({m} = {_month(d)} AND {day} = {_day(d)}, 0)"


_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
# The statement changed birth_date alone / month-day alone (to a day the stored date disagrees with).
_DATE_ALONE = (
    "(NEW.birth_date IS NOT OLD.birth_date AND NEW.birth_month IS OLD.birth_month AND NEW.birth_day IS OLD.birth_day)"
)
_MONTH_DAY_ALONE = (
    "(NEW.birth_date IS NOT NULL AND NEW.birth_date IS OLD.birth_date"
    " AND (NEW.birth_month IS NOT OLD.birth_month OR NEW.birth_day IS NOT OLD.birth_day)"
    f" AND NOT {_agrees('NEW.birth_date', 'NEW.birth_month', 'NEW.birth_day')})"
)
# The row as the trigger leaves it.
_FINAL_MONTH = f"CASE WHEN {_DATE_ALONE} THEN {_month('NEW.birth_date')} ELSE NEW.birth_month END"
_FINAL_DAY = f"CASE WHEN {_DATE_ALONE} THEN {_day('NEW.birth_date')} ELSE NEW.birth_day END"
_FINAL_DATE = f"CASE WHEN {_MONTH_DAY_ALONE} THEN NULL ELSE NEW.birth_date END"
_BIRTHDAY_MOVED = (
    f"(({_FINAL_MONTH}) IS NOT OLD.birth_month OR ({_FINAL_DAY}) IS NOT OLD.birth_day"
    f" OR COALESCE(({_FINAL_DATE}) <> OLD.birth_date, 0))"
)
# A birthday appearing with a set_at already there: the writer set it (a cleared birthday clears it).
_OWN_TIMESTAMPS = "EXISTS (SELECT 1 FROM loyalty_own_timestamps)"
_SET_AT_KEPT = (
    f"({_OWN_TIMESTAMPS} OR NEW.birth_date_set_at IS NOT OLD.birth_date_set_at"
    " OR (OLD.birth_month IS NULL AND NEW.birth_date_set_at IS NOT NULL))"
)
_ROW_CHANGED = (
    " OR ".join(
        f"NEW.{c} IS NOT OLD.{c}"
        for c in (
            "first_name",
            "last_name",
            "birth_date",
            "birth_month",
            "birth_day",
            "birth_date_set_at",
            "phone_number",
        )
    )
    + f" OR {_norm('NEW.email')} IS NOT {_norm('OLD.email')}"
)
# Only the spelling of the email changed: the BEFORE INSERT trigger's hand-over (or an edit of case).
_SPELLING_ONLY = f"(NEW.email IS NOT OLD.email AND NOT ({_ROW_CHANGED}))"

_SQLITE = [
    "CREATE TABLE loyalty_own_timestamps (writer text NOT NULL)",
    f"CREATE UNIQUE INDEX users_email_normalised_key ON users ({_norm('email')})",
    f"CREATE INDEX users_email_unnormalised_idx ON users (email) WHERE email <> {_norm('email')}",
    f"""
    CREATE TRIGGER users_email_finds_person BEFORE INSERT ON users
    WHEN NEW.email <> {_norm("NEW.email")}
    BEGIN
        UPDATE users SET email = NEW.email WHERE {_norm("email")} = {_norm("NEW.email")} AND email <> NEW.email;
    END
    """,
    f"""
    CREATE TRIGGER users_after_insert AFTER INSERT ON users
    WHEN NEW.email <> {_norm("NEW.email")}
         OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND NEW.birth_day IS NULL)
         OR (NEW.birth_month IS NOT NULL AND NEW.birth_date_set_at IS NULL)
    BEGIN
        UPDATE users SET
            email = {_norm("NEW.email")},
            birth_month = COALESCE(NEW.birth_month, CASE WHEN NEW.birth_day IS NULL THEN {_month("NEW.birth_date")} END),
            birth_day = COALESCE(NEW.birth_day, CASE WHEN NEW.birth_month IS NULL THEN {_day("NEW.birth_date")} END),
            birth_date_set_at = CASE
                WHEN NEW.birth_date_set_at IS NULL AND COALESCE(NEW.birth_month, NEW.birth_date) IS NOT NULL THEN {_NOW}
                ELSE NEW.birth_date_set_at END
        WHERE rowid = NEW.rowid;
    END
    """,
    f"""
    CREATE TRIGGER users_check_insert AFTER INSERT ON users
    WHEN (NEW.birth_month IS NULL) <> (NEW.birth_day IS NULL)
         OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NOT NULL
             AND NOT {_agrees("NEW.birth_date", "NEW.birth_month", "NEW.birth_day")})
         OR (NEW.birth_date IS NOT NULL AND NEW.birth_month IS NULL AND {_month("NEW.birth_date")} IS NULL)
    BEGIN
        SELECT RAISE(ABORT, 'users: birth_date must agree with birth_month/birth_day (and be a YYYY-MM-DD date), and a birthday needs both month and day');
    END
    """,
    f"""
    CREATE TRIGGER users_after_update AFTER UPDATE ON users
    WHEN NOT {_SPELLING_ONLY} AND (
         NEW.email <> {_norm("NEW.email")} OR {_DATE_ALONE} OR {_MONTH_DAY_ALONE}
         OR ({_BIRTHDAY_MOVED} AND NOT {_SET_AT_KEPT})
         OR (NEW.birth_month IS NULL AND NEW.birth_date_set_at IS NOT NULL)
         OR (NEW.updated_at IS OLD.updated_at AND ({_ROW_CHANGED}) AND NOT {_OWN_TIMESTAMPS}))
    BEGIN
        UPDATE users SET
            email = {_norm("NEW.email")},
            birth_date = {_FINAL_DATE},
            birth_month = {_FINAL_MONTH},
            birth_day = {_FINAL_DAY},
            birth_date_set_at = CASE
                WHEN ({_FINAL_MONTH}) IS NULL THEN NULL
                WHEN {_BIRTHDAY_MOVED} AND NOT {_SET_AT_KEPT} THEN {_NOW}
                ELSE NEW.birth_date_set_at END,
            updated_at = CASE WHEN NEW.updated_at IS OLD.updated_at AND NOT {_OWN_TIMESTAMPS} THEN {_NOW}
                              ELSE NEW.updated_at END
        WHERE rowid = NEW.rowid;
    END
    """,
    f"""
    CREATE TRIGGER users_check_update AFTER UPDATE ON users
    WHEN (({_FINAL_MONTH}) IS NULL) <> (({_FINAL_DAY}) IS NULL)
         OR (({_FINAL_DATE}) IS NOT NULL AND NOT {_agrees(f"({_FINAL_DATE})", f"({_FINAL_MONTH})", f"({_FINAL_DAY})")})
    BEGIN
        SELECT RAISE(ABORT, 'users: birth_date must agree with birth_month/birth_day (and be a YYYY-MM-DD date), and a birthday needs both month and day');
    END
    """,
]
_SQLITE_DERIVE_EXISTING = f"""
UPDATE users SET birth_month = {_month("birth_date")}, birth_day = {_day("birth_date")}, birth_date_set_at = updated_at
WHERE birth_date IS NOT NULL AND NOT {_agrees("birth_date", "birth_month", "birth_day")}
"""


def _refuse_unfixable_rows(normal_email: str, month: str) -> None:
    """Existing rows the triggers would have prevented are fixed in place, except what needs a
    person to decide: two users that are one address, and a birth_date that is not a date."""
    conn = op.get_bind()
    twins = conn.execute(
        text(
            f"SELECT {normal_email.format(email='email')} AS address, count(*) FROM users"
            f" GROUP BY {normal_email.format(email='email')} HAVING count(*) > 1 ORDER BY 1 LIMIT 20"
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
    conn.execute(
        text(
            f"UPDATE users SET email = {normal_email.format(email='email')}"
            f" WHERE email <> {normal_email.format(email='email')}"
        )
    )
    # Incomplete birthdays (a month without a day) carry no usable date.
    conn.execute(
        text(
            "UPDATE users SET birth_month = NULL, birth_day = NULL"
            " WHERE birth_date IS NULL AND (birth_month IS NULL) <> (birth_day IS NULL)"
        )
    )


def upgrade() -> None:
    if dialect() == "postgresql":
        _refuse_unfixable_rows(_PG_NORMAL_EMAIL, "")
        execute_for(postgresql=[_PG_DERIVE_EXISTING, _PG_FUNCTION, *_PG_TRIGGERS, _PG_CHECKS])
    else:
        _refuse_unfixable_rows("lower(trim({email}, " + _WS + "))", _month("birth_date"))
        execute_for(sqlite=[_SQLITE_DERIVE_EXISTING, *_SQLITE])


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
