"""Names from outside - program slugs, upload file names, partition keys, directory entries in
LOYALTY_UPLOADS_DIR - never make the pipeline read or write outside LOYALTY_UPLOADS_DIR, and a bad
one is rejected with a clear one-line message (control characters escaped, never echoed raw)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import build_sensor_context, instance_for_test, materialize
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from assets.birthdays import batch_config, birthday_log
from loyalty_pipeline import cli
from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.names import InvalidName, check_file_name, check_slug, split_upload_key, upload_key, upload_path
from loyalty_pipeline.upload_store import FolderStore
from schedules.sensors import upload_sensor
from tests.factories import ingest_run, sqlite_world
from tests.reliability.helpers import NOW, PROPERTY_SETTINGS, record

HOSTILE_SLUGS = [
    "../etc",
    "..",
    ".",
    "a/b",
    "/abs",
    "joes pizza",
    "Joes",
    "joes-pizza/../../x",
    "a\\b",
    "x\x1b[2Jy",
    "x\ny",
    "x\ty",
    "x\x00y",
    "-x",
    "x-",
    "é",
    "joes_pizza",
    "a|b",
    "a,b",
    "",
    " joes",
    "x" * 65,
]
HOSTILE_FILE_NAMES = [
    "../x.csv",
    "a/b.csv",
    "/etc/passwd.csv",
    "a b.csv",
    "tab\t.csv",
    "esc\x1b[2J.csv",
    "new\nline.csv",
    ".hidden.csv",
    "-rf.csv",
    "évil.csv",
    "\u212a.csv",
    "x.cſv",
    "x.csv.exe",
    "x.pdf",
    "x.xlsm",
    "..csv",
    "a..b.csv",
    "nul\x00.csv",
    "x" * 201 + ".csv",
    "a\\..\\b.csv",
    "CON .csv",
    "x.csv ",
]
CONTROL = [chr(c) for c in range(32)] + ["\x7f"]


def _escaped(message: str) -> bool:
    return not any(ch in message for ch in CONTROL if ch != " ")


@pytest.mark.parametrize(
    ("check", "what", "name"),
    [(check_slug, "program slug", slug) for slug in HOSTILE_SLUGS]
    + [(check_file_name, "upload file name", name) for name in HOSTILE_FILE_NAMES],
)
def test_hostile_names_are_rejected_with_a_clear_message(check, what, name):
    record(cases_tried=1)
    with pytest.raises(InvalidName) as error:
        check(name)
    assert str(error.value).startswith(f"invalid {what} {name!r}") and _escaped(str(error.value))


@PROPERTY_SETTINGS
@given(
    slug=st.one_of(
        st.text(max_size=12), st.sampled_from(HOSTILE_SLUGS), st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True)
    ),
    name=st.one_of(
        st.text(max_size=14),
        st.sampled_from(HOSTILE_FILE_NAMES),
        st.from_regex(r"[A-Za-z0-9._/-]{1,10}\.csv", fullmatch=True),
    ),
)
def test_any_accepted_name_stays_inside_the_uploads_dir(tmp_path, slug, name):
    record(cases_tried=1)
    try:
        key = upload_key(slug, name)
    except InvalidName as error:
        assert str(error).startswith(("invalid program slug", "invalid upload file name")) and _escaped(str(error))
        return
    assert key.isascii() and key.count("/") == 1 and ".." not in key and " " not in key and _escaped(key)
    assert split_upload_key(key) == (slug, name)
    root = (tmp_path / "uploads").resolve()
    assert root in upload_path(root, key).parents


# --- through `loyalty ingest` -----------------------------------------------------------------


@pytest.fixture
def cli_world(tmp_path, monkeypatch):
    settings, engine = sqlite_world(tmp_path)
    for name, value in {
        "LOYALTY_DATABASE_URL": settings.database_url,
        "LOYALTY_UPLOADS_DIR": str(settings.uploads_dir),
        "LOYALTY_REPORTS_DIR": str(settings.reports_dir),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }.items():
        monkeypatch.setenv(name, value)
    yield tmp_path, engine
    engine.dispose()


def _files(root: Path) -> set[Path]:
    return {
        p
        for p in root.rglob("*")
        if p.is_file() and "dagster_home" not in p.parts and p.suffix != ".db" and not p.name.endswith(("-wal", "-shm"))
    }


def _ingest(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["ingest", *argv])
    return code, capsys.readouterr().err


# Slugs argparse takes as a value of --program (not "-x", not an empty string).
CLI_SLUGS = ["../etc", "..", "a/b", "/abs", "joes pizza", "joes-pizza/../../x", "x\x1b[2Jy", "x\ny", "a\\b"]
# Every hostile name a file on disk can have (no separator, no NUL, at most 255 bytes).
CLI_FILE_NAMES = [n for n in HOSTILE_FILE_NAMES if "/" not in n and "\x00" not in n and len(n.encode()) <= 255]


def _refuses_and_writes_nothing(cli_world, capsys, what: str, commands: dict[str, list[str]]) -> None:
    """Each `loyalty ingest` command exits 2 with one escaped line naming the bad `what`, and
    nothing is written: no file, no uploads folder, no uploads row."""
    tmp_path, engine = cli_world
    before = _files(tmp_path)
    for bad, argv in commands.items():
        record(cases_tried=1)
        code, err = _ingest(capsys, *argv)
        assert code == 2, bad
        assert err.count("\n") == 1 and err.startswith(f"loyalty ingest: invalid {what} {bad!r}"), err
        assert _escaped(err.rstrip("\n"))
    assert _files(tmp_path) == before
    assert not (tmp_path / "uploads").exists()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar_one() == 0


def _incoming(tmp_path: Path, *names: str) -> Path:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name in names:
        (incoming / name).write_text("email\nann@x.com\n")
    return incoming


def test_cli_rejects_hostile_slugs_and_writes_nothing(cli_world, capsys):
    source = _incoming(cli_world[0], "march.csv") / "march.csv"
    commands = {slug: [str(source), "--program", slug] for slug in CLI_SLUGS}
    _refuses_and_writes_nothing(cli_world, capsys, "program slug", commands)


def test_cli_rejects_hostile_file_names_and_writes_nothing(cli_world, capsys):
    incoming = _incoming(cli_world[0], *CLI_FILE_NAMES)
    commands = {name: [str(incoming / name), "--program", "joes-pizza"] for name in CLI_FILE_NAMES}
    _refuses_and_writes_nothing(cli_world, capsys, "upload file name", commands)


def test_cli_console_script_escapes_control_characters(cli_world):
    """The real `loyalty` entry point, as an operator runs it."""
    record(cases_tried=1)
    tmp_path, _ = cli_world
    source = tmp_path / "march.csv"
    source.write_text("email\nann@x.com\n")
    loyalty = Path(sys.executable).with_name("loyalty")
    command = [str(loyalty)] if loyalty.exists() else [sys.executable, "-m", "loyalty_pipeline.cli"]
    result = subprocess.run(
        [*command, "ingest", str(source), "--program", "evil\x1b]0;pwned\x07/../.."],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("loyalty ingest: invalid program slug 'evil\\x1b]0;pwned\\x07/../..'")
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr and "\x07" not in result.stderr


# --- through the upload sensor and the raw_upload asset -----------------------------------------


@pytest.fixture
def sensor_world(tmp_path):
    settings, engine = sqlite_world(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("email\nsecret@outside.com\n")
    uploads = settings.uploads_dir
    entries = {
        "joes-pizza/good.csv": "email\ngood@x.com\n",
        "Bad Slug/x.csv": "email\nbad1@x.com\n",
        "-lead/x.csv": "email\nbad2@x.com\n",
        "esc\x1b[31m/x.csv": "email\nbad3@x.com\n",
        "joes-pizza/a b.csv": "email\nbad4@x.com\n",
        "joes-pizza/ctrl\x07.csv": "email\nbad5@x.com\n",
        "joes-pizza/.hidden.csv": "email\nbad6@x.com\n",
        "joes-pizza/ünï.csv": "email\nbad7@x.com\n",
    }
    for relative, content in entries.items():
        path = uploads / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (uploads / "joes-pizza" / "escape.csv").symlink_to(outside / "secret.csv")
    (uploads / "linked").symlink_to(outside, target_is_directory=True)
    (outside / "linked-file.csv").write_text("email\nlinked@outside.com\n")
    past = time.time() - 60
    for path in uploads.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
        if path.is_file():
            os.utime(path, (past, past))
    yield settings, engine, outside
    engine.dispose()


def test_upload_sensor_skips_bad_names_with_escaped_reasons(sensor_world):
    record(cases_tried=1)
    settings, engine, _ = sensor_world
    scan = FolderStore(settings.uploads_dir).scan(None)
    keys = {f.key for f in scan.files}
    assert keys == {"joes-pizza/good.csv"}
    names = [p for p in scan.problems if p.startswith(("invalid program slug", "invalid upload file name"))]
    links = [p for p in scan.problems if "links outside the uploads directory" in p]
    assert (len(names), len(links)) == (7, 2) and len(scan.problems) == 9
    assert all(_escaped(p) for p in scan.problems)
    with instance_for_test() as instance:
        context = build_sensor_context(instance=instance, resources=build_resources(settings))
        result = upload_sensor(context)
        requested = [f for r in result.run_requests for f in r.run_config["ops"]["ingest_uploads"]["config"]["files"]]
    assert set(requested) == keys


def test_uploads_that_resolve_outside_the_uploads_dir_fail_clearly_and_write_nothing(sensor_world):
    """Whatever the sensor requests (or someone names in the launchpad), the ingestion reads nothing
    outside LOYALTY_UPLOADS_DIR: symlinks are resolved first, bad keys are refused."""
    record(cases_tried=1)
    settings, engine, _ = sensor_world
    keys = {
        "joes-pizza/escape.csv": "points outside the uploads directory",
        "linked/linked-file.csv": "points outside the uploads directory",
        "joes-pizza/../../outside/secret.csv": "invalid upload file name",
    }
    with instance_for_test() as instance:
        for key, reason in keys.items():
            result = ingest_run(
                instance, settings, [key], resources=build_resources(settings, frozen_now=NOW.isoformat())
            )
            assert not result.success  # the run's only file failed
            failures = [e for e in result.all_events if e.is_step_failure]
            assert len(failures) == 1
            description = failures[0].step_failure_data.user_failure_data.description
            assert reason in description and len(description.splitlines()) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM uploads WHERE status <> 'failed'")).scalar_one() == 0


def test_odd_slugs_from_the_programs_table_are_rewarded_like_any_other(tmp_path):
    """Slugs are no longer partition keys: a birthday run names programs in its config and binds them
    as parameters, so whatever the front end wrote as a slug is rewarded and reported as it is."""
    record(cases_tried=1)
    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    engine = make_engine(url)
    migrate(engine)
    odd = ["a|b", "../x", "x,y", "'; DROP TABLE programs; --"]
    with engine.begin() as conn:  # the front end writes programs directly; the table only checks slug <> ''
        for slug in ["good", *odd]:
            program_id = conn.execute(
                text(
                    "INSERT INTO programs (slug, name, birthday_bot_enabled, birthday_reward_points) "
                    "VALUES (:s, :s, true, 5) RETURNING id"
                ),
                {"s": slug},
            ).scalar_one()
            user_id = conn.execute(
                text("INSERT INTO users (email, birth_month, birth_day) VALUES (:e, 11, 26) RETURNING id"),
                {"e": f"{len(slug)}-{abs(hash(slug))}@example.com"},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO passes_master (program_id, user_id, created_at) VALUES (:p, :u, '2020-01-01 00:00:00')"
                ),
                {"p": program_id, "u": user_id},
            )
    settings = Settings(database_url=url, uploads_dir=tmp_path / "uploads", timezone="UTC")
    with instance_for_test() as instance:
        result = materialize(
            [birthday_log],
            partition_key="2026-11-26",
            instance=instance,
            run_config=batch_config(["good", *odd]),
            resources=build_resources(settings, frozen_now="2026-11-26T10:00:00+00:00"),
        )
    assert result.success
    with engine.connect() as conn:
        rewarded = (
            conn.execute(
                text(
                    "SELECT pr.slug FROM birthday_runs r JOIN programs pr ON pr.id = r.program_id "
                    "WHERE r.status = 'succeeded' AND r.rewarded = 1"
                )
            )
            .scalars()
            .all()
        )
        assert conn.execute(text("SELECT count(*) FROM programs")).scalar_one() == 5
    engine.dispose()
    assert sorted(rewarded) == sorted(["good", *odd])
