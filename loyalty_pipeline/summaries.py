"""What the CLI and the demo print after an ingestion: the upload's counts and its first issues,
read back from the uploads and upload_issues tables."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

MAX_ISSUES_SHOWN = 40


def upload_summary(engine: Engine, key: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM uploads WHERE key = :k"), {"k": key}).mappings().first()
        if row is None:
            raise LookupError(f"no upload {key!r} in the uploads table (see `loyalty uploads list`)")
        issues = conn.execute(
            text(
                'SELECT line, "column", severity, reason FROM upload_issues WHERE upload_key = :k '
                'ORDER BY line, "column"'
            ),
            {"k": key},
        ).all()
    if row["status"] != "succeeded":
        return f"{key}: {row['status']}" + (f" - {row['error']}" if row["error"] else "") + f" (run {row['run_id']})"
    lines = [
        f"{key}: {row['rows_read']} rows read, {row['rows_accepted']} accepted, {row['rows_rejected']} rejected, "
        f"{row['warnings']} warnings; users +{row['users_created']} created / {row['users_updated']} updated; "
        f"passes +{row['passes_created']}"
    ]
    for line, column, severity, reason in issues[:MAX_ISSUES_SHOWN]:
        lines.append(f"  line {line:>4} {severity:<7} {column:<12} {reason[:100]}")
    if len(issues) > MAX_ISSUES_SHOWN:
        lines.append(f"  ... {len(issues) - MAX_ISSUES_SHOWN} more in upload_issues")
    return "\n".join(lines)
