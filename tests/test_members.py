"""`loyalty members add|show`: one customer entered by hand goes through the same parsing and merge
as a CSV row, and is recorded as an upload with its issues."""

import json

from sqlalchemy import text

from tests.factories import load_csv, make_program


def add_member(loyalty, email, *options):
    """`loyalty members add --program joes-pizza --email EMAIL OPTIONS...`"""
    return loyalty("members", "add", "--program", "joes-pizza", "--email", email, *options)


def rows(engine, sql):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_a_new_customer_is_merged_like_a_csv_row_and_recorded(loyalty, engine):
    make_program(engine, "joes-pizza", date_order="DMY", default_phone_region="GB")
    code, out, _ = add_member(
        loyalty, " Amy@Example.COM ", "--first-name", "Amy", "--birth-date", "14/03/1990", "--phone", "020 7946 0958"
    )
    assert code == 0 and out.startswith("created: amy@example.com in joes-pizza (new pass")
    assert rows(engine, "SELECT email, first_name, birth_date, birth_month, birth_day, phone_number FROM users") == [
        ("amy@example.com", "Amy", rows(engine, "SELECT birth_date FROM users")[0][0], 3, 14, "+442079460958")
    ]
    assert str(rows(engine, "SELECT birth_date FROM users")[0][0]) == "1990-03-14"
    assert rows(engine, "SELECT status, points_balance FROM passes_master") == [("active", 0)]
    [(key, file_name, read, accepted, created)] = rows(
        engine, "SELECT key, file_name, rows_read, rows_accepted, users_created FROM uploads"
    )
    assert key.startswith("joes-pizza/manual/20261126T100000") and (file_name, read, accepted, created) == (
        "manual entry",
        1,
        1,
        1,
    )


def test_a_manual_entry_follows_the_merge_rules(loyalty, engine, tmp_path):
    program = make_program(engine, "joes-pizza")
    load_csv(engine, program, tmp_path, "email,first_name,last_name,dob\namy@example.com,Amy,Lee,03/14/1990\n")
    code, out, _ = add_member(loyalty, "amy@example.com", "--birth-date", "04/01", "--phone", "123", "--json")
    result = json.loads(out)
    assert code == 0 and result["outcome"] == "updated" and result["passes_created"] == 0
    # Blanks never erase; a year-less birthday replaces the day (one warning); a bad phone is a warning.
    assert rows(
        engine, "SELECT first_name, last_name, birth_date, birth_month, birth_day, phone_number FROM users"
    ) == [("Amy", "Lee", None, 4, 1, None)]
    assert sorted(i["reason"] for i in result["issues"]) == [
        "birthday changed from 1990-03-14 to --04-01",
        "invalid phone_number '123' for region US",
    ]
    assert rows(engine, "SELECT count(*) FROM upload_issues WHERE upload_key LIKE 'joes-pizza/manual/%'") == [(2,)]


def test_a_rejected_entry_exits_2_with_the_reason_and_changes_no_user(loyalty, engine):
    make_program(engine, "joes-pizza")
    code, _, err = add_member(loyalty, "amy@@example", "--first-name", "Amy")
    assert code == 2 and "email is not a valid address" in err
    assert rows(engine, "SELECT count(*) FROM users") == [(0,)]
    assert rows(engine, "SELECT rows_rejected FROM uploads") == [(1,)]
    assert rows(engine, "SELECT severity, reason FROM upload_issues") == [("error", "email is not a valid address")]


def test_an_unknown_program_is_refused(loyalty, engine):
    code, _, err = loyalty("members", "add", "--program", "nope", "--email", "amy@example.com")
    assert code == 2 and "'nope' does not exist" in err
    assert rows(engine, "SELECT count(*) FROM uploads") == [(0,)]


def test_show_lists_the_person_their_passes_and_rewards(loyalty, engine):
    program = make_program(engine, "joes-pizza")
    add_member(loyalty, "amy@example.com", "--birth-date", "03/14/1990")
    with engine.begin() as conn:
        pass_id = conn.execute(text("SELECT id FROM passes_master")).scalar_one()
        conn.execute(text("UPDATE passes_master SET points_balance = 50"))
        conn.execute(
            text(
                "INSERT INTO birthday_logs (pass_id, program_id, year, reward_date, points) "
                "VALUES (:p, :prog, 2026, '2026-03-14', 50)"
            ),
            {"p": pass_id, "prog": program.id},
        )
    code, out, _ = loyalty("members", "show", "AMY@example.com", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["user"]["email"] == "amy@example.com" and shown["user"]["birth_date"] == "1990-03-14"
    assert [(p["program"], p["status"], p["points_balance"]) for p in shown["passes"]] == [("joes-pizza", "active", 50)]
    assert [(b["program"], b["reward_date"], b["points"]) for b in shown["birthday_rewards"]] == [
        ("joes-pizza", "2026-03-14", 50)
    ]
    code, out, _ = loyalty("members", "show", "amy@example.com")
    assert "joes-pizza: active, balance 50" in out and "2026-03-14 joes-pizza: 50 points" in out
    code, _, err = loyalty("members", "show", "nobody@example.com")
    assert code == 2 and "no user" in err


def test_a_year_less_iso_birthday_is_taken_as_the_birth_date_value(loyalty, engine):
    make_program(engine, "joes-pizza")
    code, out, err = add_member(loyalty, "amy@example.com", "--birth-date", "--03-14")
    assert (code, err) == (0, "") and out.startswith("created: amy@example.com")
    assert rows(engine, "SELECT birth_date, birth_month, birth_day FROM users") == [(None, 3, 14)]
