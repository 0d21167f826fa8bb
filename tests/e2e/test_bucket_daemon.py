"""Uploads in an S3 bucket, end to end: the real `dagster-daemon` on the production instance config
(deploy/dagster.yaml: Postgres storage, queued runs) with `upload_sensor` on and
`LOYALTY_UPLOADS_URL=s3://<bucket>/<prefix>` pointing at moto's S3 server (tests/buckets.py) on
127.0.0.1, through the variables of the README (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).

The daemon does everything: its sensor tick lists the bucket, its run coordinator starts the run,
the run streams the objects from the bucket. Asserted: the users and passes land, each `uploads`
row has status `succeeded`, the change marker `<size>:<ETag>` and the sha256 of the object;
keys outside a program folder or with an unsafe name are refused with the reason in the tick's log;
a new version of one object is ingested in a run of its own and the unchanged object is not read
again; and the secret key appears nowhere in the daemon's output, Dagster's storage (runs, event
logs, ticks) or the captured logs. About a minute: two sensor ticks 15 s apart and two runs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import text

from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.programs import save_program
from tests.buckets import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, new_bucket
from tests.dagster_processes import (
    WORKSPACE_YAML,
    environment,
    production_home,
    run_command,
    start_daemon,
    wait_for,
)
from tests.e2e.test_webserver_daemon import _fresh_databases

PROGRAMS = ("alpha-cafe", "beta-books")
MARCH = "alpha-cafe/march.csv"
GUESTS = "beta-books/guests.csv"
CONTENT = {
    MARCH: "email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n",
    GUESTS: "email,first_name\ncyd@example.com,Cyd\n",
}
GUESTS_V2 = "email,first_name\ncyd@example.com,Cyd\ndee@example.com,Dee\n"
# Not uploads: refused with the reason in the sensor's log, never a row of `uploads`.
REFUSED = {
    "readme.csv": "'readme.csv': outside any program folder",
    "alpha-cafe/a b.csv": "'alpha-cafe/a b.csv': invalid upload file name 'a b.csv'",
}


@pytest.fixture
def bucket_databases():
    """Fresh databases for Dagster and the application (fails under CI=true without PostgreSQL)."""
    yield from _fresh_databases()


@pytest.fixture
def world(bucket_databases, tmp_path):
    """The migrated application database with two programs, a bucket on a moto server of its own,
    and the environment of the daemon: the bucket through the usual AWS variables, a secret key
    the test can look for (moto's authentication on: no other key is accepted)."""
    production_home(tmp_path / "dagster_home")
    app = make_engine(bucket_databases["app"].render_as_string(hide_password=False))
    dagster_db = make_engine(bucket_databases["dagster"].render_as_string(hide_password=False))
    migrate(app)
    with app.begin() as conn:
        for slug in PROGRAMS:
            save_program(conn, slug, slug.replace("-", " ").title())
    server = MotoServer(tmp_path / "moto.log")
    try:
        bucket = new_bucket(server, prefix="loyalty/uploads")
        # From here on moto checks every request's signature against its IAM: only this user's key
        # and secret work, so the secret the test looks for is the one the daemon signed with.
        access_key, secret = server.create_user("loyalty-e2e")
        bucket = replace(bucket, access_key=access_key, secret_key=secret)
        server.enforce_auth(True)
        env = environment(
            dagster_home=tmp_path / "dagster_home",
            app_url=bucket_databases["app"].render_as_string(hide_password=False),
            work=tmp_path,
            dagster_postgres=bucket_databases["dagster"],
        )
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}  # nothing from the caller's ~/.aws
        env.update(
            {
                "LOYALTY_UPLOADS_URL": bucket.url,
                "LOYALTY_REPORTS_DIR": str(tmp_path / "reports"),
                "AWS_ENDPOINT_URL_S3": server.endpoint,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            }
        )
        yield {"app": app, "dagster": dagster_db, "bucket": bucket, "env": env, "secret": secret, "root": tmp_path}
    finally:
        server.stop()
        app.dispose()
        dagster_db.dispose()


def _query(engine, sql: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql)).mappings().all()


def _uploads(app) -> dict[str, dict]:
    columns = "key, status, change_marker, sha256, ingested_sha256, run_id, rows_accepted, error, finished_at"
    return {row["key"]: dict(row) for row in _query(app, f"SELECT {columns} FROM uploads")}


