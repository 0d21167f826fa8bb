"""What the assets show in the UI, shared by every asset: their owners and markdown tables of
sample rows (customer text, escaped)."""

import re

import polars as pl

OWNERS = ["team:data-platform"]
SAMPLE_ROWS = 20

# Cells are customers' text: nothing in them may become a link, an image or HTML in the UI.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def escape_markdown(value: str) -> str:
    flat = " ".join(value.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def markdown_table(frame: pl.DataFrame, limit: int = SAMPLE_ROWS) -> str:
    """The first `limit` rows as a markdown table, each cell escaped and cut to 80 characters."""
    if frame.height == 0:
        return "_none_"
    columns = frame.columns
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.head(limit).iter_rows():
        cells = ("" if v is None else escape_markdown(str(v)[:80]) for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
