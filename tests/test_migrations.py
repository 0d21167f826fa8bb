"""Alembic migrations: a fresh database, one made by the hand-written runner that came before
(adopted in place, data kept), concurrent init-db, and the `loyalty db` commands."""

import threading

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from loyalty_pipeline import cli
from loyalty_pipeline.db import alembic_config, make_engine, migrate
from tests.factories import legacy_runner_migrate

REVISIONS = [rev.revision for rev in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))]
HEAD = REVISIONS[-1]


def version(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_an_empty_database_is_upgraded_to_head(empty_db_url):
    engine = make_engine(empty_db_url)
    assert migrate(engine) == REVISIONS
    assert migrate(engine) == []
    assert version(engine) == HEAD
    assert "csv_columns" in {c["name"] for c in inspect(engine).get_columns("programs")}
    engine.dispose()


def test_a_database_made_by_the_old_runner_is_adopted_in_place(empty_db_url):
    engine = make_engine(empty_db_url)
    legacy_runner_migrate(engine)
    with engine.begin() as conn:
        program_id = conn.execute(
            text(
                "INSERT INTO programs (slug, name, birthday_reward_points) "
                "VALUES ('joes-pizza', 'Joe''s', 50) RETURNING id"
            )
        ).scalar_one()
        # What the front end left before this version: a raw email and a birth_date without month/day.
        user_id = conn.execute(
            text(
                "INSERT INTO users (email, first_name, birth_date, updated_at) "
                "VALUES ('  Amy@Example.COM ', 'Amy', '1990-03-14', '2025-06-07 08:09:10') "
                "RETURNING id"
            )
        ).scalar_one()
        pass_id = conn.execute(
            text("INSERT INTO passes_master (program_id, user_id, points_balance) VALUES (:p, :u, 70) RETURNING id"),
            {"p": program_id, "u": user_id},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO birthday_logs (pass_id, program_id, year, reward_date, points) "
                "VALUES (:pass, :p, 2025, '2025-03-14', 50)"
            ),
            {"pass": pass_id, "p": program_id},
        )

    assert migrate(engine) == ["0005", "0006", "0007", "0008", "0009", "0010", "0011"]
    assert version(engine) == HEAD
    with engine.connect() as conn:
        amy = conn.execute(text("SELECT email, birth_month, birth_day, birth_date_set_at FROM users")).one()
        assert tuple(amy[:3]) == ("amy@example.com", 3, 14)
        assert str(amy.birth_date_set_at).startswith("2025-06-07 08:09:10")  # its last change: the safe side
        assert conn.execute(text("SELECT points_balance FROM passes_master")).scalar_one() == 70
        assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar_one() == 4  # left as it was
        # 0007: the reward history becomes the program's last successful day, for catch-up
        day = conn.execute(text("SELECT run_date, status, rewarded, points FROM birthday_runs")).one()
        assert (str(day.run_date)[:10], day.status, day.rewarded, day.points) == ("2025-03-14", "succeeded", 1, 50)
    with engine.begin() as conn:  # and the triggers now run
        conn.execute(text("UPDATE users SET birth_date = '1990-05-01'"))
        assert tuple(conn.execute(text("SELECT birth_month, birth_day FROM users")).one()) == (5, 1)
    engine.dispose()


def test_a_database_the_old_runner_left_part_way_gets_the_rest(empty_db_url):
    engine = make_engine(empty_db_url)
    legacy_runner_migrate(engine, upto="002")
    assert migrate(engine) == ["0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011"]
    assert version(engine) == HEAD
    engine.dispose()


