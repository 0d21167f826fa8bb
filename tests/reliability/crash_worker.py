"""Crash-test worker: runs the ingestion or the reward job against a database in a loop until it
is killed (SIGKILL from the test). Prints READY once started, then BEGIN / COMMIT / ROLLBACK for
every database transaction, so the test can tell whether the kill landed mid-transaction.

    python tests/reliability/crash_worker.py PLAN.json DATABASE_URL
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import event  # noqa: E402

from loyalty_pipeline.db import make_engine  # noqa: E402
from tests.reliability import jobs  # noqa: E402


def main(plan_path: str, url: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    engine = make_engine(url)
    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, lambda conn, name=name: print(name.upper(), flush=True))
    with engine.connect():
        pass  # connect before READY: the kill should land in the work, not in the start-up
    print("READY", flush=True)
    iteration = 0
    while True:
        iteration += 1
        if plan["mode"] == "ingest":
            jobs.run_ingest(engine, plan["payload"])
        else:
            jobs.run_rewards(engine, plan["payload"])
        print(f"ITERATION {iteration}", flush=True)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
