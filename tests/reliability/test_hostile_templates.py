"""Birthday message templates are written by tenants and rendered in SQL, one row per reward: on
SQLite and PostgreSQL, format fields, escapes and SQL in the template, the program name or the
customer's first name come out verbatim; only {first_name}, {program_name}, {points} are filled."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import text

from loyalty_pipeline import templates
from loyalty_pipeline.rewards import award_birthdays
from tests.factories import make_program, member
from tests.reliability.helpers import record, reward_violations

TEMPLATES = [
    "{first_name.__class__} {0} {{ }} %s %(points)s {points!r} {program_name:>30}",
    "Hi {first_name}, {{first_name}} {points}{points} from {program_name}",
    "'); DROP TABLE notifications; -- {first_name}",
    ":points :first_name $1 ? \\x00 \\. {} {first_name",
    "{__import__('os').system('id')} ${first_name} #{points} {{7*7}} {% if x %}",
    "🎂 مبروك {first_name} — {points} נקודות",
]
FIRST_NAMES = ["{points}", "%s", "Robert'); DROP TABLE users;--", None, "{program_name}"]
PROGRAM_NAME = "Joe's {first_name} %s Pizza"
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def test_hostile_templates_and_names_render_verbatim_in_the_outbox(engine):
    expected = []
    for t, template in enumerate(TEMPLATES):
        program = make_program(
            engine, f"tpl-{t}", name=PROGRAM_NAME, birthday_reward_points=7 + t, birthday_message=template
        )
        for first_name in FIRST_NAMES:
            member(engine, program, (DAY.month, DAY.day), first_name=first_name)
            expected.append(
                (f"tpl-{t}", templates.render(template, first_name=first_name, program_name=PROGRAM_NAME, points=7 + t))
            )
        result = award_birthdays(engine, program_slug=f"tpl-{t}", dates=[DAY], now=NOW)
        assert result.rewarded_now == len(FIRST_NAMES)
        record(cases_tried=len(FIRST_NAMES))
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT p.slug, n.message FROM notifications n JOIN programs p ON p.id = n.program_id")
        ).all()
    assert sorted(tuple(row) for row in stored) == sorted(expected)
    assert ("tpl-0", "{first_name.__class__} {0} {{ }} %s %(points)s {points!r} {program_name:>30}") in expected
    assert reward_violations(engine) == []