def test_0008_keeps_each_programs_switch_on_moment_and_its_alerts(empty_db_url):
    engine = make_engine(empty_db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0007")
        ids = {
            slug: conn.execute(
                text(
                    "INSERT INTO programs (slug, name, birthday_bot_enabled, created_at) "
                    "VALUES (:s, :s, :on, '2026-01-05 10:00:00') RETURNING id"
                ),
                {"s": slug, "on": slug != "off"},
            ).scalar_one()
            for slug in ("seen", "unseen", "off")
        }
        # The daemon saw `seen` switched on (0007's table); `unseen` was enabled while it was down.
        conn.execute(
            text("INSERT INTO birthday_enabled_since (program_id, since) VALUES (:p, '2026-11-20 08:00:00')"),
            {"p": ids["seen"]},
        )
        conn.execute(
            text(
                "INSERT INTO birthday_runs (program_id, run_date, status, error) VALUES (:p, '2026-11-21', 'failed', 'x')"
            ),
            {"p": ids["seen"]},
        )
        for day in ("2026-11-21", "2026-11-22"):
            conn.execute(
                text(
                    "INSERT INTO birthday_late_alerts (program_id, run_date, alerted_at) "
                    "VALUES (:p, :d, '2026-11-22 12:00:00')"
                ),
                {"p": ids["seen"], "d": day},
            )

    assert migrate(engine) == ["0008", "0009", "0010", "0011"]
    with engine.connect() as conn:
        since = dict(conn.execute(text("SELECT slug, birthday_enabled_since FROM programs")).all())
        alerts = conn.execute(
            text("SELECT run_date, status, noticed_at, alerted_at FROM birthday_alerts ORDER BY run_date")
        ).all()
        tables = set(inspect(conn).get_table_names())
    assert {slug: value and str(value)[:19] for slug, value in since.items()} == {
        "seen": "2026-11-20 08:00:00",  # the daemon's sighting: exact while it was running
        "unseen": "2026-01-05 10:00:00",  # never seen: since it was created, the earliest it can have been
        "off": None,
    }
    assert [(str(d)[:10], status, str(n)[:19], str(a)[:19]) for d, status, n, a in alerts] == [
        ("2026-11-21", "FAILURE", "2026-11-22 12:00:00", "2026-11-22 12:00:00"),
        ("2026-11-22", "NOT_RUN", "2026-11-22 12:00:00", "2026-11-22 12:00:00"),
    ]
    assert not {"birthday_enabled_since", "birthday_late_alerts"} & tables
    with engine.begin() as conn:  # and the trigger now keeps it
        conn.execute(text("UPDATE programs SET birthday_bot_enabled = true WHERE slug = 'off'"))
        assert conn.execute(text("SELECT birthday_enabled_since FROM programs WHERE slug = 'off'")).scalar() is not None
    engine.dispose()


def test_adoption_refuses_two_users_with_one_address_and_changes_nothing(empty_db_url):
    engine = make_engine(empty_db_url)
    legacy_runner_migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email) VALUES ('amy@example.com'), ('AMY@example.com')"))
    with pytest.raises(RuntimeError, match="amy@example.com \\(2 users\\)"):
        migrate(engine)
    assert not inspect(engine).has_table("alembic_version")
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT email FROM users")).scalars()) == ["AMY@example.com", "amy@example.com"]
    engine.dispose()


def test_concurrent_init_db_apply_each_revision_once(empty_db_url):
    # Postgres: the advisory lock; SQLite: BEGIN IMMEDIATE. The second waits, then finds nothing to do.
    results, errors = [], []

    def init():
        engine = make_engine(empty_db_url)
        try:
            results.append(migrate(engine))
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=init) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], REVISIONS]


def test_the_db_commands_show_the_revision_and_the_history(empty_db_url, monkeypatch, capsys):
    monkeypatch.setenv("LOYALTY_DATABASE_URL", empty_db_url)
    assert cli.main(["init-db"]) == 0
    capsys.readouterr()
    assert cli.main(["db", "current"]) == 0
    assert f"{HEAD} (head)" in capsys.readouterr().out
    assert cli.main(["db", "history"]) == 0
    out = capsys.readouterr().out
    assert "<base> -> 0001" in out and f"-> {HEAD} (head)" in out
