"""`loyalty programs`: operators manage programs without SQL; every change is validated by the
rules the bot and the uploads apply, and a refused one writes nothing."""

import json

import pytest
from sqlalchemy import text


def programs_table(engine):
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT slug, name, birthday_reward_points, timezone, birthday_send_hour, csv_columns FROM programs ORDER BY slug"
                )
            )
        ]


def test_add_then_list_and_show_as_json(loyalty, engine):
    code, out, _ = loyalty(
        "programs",
        "add",
        "joes-pizza",
        "--name",
        "Joe's Pizza",
        "birthday_bot_enabled=on",
        "birthday_reward_points=50",
        "timezone=America/New_York",
        "birthday_send_hour=8",
    )
    assert code == 0 and "birthday_reward_points: 50" in out
    code, out, _ = loyalty("programs", "list", "--json")
    [listed] = json.loads(out)
    assert {
        k: listed[k]
        for k in (
            "slug",
            "name",
            "birthday_bot_enabled",
            "birthday_reward_points",
            "timezone",
            "birthday_send_hour",
            "config_valid",
        )
    } == {
        "slug": "joes-pizza",
        "name": "Joe's Pizza",
        "birthday_bot_enabled": True,
        "birthday_reward_points": 50,
        "timezone": "America/New_York",
        "birthday_send_hour": 8,
        "config_valid": True,
    }
    code, out, _ = loyalty("programs", "list")
    assert code == 0 and "joes-pizza" in out and "America/New_York" in out and "valid" in out
    code, out, _ = loyalty("programs", "show", "joes-pizza", "--json")
    shown = json.loads(out)
    assert shown["date_order"] == "MDY" and shown["birthday_max_delay_days"] == 30 and shown["problems"] == []


def test_set_changes_settings_including_csv_columns(loyalty, engine):
    loyalty("programs", "add", "joes-pizza", "--name", "Joe's Pizza")
    code, _, _ = loyalty(
        "programs",
        "set",
        "joes-pizza",
        'csv_columns={"email": "E-mail", "birth_date": ["DOB"]}',
        "name=Joe's",
        "timezone=default",
    )
    assert code == 0
    [row] = programs_table(engine)
    assert (row["name"], row["timezone"]) == ("Joe's", None)
    assert json.loads(row["csv_columns"]) == {"email": "E-mail", "birth_date": ["DOB"]}
    code, out, _ = loyalty("programs", "show", "joes-pizza", "--json")
    assert json.loads(out)["csv_columns"] == {"email": "E-mail", "birth_date": ["DOB"]}


def test_settings_may_follow_the_json_flag(loyalty, engine):
    code, out, _ = loyalty(
        "programs", "add", "joes-pizza", "--name", "Joe's Pizza", "--json", "birthday_reward_points=50"
    )
    assert code == 0 and json.loads(out)["birthday_reward_points"] == 50
    code, out, _ = loyalty("programs", "set", "joes-pizza", "--json", "birthday_send_hour=8")
    assert code == 0 and json.loads(out)["birthday_send_hour"] == 8


@pytest.mark.parametrize(
    "assignment, reason",
    [
        ("timezone=Mars/Olympus", "timezone 'Mars/Olympus' is not an IANA time zone name"),
        ("birthday_reward_points=-5", "birthday_reward_points must be >= 0"),
        ("birthday_message=   ", "birthday_message is empty"),
        ("colour=red", "unknown setting 'colour'"),
        ("birthday_send_hour=24", "birthday_send_hour must be an hour 0-23"),
        ("birthday_min_notice_days=-1", "must be >= 0"),
        ("date_order=YMD", "date_order must be one of MDY, DMY"),
        ("default_phone_region=XX", "default_phone_region 'XX' is not a phone region"),
        ("birthday_reward_points=ten", "birthday_reward_points='ten'"),
        ("birthday_reward_points=99999999999", "is at most 2147483647"),  # PostgreSQL's integer column
        ("birthday_max_delay_days=99999999999", "is at most 2147483647"),
        ("csv_columns=[1, 2]", "expected a JSON object"),
        ('csv_columns={"mail": "E-mail"}', "csv_columns maps an unknown field 'mail'"),
    ],
)
def test_a_bad_setting_is_refused_with_the_reason_and_nothing_is_written(loyalty, engine, assignment, reason):
    loyalty("programs", "add", "joes-pizza", "--name", "Joe's Pizza", "birthday_reward_points=50")
    before = programs_table(engine)
    code, _, err = loyalty("programs", "set", "joes-pizza", "birthday_send_hour=7", assignment)
    assert code == 2 and reason in err
    assert programs_table(engine) == before
    code, _, err = loyalty("programs", "add", "other", "--name", "Other", assignment)
    assert code == 2 and reason in err
    assert programs_table(engine) == before


def test_refusals_for_missing_and_existing_programs(loyalty, engine):
    code, _, err = loyalty("programs", "set", "nope", "birthday_reward_points=5")
    assert code == 2 and "'nope' does not exist" in err
    code, _, err = loyalty("programs", "show", "nope")
    assert code == 2
    loyalty("programs", "add", "joes-pizza", "--name", "Joe's Pizza")
    code, _, err = loyalty("programs", "add", "joes-pizza", "--name", "Again")
    assert code == 2 and "already exists" in err
    code, _, err = loyalty("programs", "add", "a|b", "--name", "Bad slug")
    assert code == 2
    assert [p["name"] for p in programs_table(engine)] == ["Joe's Pizza"]


def test_list_flags_a_program_the_front_end_broke(loyalty, engine):
    loyalty("programs", "add", "joes-pizza", "--name", "Joe's Pizza")
    with engine.begin() as conn:
        conn.execute(text("UPDATE programs SET timezone = 'Nowhere/Land', birthday_message = ''"))
    code, out, _ = loyalty("programs", "list", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["config_valid"] is False
    assert listed["problems"] == ["birthday_message is empty", "timezone 'Nowhere/Land' is not an IANA time zone name"]
