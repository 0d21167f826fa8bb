"""The database keeps `users` consistent for writers other than the pipeline (the Supabase front
end, staff with SQL), next to the pipeline's own merge - on SQLite and PostgreSQL."""

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from loyalty_pipeline.db import db_time
from loyalty_pipeline.programs import save_program
from tests.factories import load_csv

# The front end's own statement, verbatim.
APP_UPSERT = text("""
    INSERT INTO users (email, first_name, birth_date) VALUES (:email, :first_name, :birth_date)
    ON CONFLICT (email) DO UPDATE SET first_name = EXCLUDED.first_name, birth_date = EXCLUDED.birth_date
""")
LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


def app_upsert(engine, email, first_name, birth_date):
    with engine.begin() as conn:
        conn.execute(APP_UPSERT, {"email": email, "first_name": first_name, "birth_date": birth_date})


def sql(engine, statement, **params):
    with engine.begin() as conn:
        params = {k: db_time(conn, v) if isinstance(v, datetime) else v for k, v in params.items()}
        conn.execute(text(statement), params)


def people(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users ORDER BY email")).mappings().all()


def person(engine, email):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users WHERE email = :e"), {"e": email}).mappings().one()


def birthday(row):
    return (str(row["birth_date"]) if row["birth_date"] else None, row["birth_month"], row["birth_day"])


def stamp(row, column):
    return str(row[column])[:19]


def age_timestamps(engine):
    """Put every timestamp in the past, so a trigger's 'now' is told apart from the old value."""
    sql(
        engine,
        "UPDATE users SET birth_date_set_at = CASE WHEN birth_month IS NOT NULL THEN :t END, updated_at = :t",
        t=LONG_AGO,
    )


def issues(engine):
    with engine.connect() as conn:
        return conn.execute(
            text('SELECT upload_key, "column", reason FROM upload_issues ORDER BY upload_key, line')
        ).all()


def test_the_apps_upsert_of_a_new_customer_derives_the_birthday(engine):
    app_upsert(engine, "  Amy@Example.COM ", "Amy", date(1990, 3, 14))
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == ("1990-03-14", 3, 14)
    assert amy["birth_date_set_at"] is not None


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("  Vivi.Tran@Example.TV\t", "vivi.tran@example.tv"),  # letters that are escape names (v, t, n, r, f)
        ("\x0bnina.ferro@example.fr\x0c ", "nina.ferro@example.fr"),  # vertical tab and form feed are whitespace
    ],
)
def test_only_whitespace_is_trimmed_from_an_email(engine, typed, stored):
    app_upsert(engine, typed, "Vivi", None)
    assert [p["email"] for p in people(engine)] == [stored]