def _sensor_runs(dagster_db) -> list[dict]:
    """upload_sensor's runs, oldest first: id, status, partition, its files (run config) and tags."""
    rows = _query(
        dagster_db,
        "SELECT r.run_id, r.status, r.partition, r.run_body FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
        "WHERE t.key = 'dagster/sensor_name' AND t.value = 'upload_sensor' ORDER BY r.id",
    )
    runs = []
    for row in rows:
        run = json.loads(row["run_body"])
        files = run["run_config"]["ops"]["ingest_uploads"]["config"]["files"]
        runs.append({**row, "files": files, "tags": run["tags"]})
    return runs


def _ticks(dagster_db) -> list[dict]:
    """upload_sensor's finished ticks, oldest first: the status and the skip reason."""
    rows = _query(
        dagster_db,
        "SELECT t.status, t.tick_body FROM job_ticks t JOIN jobs j ON j.job_origin_id = t.job_origin_id "
        "WHERE j.job_body LIKE '%upload_sensor%' AND t.status <> 'STARTED' ORDER BY t.id",
    )
    return [{"status": row["status"], "skip_reason": json.loads(row["tick_body"]).get("skip_reason")} for row in rows]


def _storage_rows_with(dagster_db, needle: str) -> dict[str, int]:
    """Rows of every table of Dagster's database whose text contains `needle`, by table."""
    found = {}
    with dagster_db.connect() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalars()
        for table in list(tables):
            count = conn.execute(
                text(f'SELECT count(*) FROM "{table}" AS t WHERE CAST(t AS text) LIKE :n'), {"n": f"%{needle}%"}
            ).scalar_one()
            if count:
                found[table] = count
    return found


def _files_with(folder: Path, needle: str) -> list[str]:
    """Files under `folder` (the daemon's log, the captured logs of ticks and runs) containing `needle`."""
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    )


