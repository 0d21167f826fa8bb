"""Birthday message templates. They are written by tenants, so they are never evaluated:
`{first_name}`, `{program_name}` and `{points}` are substituted in a single pass and every other
character, braces included, stays as written."""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{(first_name|program_name|points)\}")
MISSING_FIRST_NAME = "there"


def split_template(template: str) -> list[tuple[str, str]]:
    """The template as ("text", literal) and ("field", name) parts, in order."""
    parts: list[tuple[str, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append(("text", template[position : match.start()]))
        parts.append(("field", match.group(1)))
        position = match.end()
    if position < len(template):
        parts.append(("text", template[position:]))
    return parts


def render(template: str, *, first_name: str | None, program_name: str, points: int) -> str:
    values = {
        "first_name": first_name or MISSING_FIRST_NAME,
        "program_name": program_name,
        "points": str(points),
    }
    return "".join(value if kind == "text" else values[value] for kind, value in split_template(template))


def sql_expression(template: str, field_sql: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A SQL expression rendering the template per row: literals become bound parameters and
    each placeholder one of the caller's fixed column expressions, joined with ||."""
    pieces, params = [], {}
    for index, (kind, value) in enumerate(split_template(template)):
        if kind == "text":
            params[f"tpl_{index}"] = value
            pieces.append(f"CAST(:tpl_{index} AS text)")
        else:
            pieces.append(field_sql[value])
    return (" || ".join(pieces) if pieces else "''"), params
