"""An error in one line, for a person: the CLI, a file's `uploads.error` and a step's failure show
only this (drivers and SQLAlchemy append details and links on later lines)."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first non-blank line of the error's message, or its type's name when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def one_line(error: BaseException) -> str:
    """`<Type>: <first line>`, or the type alone when the message is empty."""
    name = type(error).__name__
    line = first_line(error)
    return name if line == name else f"{name}: {line}"
