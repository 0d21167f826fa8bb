"""CSV reports the pipeline writes for people (the issues of an upload). Cells come from
customers' files, so anything a spreadsheet would evaluate as a formula is neutralised."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

# OWASP's list: a leading = + - @ or a tab/carriage return starts a formula in Excel/Sheets/Calc.
FORMULA_START = r"^[=+\-@\t\r]"


def neutralise(column: str) -> pl.Expr:
    value = pl.col(column)
    return pl.when(value.str.contains(FORMULA_START)).then(pl.lit("'") + value).otherwise(value).alias(column)


def write_issue_report(issues: pl.DataFrame, path: Path) -> Path:
    """Write line, column, value, severity, reason to `path` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text_columns = [name for name, dtype in issues.schema.items() if dtype == pl.Utf8]
    safe = issues.with_columns(neutralise(name) for name in text_columns)
    partial = path.with_name(f".{path.name}.part")
    safe.write_csv(partial)
    os.replace(partial, path)
    return path
