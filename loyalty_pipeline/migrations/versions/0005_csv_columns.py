"""programs.csv_columns: a program's own CSV header names (JSON object)

programs.csv_columns: a program's own CSV header names, a JSON object mapping a field of the
upload (email, first_name, ...) to the header the program's files use. NULL means the standard
headers. Text rather than json/jsonb so both databases and the front end store it alike; the
loyalty CLI and the pipeline validate it (loyalty_pipeline/programs.py). Takes the place of
sql/005_csv_columns.sql of the hand-written runner (a database that applied that file is stamped
at this revision when adopted). Its SQL: sql/{postgresql,sqlite}/0005_csv_columns.sql.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0005"
down_revision = "0004"

upgrade, downgrade = sql_revision("0005_csv_columns")
