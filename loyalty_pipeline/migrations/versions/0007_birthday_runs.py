"""Birthday results per (program, day), enabled-since markers and late-alert dedupe (issue 12)

The birthday assets are partitioned by day; the programs of a day are a batch inside the run. Each
(day, program) result is a birthday_runs row written in the same transaction as that program's
rewards, so the schedule, the catch-up sensor and the late alert read in one query what is done,
what failed and what is missing. Existing instances: the days that already have rewards count as
succeeded (catch-up then knows each program's last successful day), and programs enabled today are
enabled since their creation. Was sql/006_birthday_runs.sql on branch h12 (written for this
package's conventions, for the integrator; the h12 branch itself still applies the sql/ file).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from loyalty_pipeline.migrations import execute

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE birthday_runs (
            program_id {uuid} NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
            run_date date NOT NULL,
            status text NOT NULL CHECK (status IN ('succeeded', 'skipped', 'failed')),
            eligible integer NOT NULL DEFAULT 0,
            rewarded integer NOT NULL DEFAULT 0,
            points integer NOT NULL DEFAULT 0,
            rewarded_by_run integer NOT NULL DEFAULT 0,
            note text,
            error text,
            attempts integer NOT NULL DEFAULT 1,
            run_id text,
            started_at {timestamptz},
            finished_at {timestamptz},
            PRIMARY KEY (program_id, run_date)
        )""",
        "CREATE INDEX birthday_runs_date_idx ON birthday_runs (run_date, status)",
        "CREATE INDEX birthday_runs_run_idx ON birthday_runs (run_id)",
        """CREATE TABLE birthday_enabled_since (
            program_id {uuid} PRIMARY KEY REFERENCES programs (id) ON DELETE CASCADE,
            since {timestamptz} NOT NULL
        )""",
        """CREATE TABLE birthday_late_alerts (
            program_id {uuid} NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
            run_date date NOT NULL,
            alerted_at {timestamptz} NOT NULL DEFAULT {now},
            PRIMARY KEY (program_id, run_date)
        )""",
        """INSERT INTO birthday_runs (program_id, run_date, status, eligible, rewarded, points, note, run_id,
                                      started_at, finished_at)
           SELECT program_id, reward_date, 'succeeded', count(*), count(*), sum(points),
                  'migrated from birthday_logs', NULL, min(created_at), max(created_at)
           FROM birthday_logs
           GROUP BY program_id, reward_date
           ON CONFLICT (program_id, run_date) DO NOTHING""",
        """INSERT INTO birthday_enabled_since (program_id, since)
           SELECT id, created_at FROM programs WHERE birthday_bot_enabled
           ON CONFLICT (program_id) DO NOTHING""",
    )


def downgrade() -> None:
    raise NotImplementedError("the loyalty schema migrates forward only; restore a backup to go back")