def test_the_daemon_ingests_a_bucket_and_then_only_the_object_that_changed(world):
    started = time.monotonic()
    app, dagster_db, bucket, env, secret, root = (
        world[k] for k in ("app", "dagster", "bucket", "env", "secret", "root")
    )
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):  # authentication is on: any other key is refused
        replace(bucket, access_key=ACCESS_KEY, secret_key=SECRET_KEY).put(MARCH, "email\n")
    etags = {key: bucket.put(key, content).strip('"') for key, content in CONTENT.items()}
    for key in REFUSED:
        bucket.put(key, "email\nzed@example.com\n")
    bucket.put("beta-books/.emptyFolderPlaceholder", "")  # what Supabase's dashboard leaves: not an upload
    today = {datetime.now(timezone.utc).date().isoformat()}

    with start_daemon(env, root) as daemon:
        # Turned on as an operator does from a shell (the UI's toggle writes the same sensor state).
        run_command(["dagster", "sensor", "start", "upload_sensor", "-w", str(WORKSPACE_YAML)], env)

        def settled(keys: set[str], sha: dict[str, str] | None = None):
            def probe():
                rows = _uploads(app)
                done = {k for k, r in rows.items() if r["status"] in ("succeeded", "failed")}
                fresh = all(rows[k]["sha256"] == v for k, v in (sha or {}).items() if k in rows)
                runs = _sensor_runs(dagster_db)
                finished = runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
                return (keys <= done and fresh and finished) or str({k: r["status"] for k, r in rows.items()})

            return probe

        # 1. The first tick lists the bucket; one run ingests both objects.
        wait_for("the bucket's two objects to be ingested", settled(set(CONTENT)), 120, interval=1, watch=[daemon])
        first_done = time.monotonic() - started
        (first,) = _sensor_runs(dagster_db)
        assert (first["status"], first["files"]) == ("SUCCESS", sorted(CONTENT)), first
        assert first["partition"] in today | {datetime.now(timezone.utc).date().isoformat()}
        rows = _uploads(app)
        assert set(rows) == set(CONTENT), "refused keys and the folder placeholder are not uploads"
        for key, content in CONTENT.items():
            sha = hashlib.sha256(content.encode()).hexdigest()
            assert rows[key]["status"] == "succeeded", rows[key]
            assert rows[key]["change_marker"] == f"{len(content.encode())}:{etags[key]}", rows[key]
            assert rows[key]["sha256"] == rows[key]["ingested_sha256"] == sha, rows[key]
            assert rows[key]["run_id"] == first["run_id"] and rows[key]["error"] is None
        assert (rows[MARCH]["rows_accepted"], rows[GUESTS]["rows_accepted"]) == (2, 1)
        passes = _query(
            app,
            "SELECT u.email, pr.slug FROM passes_master p JOIN users u ON u.id = p.user_id "
            "JOIN programs pr ON pr.id = p.program_id ORDER BY u.email",
        )
        assert [(p["email"], p["slug"]) for p in passes] == [
            ("ann@example.com", "alpha-cafe"),
            ("bob@example.com", "alpha-cafe"),
            ("cyd@example.com", "beta-books"),
        ]

        # 2. A new version of one object: a run of its own, for that object alone.
        new_etag = bucket.put(GUESTS, GUESTS_V2).strip('"')
        assert new_etag != etags[GUESTS]
        new_sha = hashlib.sha256(GUESTS_V2.encode()).hexdigest()
        wait_for(
            "the new version to be ingested",
            settled({GUESTS}, {GUESTS: new_sha}),
            90,
            interval=1,
            watch=[daemon],
        )
        runs = _sensor_runs(dagster_db)
        assert [(r["status"], r["files"]) for r in runs] == [("SUCCESS", sorted(CONTENT)), ("SUCCESS", [GUESTS])]
        assert runs[1]["tags"]["program"] == "beta-books" and runs[1]["tags"]["loyalty/files"] == "1"
        after = _uploads(app)
        assert after[MARCH] == rows[MARCH], "the unchanged object is not ingested again"
        # ... nor even read: after its new version was put, the server saw no request for it.
        requests = (root / "moto.log").read_text(errors="replace").splitlines()
        changed = max(
            i for i, line in enumerate(requests) if f"PUT /{bucket.name}/{bucket.object_key(GUESTS)} " in line
        )
        assert not [line for line in requests[changed:] if MARCH in line], requests[changed:]
        assert after[GUESTS]["status"] == "succeeded", after[GUESTS]
        assert after[GUESTS]["change_marker"] == f"{len(GUESTS_V2.encode())}:{new_etag}"
        assert after[GUESTS]["sha256"] == after[GUESTS]["ingested_sha256"] == new_sha
        assert (after[GUESTS]["run_id"], after[GUESTS]["rows_accepted"]) == (runs[1]["run_id"], 2)
        emails = [row["email"] for row in _query(app, "SELECT email FROM users ORDER BY email")]
        assert emails == ["ann@example.com", "bob@example.com", "cyd@example.com", "dee@example.com"]

        # 3. A tick after the second run requests nothing: the new ETag is recorded.
        ticks_before = len(_ticks(dagster_db))
        wait_for(
            "a tick after the second run",
            lambda: len(_ticks(dagster_db)) > ticks_before or f"{ticks_before} ticks",
            60,
            interval=1,
            watch=[daemon],
        )
        assert len(_sensor_runs(dagster_db)) == 2
        last_tick = _ticks(dagster_db)[-1]
        assert last_tick["status"] == "SKIPPED", last_tick
        assert "0 new or changed, 2 refused" in last_tick["skip_reason"], last_tick["skip_reason"]

    # The refusals, with their reasons, in the tick's captured log (what the UI shows for a tick).
    storage = root / "dagster_home" / "storage"
    for key, reason in REFUSED.items():
        assert _files_with(storage, f"ignored upload: {reason}"), f"no refusal logged for {key!r}"
    # The store is named in the run's metadata by its URL and endpoint; the secret key nowhere.
    assert _storage_rows_with(dagster_db, f"{bucket.url} at {bucket.server.endpoint}").get("event_logs")
    assert _storage_rows_with(dagster_db, secret) == {}
    assert secret not in (root / "dagster-daemon.log").read_text(errors="replace")
    assert _files_with(root / "dagster_home", secret) == [], "the captured logs of ticks and runs"
    assert _files_with(root / "reports", secret) == []
    assert not (root / "uploads").exists(), "LOYALTY_UPLOADS_URL wins: the folder is never used"
    print(f"bucket e2e: first batch ingested at {first_done:.0f} s, total {time.monotonic() - started:.0f} s")
