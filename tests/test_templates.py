"""Tenant-written message templates: three placeholders substituted in one pass, everything else
verbatim - in Python (templates.render) and in the SQL that writes the notification rows."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from loyalty_pipeline import templates
from loyalty_pipeline.rewards import award_birthdays
from tests.factories import make_program, member, utc

PROGRAM_NAME = "Joe's Pizza"
POINTS = 50

# Templates rendered exactly as written: nothing in them is one of the three placeholders.
VERBATIM = {
    "attribute-access": "{first_name.__class__} {first_name.__init__.__globals__}",
    "positional": "{0} {} {1!r} {points:>10}",
    "percent": "%s %d %(points)s 100%",
    "no-placeholders": "Happy birthday!",
}
# (id, template, first name, expected message) with program "Joe's Pizza" and 50 points.
CASES = [
    (
        "all-placeholders",
        "Happy birthday {first_name}! {program_name} added {points} points.",
        "Ada",
        "Happy birthday Ada! Joe's Pizza added 50 points.",
    ),
    ("missing-first-name", "Hi {first_name}!", None, "Hi there!"),
    ("empty-first-name", "Hi {first_name}!", "", "Hi there!"),
    ("doubled-braces", "{{ {points} }} {{first_name}}", "Ada", "{{ 50 }} {Ada}"),
    ("repeated", "{points}{points}", "Ada", "5050"),
    (
        "name-looks-like-placeholder",
        "Hi {first_name} from {program_name}",
        "{program_name}",
        "Hi {program_name} from Joe's Pizza",
    ),
    ("name-with-points-placeholder", "{first_name}: {points}", "{points}{first_name}", "{points}{first_name}: 50"),
    (
        "sql-and-bind-markers",
        "It's {first_name}'s day'); DROP TABLE users; -- :points ? $1 \\1 \\n",
        "O'Brien",
        "It's O'Brien's day'); DROP TABLE users; -- :points ? $1 \\1 \\n",
    ),
    ("unicode", "Joyeux anniversaire {first_name} 🎂 — {points}", "Zoë", "Joyeux anniversaire Zoë 🎂 — 50"),
    ("unbalanced", "{first_name {points}} }{", "Ada", "{first_name 50} }{"),
] + [(case_id, template, "Ada", template) for case_id, template in VERBATIM.items()]


@pytest.mark.parametrize("template, first_name, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_render(template, first_name, expected):
    assert templates.render(template, first_name=first_name, program_name=PROGRAM_NAME, points=POINTS) == expected


def test_program_name_is_not_rendered_again():
    assert (
        templates.render(
            "{program_name} / {first_name}", first_name="Ada", program_name="Club {first_name} {points}", points=5
        )
        == "Club {first_name} {points} / Ada"
    )


def test_split_template_keeps_every_character():
    template = "a{first_name}{x}{points}b{{program_name}}"
    parts = templates.split_template(template)
    assert parts == [
        ("text", "a"),
        ("field", "first_name"),
        ("text", "{x}"),
        ("field", "points"),
        ("text", "b{"),
        ("field", "program_name"),
        ("text", "}"),
    ]


def test_sql_path_writes_the_same_messages(engine):
    """One program per template (each with one member born today), then compare the notification rows."""
    slugs = {}
    for index, (case_id, template, first_name, expected) in enumerate(CASES):
        slug = f"tpl-{index}"
        program = make_program(
            engine, slug, name=PROGRAM_NAME, birthday_reward_points=POINTS, birthday_message=template
        )
        member(engine, program, (11, 26), first_name=first_name)
        slugs[slug] = (case_id, expected)

    for slug in slugs:
        award_birthdays(engine, program_slug=slug, dates=[date(2026, 11, 26)], now=utc(2026, 11, 26, 10))

    with engine.connect() as conn:
        written = dict(
            conn.execute(
                text("SELECT pr.slug, n.message FROM notifications n JOIN programs pr ON pr.id = n.program_id")
            ).all()
        )
    assert {slugs[s][0]: m for s, m in written.items()} == {case_id: expected for case_id, expected in slugs.values()}