def test_the_apps_upsert_finds_the_person_a_csv_created(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,first_name,dob\namy@example.com,Amy,03/14/1990\n")
    age_timestamps(engine)
    app_upsert(engine, "  Amy@Example.COM ", "Amelia", date(1991, 5, 2))

    [amy] = people(engine)
    assert amy["email"] == "amy@example.com"
    assert amy["first_name"] == "Amelia"
    assert birthday(amy) == ("1991-05-02", 5, 2)  # month/day follow the new date: rewarded on the right day
    assert stamp(amy, "birth_date_set_at") > "2020-01-01 00:00:00"  # the minimum-notice rule sees the change
    assert stamp(amy, "updated_at") > "2020-01-01 00:00:00"

    result = load_csv(engine, program, tmp_path, "email,last_name\namy@example.com,Lee\n", name="b.csv")
    assert (result.users_created, result.users_updated, result.passes_created) == (0, 1, 0)
    assert [p["last_name"] for p in people(engine)] == ["Lee"]


def test_a_differently_typed_email_never_makes_a_second_person(engine):
    app_upsert(engine, "amy@example.com", "Amy", None)
    with pytest.raises(IntegrityError):
        sql(engine, "INSERT INTO users (email, first_name) VALUES (' AMY@example.com', 'Twin')")
    sql(engine, "INSERT INTO users (email, first_name) VALUES (' AMY@example.com', 'Twin') ON CONFLICT DO NOTHING")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(first_name) FROM users")).one() == (1, "Amy")


def test_a_csv_finds_a_person_the_app_matched_with_do_nothing(engine, program, tmp_path):
    # On SQLite such a statement leaves the stored spelling changed; the next merge restores it.
    app_upsert(engine, "amy@example.com", "Amy", None)
    sql(engine, "INSERT INTO users (email) VALUES ('Amy@Example.com ') ON CONFLICT (email) DO NOTHING")
    result = load_csv(engine, program, tmp_path, "email,last_name\namy@example.com,Lee\n")
    assert (result.users_created, result.passes_created) == (0, 1)
    assert [(p["email"], p["first_name"], p["last_name"]) for p in people(engine)] == [
        ("amy@example.com", "Amy", "Lee")
    ]


@pytest.mark.parametrize(
    ("dob", "new_birth_date", "expected", "moves"),
    [
        pytest.param("03/14/1990", "1990-08-01", ("1990-08-01", 8, 1), True, id="another-day-moves-the-timestamp"),
        pytest.param("03/14", "1990-03-14", ("1990-03-14", 3, 14), False, id="the-year-of-the-same-day-is-no-change"),
    ],
)
def test_setting_birth_date_alone_sets_month_and_day_and_moves_the_timestamp_on_a_new_birthday(
    engine, program, tmp_path, dob, new_birth_date, expected, moves
):
    load_csv(engine, program, tmp_path, f"email,dob\namy@example.com,{dob}\n")
    age_timestamps(engine)
    sql(engine, f"UPDATE users SET birth_date = '{new_birth_date}'")
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == expected
    set_at = stamp(amy, "birth_date_set_at")
    assert (set_at > "2020-01-01 00:00:00") if moves else (set_at == "2020-01-01 00:00:00")


def test_a_statement_that_sets_birth_date_set_at_keeps_its_value(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n")
    sql(engine, "UPDATE users SET birth_date = '1990-08-01', birth_date_set_at = :t", t=LONG_AGO)
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == ("1990-08-01", 8, 1)
    assert stamp(amy, "birth_date_set_at") == "2020-01-01 00:00:00"


def test_setting_birth_date_to_null_clears_the_birthday(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n")
    sql(engine, "UPDATE users SET birth_date = NULL")
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == (None, None, None)
    assert amy["birth_date_set_at"] is None


def test_a_new_month_and_day_alone_drop_the_old_year(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n")
    sql(engine, "UPDATE users SET birth_month = 7, birth_day = 4")
    assert birthday(person(engine, "amy@example.com")) == (None, 7, 4)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (email, birth_date, birth_month, birth_day) VALUES ('x@example.com', '1990-03-14', 4, 1)",
        "INSERT INTO users (email, birth_month) VALUES ('x@example.com', 4)",
        "UPDATE users SET birth_date = '1990-01-01', birth_month = 2, birth_day = 2",
        "UPDATE users SET birth_day = NULL",
    ],
)
def test_a_birthday_that_disagrees_with_itself_is_refused(engine, program, tmp_path, statement):
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n")
    with pytest.raises(IntegrityError):
        sql(engine, statement)
    assert [birthday(p) for p in people(engine)] == [("1990-03-14", 3, 14)]


def test_updated_at_moves_on_a_real_change_only(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,first_name\namy@example.com,Amy\n")
    age_timestamps(engine)
    sql(engine, "UPDATE users SET first_name = 'Amy'")
    assert stamp(person(engine, "amy@example.com"), "updated_at") == "2020-01-01 00:00:00"
    sql(engine, "UPDATE users SET first_name = 'Amelia'")
    assert stamp(person(engine, "amy@example.com"), "updated_at") > "2020-01-01 00:00:00"
    stamped = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    sql(engine, "UPDATE users SET first_name = 'Amy', updated_at = :t", t=stamped)
    assert stamp(person(engine, "amy@example.com"), "updated_at") == "2024-05-06 07:08:09"


def test_a_yearless_csv_birthday_next_to_front_end_edits(engine, program, tmp_path):
    first = datetime(2026, 1, 1, tzinfo=timezone.utc)
    load_csv(engine, program, tmp_path, "email,first_name,dob\namy@example.com,Amy,03/14\n", now=first)
    assert birthday(person(engine, "amy@example.com")) == (None, 3, 14)

    # The front end saves her profile without a birth date: the year-less birthday stays.
    app_upsert(engine, "Amy@example.com", "Amelia", None)
    amy = person(engine, "amy@example.com")
    assert (amy["first_name"], birthday(amy)) == ("Amelia", (None, 3, 14))
    assert stamp(amy, "birth_date_set_at") == "2026-01-01 00:00:00"

    # It then learns her year: the same birthday, so the minimum-notice clock does not restart.
    app_upsert(engine, "amy@example.com", "Amelia", date(1990, 3, 14))
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == ("1990-03-14", 3, 14)
    assert stamp(amy, "birth_date_set_at") == "2026-01-01 00:00:00"

    # A CSV without a birthday never erases it; a CSV with another year-less day changes it once.
    load_csv(engine, program, tmp_path, "email,first_name,dob\namy@example.com,,\n", name="b.csv", now=first)
    assert birthday(person(engine, "amy@example.com")) == ("1990-03-14", 3, 14)
    later = first + timedelta(days=10)
    result = load_csv(engine, program, tmp_path, "email,dob\namy@example.com,04/01\n", name="c.csv", now=later)
    assert result.birthdays_changed == 1
    amy = person(engine, "amy@example.com")
    assert birthday(amy) == (None, 4, 1)
    assert stamp(amy, "birth_date_set_at") == "2026-01-11 00:00:00"
    assert issues(engine) == [("joes-pizza/c.csv", "birth_date", "birthday changed from 1990-03-14 to --04-01")]


def test_a_front_end_birthday_change_then_a_csv_with_the_old_one_warns_once(engine, program, tmp_path):
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n")
    app_upsert(engine, "amy@example.com", "Amy", date(1990, 6, 1))
    result = load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n", name="b.csv")
    assert result.birthdays_changed == 1
    assert birthday(person(engine, "amy@example.com")) == ("1990-03-14", 3, 14)
    assert issues(engine) == [("joes-pizza/b.csv", "birth_date", "birthday changed from 1990-06-01 to 1990-03-14")]


def test_the_pipeline_merge_keeps_its_own_timestamps(engine, program, tmp_path):
    # The triggers' WHEN clauses leave the pipeline's rows alone: its clock, not the database's.
    # A replay pins `now`: a second file merged at the same instant stamps the same values again.
    now = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    load_csv(engine, program, tmp_path, "email,dob\namy@example.com,03/14/1990\n", now=now)
    amy = person(engine, "amy@example.com")
    assert stamp(amy, "birth_date_set_at") == stamp(amy, "updated_at") == "2026-02-03 04:05:06"
    load_csv(engine, program, tmp_path, "email,first_name,dob\namy@example.com,Amy,04/01/1990\n", name="b.csv", now=now)
    amy = person(engine, "amy@example.com")
    assert (amy["first_name"], birthday(amy)) == ("Amy", ("1990-04-01", 4, 1))
    assert stamp(amy, "birth_date_set_at") == stamp(amy, "updated_at") == "2026-02-03 04:05:06"
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # the declaration never outlives the merge's transaction
            assert conn.execute(text("SELECT count(*) FROM loyalty_own_timestamps")).scalar_one() == 0


# --- programs.birthday_enabled_since: when the bot was switched on, whoever switches it ----------------


def enabled_since(engine, slug) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT birthday_enabled_since FROM programs WHERE slug = :s"), {"s": slug}).scalar()
    return None if value is None else str(value)[:19]


def test_the_database_records_when_the_front_end_switches_a_bot_on(engine):
    sql(engine, "INSERT INTO programs (slug, name, birthday_bot_enabled) VALUES ('on', 'On', true)")
    sql(engine, "INSERT INTO programs (slug, name) VALUES ('off', 'Off')")
    switched_on_at = enabled_since(engine, "on")
    assert switched_on_at is not None and switched_on_at > "2020-01-01 00:00:00"
    assert enabled_since(engine, "off") is None

    sql(
        engine, "UPDATE programs SET birthday_enabled_since = :t WHERE slug = 'on'", t=LONG_AGO
    )  # stamped by the statement
    sql(engine, "UPDATE programs SET name = 'Still on', birthday_reward_points = 5 WHERE slug = 'on'")
    assert enabled_since(engine, "on") == "2020-01-01 00:00:00"  # other changes leave it

    sql(engine, "UPDATE programs SET birthday_bot_enabled = false WHERE slug = 'on'")
    assert enabled_since(engine, "on") is None  # off: no longer enabled since anything
    sql(engine, "UPDATE programs SET birthday_bot_enabled = true WHERE slug IN ('on', 'off')")
    assert enabled_since(engine, "on") > "2020-01-01 00:00:00"
    assert enabled_since(engine, "off") is not None


def test_a_writer_with_its_own_clock_stamps_the_switch_on_itself(engine):
    moment = datetime(2026, 11, 24, 8, tzinfo=timezone.utc)
    sql(
        engine,
        "INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_enabled_since) VALUES ('a', 'A', true, :t)",
        t=moment,
    )
    sql(engine, "INSERT INTO programs (slug, name, birthday_enabled_since) VALUES ('b', 'B', :t)", t=moment)
    assert (enabled_since(engine, "a"), enabled_since(engine, "b")) == ("2026-11-24 08:00:00", None)
    sql(
        engine,
        "UPDATE programs SET birthday_bot_enabled = true, birthday_enabled_since = :t WHERE slug = 'b'",
        t=moment,
    )
    assert enabled_since(engine, "b") == "2026-11-24 08:00:00"


def test_save_program_stamps_only_the_statement_that_switches_the_bot_on(engine):
    first, later = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 20, tzinfo=timezone.utc)
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's", birthday_bot_enabled=True, enabled_since=first)
        save_program(conn, "joes-pizza", "Joe's", birthday_reward_points=9, enabled_since=later)  # already on
    assert enabled_since(engine, "joes-pizza") == "2026-11-01 00:00:00"
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's", birthday_bot_enabled=False)
        save_program(conn, "joes-pizza", "Joe's", birthday_bot_enabled=True, enabled_since=later)
    assert enabled_since(engine, "joes-pizza") == "2026-11-20 00:00:00"
