"""Loading a validated upload: users merged by email, one active pass per user in the program,
the upload's issues and counts - all in one transaction, set-based."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from loyalty_pipeline.db import bulk_insert, create_temp_table, db_time, end_own_timestamps, is_postgres, own_timestamps
from loyalty_pipeline.programs import Program
from loyalty_pipeline.validation import ValidatedUpload

_STAGE_USERS = [
    ("line", "integer"),
    ("email", "text PRIMARY KEY"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("birth_date", "date"),
    ("birth_month", "smallint"),
    ("birth_day", "smallint"),
    ("phone_number", "text"),
]
_STAGE_ISSUES = [("line", "integer"), ("column", "text"), ("value", "text"), ("severity", "text"), ("reason", "text")]

# A birthday as people read it: 1990-03-14, or --03-14 when the year is unknown.
_BIRTHDAY_TEXT = {
    "postgresql": "COALESCE(to_char({t}.birth_date, 'YYYY-MM-DD'), "
    "'--' || lpad({t}.birth_month::text, 2, '0') || '-' || lpad({t}.birth_day::text, 2, '0'))",
    "sqlite": "COALESCE({t}.birth_date, printf('--%02d-%02d', {t}.birth_month, {t}.birth_day))",
}

# The incoming birthday differs from a stored one (month/day, or the year when both know it).
_BIRTHDAY_CHANGED = """
    {new}.birth_month IS NOT NULL AND {old}.birth_month IS NOT NULL AND (
        {new}.birth_month <> {old}.birth_month OR {new}.birth_day <> {old}.birth_day
        OR ({new}.birth_date IS NOT NULL AND {old}.birth_date IS NOT NULL AND {new}.birth_date <> {old}.birth_date))
"""
_BIRTHDAY_MOVES = (
    "(EXCLUDED.birth_month IS NOT NULL AND users.birth_month IS NULL) OR ("
    + _BIRTHDAY_CHANGED.format(new="EXCLUDED", old="users")
    + ")"
)

# The incoming row would change the stored one: the merge's guard, so unchanged rows are left alone.
_CHANGES = """(
       ({new}.first_name IS NOT NULL AND {new}.first_name IS DISTINCT FROM {old}.first_name)
    OR ({new}.last_name IS NOT NULL AND {new}.last_name IS DISTINCT FROM {old}.last_name)
    OR ({new}.phone_number IS NOT NULL AND {new}.phone_number IS DISTINCT FROM {old}.phone_number)
    OR ({new}.birth_month IS NOT NULL AND (
          {new}.birth_month IS DISTINCT FROM {old}.birth_month
          OR {new}.birth_day IS DISTINCT FROM {old}.birth_day
          OR ({new}.birth_date IS NOT NULL AND {new}.birth_date IS DISTINCT FROM {old}.birth_date))))"""

_MERGE_USERS = f"""
INSERT INTO users (email, first_name, last_name, birth_date, birth_month, birth_day,
                   birth_date_set_at, phone_number, created_at, updated_at)
SELECT email, first_name, last_name, birth_date, birth_month, birth_day,
       CASE WHEN birth_month IS NOT NULL THEN :now END, phone_number, :now, :now
FROM {{source}}
ORDER BY email
ON CONFLICT (email) DO UPDATE SET
    first_name = COALESCE(EXCLUDED.first_name, users.first_name),
    last_name = COALESCE(EXCLUDED.last_name, users.last_name),
    phone_number = COALESCE(EXCLUDED.phone_number, users.phone_number),
    birth_date = CASE
        WHEN EXCLUDED.birth_month IS NULL THEN users.birth_date
        WHEN EXCLUDED.birth_date IS NOT NULL THEN EXCLUDED.birth_date
        WHEN EXCLUDED.birth_month = users.birth_month AND EXCLUDED.birth_day = users.birth_day THEN users.birth_date
        ELSE NULL END,
    birth_month = COALESCE(EXCLUDED.birth_month, users.birth_month),
    birth_day = COALESCE(EXCLUDED.birth_day, users.birth_day),
    birth_date_set_at = CASE WHEN {_BIRTHDAY_MOVES} THEN EXCLUDED.birth_date_set_at ELSE users.birth_date_set_at END,
    updated_at = EXCLUDED.updated_at
