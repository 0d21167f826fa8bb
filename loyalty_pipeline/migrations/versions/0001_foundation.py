"""Foundation schema: programs, users, passes, uploads, issues, birthday log, outbox

Foundation schema: programs, users, passes, uploads and their issues, plus the birthday log and
notification outbox the birthday bot writes. The table names programs, users and passes_master are
the existing Supabase app's (it writes them too). Its SQL (was the old runner's sql/001_foundation.sql):
the tables in sql/{postgresql,sqlite}/0001_foundation.1.sql, then their indexes in
sql/common/0001_foundation.2.sql.

Revision ID: 0001
"""

from __future__ import annotations

from loyalty_pipeline.migrations import sql_revision

revision = "0001"
down_revision = None

upgrade, downgrade = sql_revision("0001_foundation")
