"""Migrations and error classification on both databases."""

import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from loyalty_pipeline.db import alembic_config, is_transient, make_engine, migrate

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrations_are_recorded_and_idempotent(engine):
    assert migrate(engine) == []  # the fixture already applied everything
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD


def test_ids_and_defaults_come_from_the_database(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO programs (slug, name) VALUES ('joes-pizza', 'Joe''s Pizza')"))
        row = conn.execute(
            text(
                "SELECT id, birthday_bot_enabled, birthday_reward_points, birthday_message, "
                "date_order, birthday_max_delay_days, birthday_send_hour FROM programs"
            )
        ).one()
    assert len(str(row.id)) == 36 and str(row.id).count("-") == 4
    assert (bool(row.birthday_bot_enabled), row.birthday_reward_points, row.date_order) == (False, 0, "MDY")
    assert row.birthday_message == "Happy Birthday! We added points to your pass."
    assert (row.birthday_max_delay_days, row.birthday_send_hour) == (30, 9)


def test_bulk_written_ids_grow_with_time_on_postgres(_postgres_schema):
    # Time-ordered (version 7) ids keep bulk inserts at one edge of the primary-key indexes.
    ids = []
    with _postgres_schema.begin() as conn:
        conn.execute(text("TRUNCATE users CASCADE"))
        for n in range(3):
            ids.append(
                conn.execute(
                    text("INSERT INTO users (email) VALUES (:e) RETURNING id"), {"e": f"u{n}@x.com"}
                ).scalar_one()
            )
            conn.execute(text("SELECT pg_sleep(0.002)"))
        conn.execute(text("TRUNCATE users CASCADE"))
    assert [i.version for i in ids] == [7, 7, 7]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_ids_made_in_one_statement_are_distinct_version_7_uuids_of_the_moment(_postgres_schema):
    # One statement makes all of a large upload's ids, within a few milliseconds.
    with _postgres_schema.connect() as conn:
        now_ms = conn.execute(text("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint")).scalar_one()
        ids = conn.execute(text("SELECT loyalty_uuid_v7() FROM generate_series(1, 50000)")).scalars().all()
    assert len(set(ids)) == len(ids)
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert all(0 <= (i.int >> 80) - now_ms < 10_000 for i in ids)  # the 48-bit millisecond prefix
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)  # the random bits differ, not only the clock


def test_a_days_rewards_update_balances_in_place_on_postgres(_postgres_schema):
    # A day's rewards touch a few passes per page; each page keeps room for their new versions
    # (fillfactor), so the updates are HOT: no new index entries, no second page written.
    with _postgres_schema.begin() as conn:
        conn.execute(text("TRUNCATE programs, users CASCADE"))
        conn.execute(text("INSERT INTO programs (slug, name) VALUES ('p', 'P')"))
        conn.execute(text("INSERT INTO users (email) SELECT 'u' || g || '@x.com' FROM generate_series(1, 2000) g"))
        conn.execute(
            text("""INSERT INTO passes_master (program_id, user_id, status, points_balance)
                    SELECT p.id, u.id, 'active', 0 FROM programs p CROSS JOIN users u ORDER BY u.id""")
        )
    try:
        with _postgres_schema.begin() as conn:
            updated = conn.execute(
                text("""UPDATE passes_master SET points_balance = points_balance + 10 WHERE id IN (
                        SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM passes_master) t
                        WHERE n % 20 = 0)""")
            ).rowcount
            hot, total = conn.execute(
                text("SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'passes_master'")
            ).one()
        assert (hot, total, updated) == (100, 100, 100)
    finally:
        with _postgres_schema.begin() as conn:
            conn.execute(text("TRUNCATE programs, users CASCADE"))


def test_a_failing_statement_is_not_transient(engine):
    with pytest.raises(DBAPIError) as error:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO programs (slug, name, birthday_reward_points) VALUES ('x', 'X', -5)"))
    assert not is_transient(error.value)


def test_an_unreachable_server_is_transient():
    engine = make_engine("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(DBAPIError) as error:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert is_transient(error.value)