WHERE {_CHANGES.format(new="EXCLUDED", old="users")}
"""

# Every accepted row's user gets an active pass in the program; `source` yields their user_id.
_ENSURE_PASSES = """
INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
SELECT :program_id, s.user_id, 'active', 0, :now
FROM {source}
WHERE true
ORDER BY s.user_id
ON CONFLICT (program_id, user_id) DO NOTHING
"""
# SQLite: the staged rows' users without a pass in the program. Filtered before the INSERT, not left
# to its ON CONFLICT: a conflicting row still had its random id made and probed (the 1M-row upload's
# 446k users that already hold a pass: 18 s -> 10 s).
_USERS_OF_STAGED_ROWS = """(
    SELECT u.id AS user_id FROM stage_users st JOIN users u ON u.email = st.email
    WHERE NOT EXISTS (SELECT 1 FROM passes_master p WHERE p.program_id = :program_id AND p.user_id = u.id)) s"""

# Postgres: the users this upload creates get their passes in the merge statement itself, from the
# ids it returns - no second join of the staged rows with users by email, and no conflict to check,
# since nobody else can see those users yet. The users the match found get a pass unless they
# already hold one (a deleted user is skipped). A user that another upload created after the match
# is only found by email again: that join runs when the merge created fewer users than were new.
_MERGE_USERS_AND_NEW_PASSES = """
WITH merged AS ({merge} RETURNING id, xmax = 0 AS inserted),
new_passes AS (
    INSERT INTO passes_master (program_id, user_id, status, points_balance, created_at)
    SELECT :program_id, id, 'active', 0, :now FROM merged WHERE inserted ORDER BY id
    RETURNING 1)
SELECT (SELECT count(*) FROM merged WHERE inserted), (SELECT count(*) FROM merged), (SELECT count(*) FROM new_passes)
"""
_PASSES_STILL_MISSING = """(
    SELECT m.user_id FROM stage_match m JOIN users u ON u.id = m.user_id
    WHERE m.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM passes_master p WHERE p.program_id = :program_id AND p.user_id = m.user_id)
    UNION ALL
    SELECT u.id FROM stage_match m JOIN users u ON u.email = m.email
    WHERE m.user_id IS NULL AND :created_elsewhere) s"""

# Postgres: one join of the staged rows with users classifies them (new, changed, unchanged, birthday
# changed), so the merge touches only rows it changes - ON CONFLICT DO UPDATE locks and WAL-logs every
# conflicting row even when its WHERE then skips it - and the count and the birthday warnings read
# the classification instead of joining users again.
_MATCH_USERS = f"""
CREATE TEMP TABLE stage_match ON COMMIT DROP AS
SELECT s.*, u.id AS user_id,
       u.id IS NULL OR {_CHANGES.format(new="s", old="u")} AS needs_merge,
       u.id IS NOT NULL AND COALESCE({_BIRTHDAY_CHANGED.format(new="s", old="u")}, true) AS birthday_changed
FROM stage_users s LEFT JOIN users u ON u.email = s.email
"""
# SQLite: a row another writer left with a differently typed email (an `ON CONFLICT DO NOTHING` that
# matched the person by the normalised address, see migration 0006) is respelled before the merge
# matches users by email. The WHERE is the partial index users_email_unnormalised_idx's, so this
# reads only such rows.
_SQLITE_RESPELL_EMAILS = """
UPDATE users SET email = lower(trim(email, ' ' || char(9, 10, 11, 12, 13)))
WHERE email <> lower(trim(email, ' ' || char(9, 10, 11, 12, 13)))
"""
# SQLite: only the staged rows that are new or would change their user reach the merge (what
# stage_match's needs_merge does on Postgres): left to the merge's WHERE, every unchanged row still
# had its random id made and its conflict resolved.
_SQLITE_NEW_OR_CHANGED = f"""stage_users s WHERE NOT EXISTS (
    SELECT 1 FROM users u WHERE u.email = s.email AND NOT {_CHANGES.format(new="s", old="u")})"""
# The file's issue rows. A rerun of the same version finds them all recorded already: the anti-join
# skips them in one hash of the upload's rows, where ON CONFLICT alone probed the unique index and
# resolved a conflict row by row (the 1M-row file's 153k issues: 1.5 s -> 0.2 s). ON CONFLICT stays
# for a concurrent run of the same file.
_INSERT_ISSUES = """
INSERT INTO upload_issues (upload_key, line, "column", value, severity, reason)
SELECT :key, s.line, s."column", s.value, s.severity, s.reason FROM stage_issues s
WHERE NOT EXISTS (SELECT 1 FROM upload_issues u
                  WHERE u.upload_key = :key AND u.line = s.line AND u."column" = s."column" AND u.reason = s.reason)
ON CONFLICT (upload_key, line, "column", reason) DO NOTHING
"""
# Sorts and hashes over a million staged rows stay in memory instead of spilling to disk.
_WORK_MEM = "256MB"
_SQLITE_CACHE_KIB = 256 * 1024


@dataclass(frozen=True)
class IngestResult:
    upload_key: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    warnings: int
    users_created: int
    users_updated: int
    passes_created: int
    birthdays_changed: int

    def as_dict(self) -> dict:
        return asdict(self)


def _stage(conn: Connection, validated: ValidatedUpload) -> None:
    # Emails are unique already (VALIDATED_USERS_SCHEMA); on Postgres the COPY is twice as fast
    # without an index to maintain, and every statement reading stage_users scans it whole.
    columns = [(c, "text") if c == "email" else (c, t) for c, t in _STAGE_USERS] if is_postgres(conn) else _STAGE_USERS
    create_temp_table(conn, "stage_users", columns)
    bulk_insert(conn, "stage_users", validated.users.select([c for c, _ in _STAGE_USERS]))
    create_temp_table(conn, "stage_issues", _STAGE_ISSUES)
    bulk_insert(conn, "stage_issues", validated.issues.select([c for c, _ in _STAGE_ISSUES]))
    # (No ANALYZE of stage_users: the planner sizes a never-analysed table from its pages, enough
    # for the one join that reads it; stage_match, read by several statements, is analysed.)


def _record_birthday_changes(conn: Connection, key: str, source: str = "stage_users s") -> int:
    old_text = _BIRTHDAY_TEXT[conn.dialect.name].format(t="u")
    new_text = _BIRTHDAY_TEXT[conn.dialect.name].format(t="s")
    return conn.execute(
        text(f"""
            INSERT INTO upload_issues (upload_key, line, "column", value, severity, reason)
            SELECT :key, s.line, 'birth_date', {new_text}, 'warning',
                   'birthday changed from ' || {old_text} || ' to ' || {new_text}
            FROM {source} JOIN users u ON u.email = s.email
            WHERE {_BIRTHDAY_CHANGED.format(new="s", old="u")}
            ON CONFLICT (upload_key, line, "column", reason) DO NOTHING
        """),
        {"key": key},
    ).rowcount


def load_upload(
    engine: Engine,
    *,
    key: str,
    file_name: str,
    sha256: str,
    program: Program,
    validated: ValidatedUpload,
    now: datetime,
    run_id: str | None = None,
    change_marker: str | None = None,
) -> IngestResult:
    """Write one upload and record it `succeeded`. A rerun of the same file changes nothing; a new
    version of the file replaces the previous version's issue rows."""
    with engine.begin() as conn:
        postgres = is_postgres(conn)
        if postgres:
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")
            # The statements below are bulk writes whose estimated cost passes the JIT thresholds;
            # compiling them (with inlining and optimisation) costs more than it saves.
            conn.exec_driver_sql("SET LOCAL jit = off")
        else:
            # SQLite's default page cache is 2 MB: a large upload's inserts into the email, id and
            # pass indexes then go to the OS for nearly every page. A ceiling, allocated as used.
            conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        ts = db_time(conn, now)
        own_timestamps(conn, "pipeline")  # the merge stamps updated_at/birth_date_set_at with `now`
        previous = conn.execute(text("SELECT ingested_sha256 FROM uploads WHERE key = :key"), {"key": key}).scalar()
        if previous is not None and previous != sha256:
            conn.execute(text("DELETE FROM upload_issues WHERE upload_key = :key"), {"key": key})
        conn.execute(
            text("""
                INSERT INTO uploads (key, program_id, file_name, sha256, ingested_sha256, change_marker, status,
                                     run_id, arrived_at, started_at, finished_at, processed_at)
                VALUES (:key, :program_id, :file_name, :sha256, :sha256, :marker, 'succeeded',
                        :run_id, :now, :now, :now, :now)
                ON CONFLICT (key) DO UPDATE SET
                    arrived_at = CASE WHEN uploads.sha256 = EXCLUDED.sha256 THEN COALESCE(uploads.arrived_at, :now)
                                      ELSE :now END,
                    sha256 = EXCLUDED.sha256, ingested_sha256 = EXCLUDED.sha256,
                    change_marker = COALESCE(EXCLUDED.change_marker, uploads.change_marker), status = 'succeeded',
                    error = NULL, run_id = EXCLUDED.run_id, started_at = COALESCE(uploads.started_at, :now),
                    finished_at = EXCLUDED.finished_at, processed_at = EXCLUDED.processed_at
            """),
            {
                "key": key,
                "program_id": program.id,
                "file_name": file_name,
                "sha256": sha256,
                "marker": change_marker,
                "run_id": run_id,
                "now": ts,
            },
        )
        _stage(conn, validated)
        conn.execute(text(_INSERT_ISSUES), {"key": key})
        if postgres:
            conn.exec_driver_sql(_MATCH_USERS)
            # Row counts and null fractions are all the later plans need: a small sample gives them.
            conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
            conn.exec_driver_sql("ANALYZE stage_match")
            birthdays_changed = _record_birthday_changes(
                conn, key, "(SELECT * FROM stage_match WHERE birthday_changed) s"
            )
            # Counted from the merge itself: a row is new when no version of it existed before
            # (xmax = 0), so a concurrent upload creating the same users cannot be counted twice.
            created, merged, passes_created = conn.execute(
                text(
                    _MERGE_USERS_AND_NEW_PASSES.format(
                        merge=_MERGE_USERS.format(source="stage_match WHERE needs_merge")
                    )
                ),
                {"now": ts, "program_id": program.id},
            ).one()
            unmatched = conn.execute(text("SELECT count(*) FROM stage_match WHERE user_id IS NULL")).scalar_one()
            passes_created += conn.execute(
                text(_ENSURE_PASSES.format(source=_PASSES_STILL_MISSING)),
                {"program_id": program.id, "now": ts, "created_elsewhere": created < unmatched},
            ).rowcount
        else:  # SQLite: BEGIN IMMEDIATE serialises writers, so the users seen before the merge are exact
            conn.exec_driver_sql(_SQLITE_RESPELL_EMAILS)
            birthdays_changed = _record_birthday_changes(conn, key)
            existing = conn.execute(
                text("SELECT count(*) FROM stage_users s JOIN users u ON u.email = s.email")
            ).scalar_one()
            merged = conn.execute(text(_MERGE_USERS.format(source=_SQLITE_NEW_OR_CHANGED)), {"now": ts}).rowcount
            created = validated.users.height - existing
            passes_created = conn.execute(
                text(_ENSURE_PASSES.format(source=_USERS_OF_STAGED_ROWS)), {"program_id": program.id, "now": ts}
            ).rowcount
        warnings = conn.execute(
            text("SELECT count(*) FROM upload_issues WHERE upload_key = :key AND severity = 'warning'"),
            {"key": key},
        ).scalar_one()
        result = IngestResult(
            upload_key=key,
            rows_read=validated.rows_read,
            rows_accepted=validated.rows_accepted,
            rows_rejected=validated.rows_rejected,
            warnings=warnings,
            users_created=created,
            users_updated=merged - created,
            passes_created=passes_created,
            birthdays_changed=birthdays_changed,
        )
        conn.execute(
            text("""
                UPDATE uploads SET rows_read = :rows_read, rows_accepted = :rows_accepted,
                    rows_rejected = :rows_rejected, warnings = :warnings, users_created = :users_created,
                    users_updated = :users_updated, passes_created = :passes_created
                WHERE key = :upload_key
            """),
            {k: v for k, v in result.as_dict().items() if k != "birthdays_changed"},
        )
        end_own_timestamps(conn)
        if not is_postgres(conn):
            conn.exec_driver_sql("DROP TABLE temp.stage_users")
            conn.exec_driver_sql("DROP TABLE temp.stage_issues")
    return result
