"""The `loyalty` command as a user runs it: a fresh working directory, environment variables,
exit codes and one-line reasons."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from loyalty_pipeline.db import make_engine
from loyalty_pipeline.programs import save_program
from tests.factories import write_contacts_sheet, write_contacts_workbook, write_csv


def loyalty(*args, cwd: Path, env: dict | None = None, timeout=180):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "DAGSTER_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loyalty_pipeline.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_init_db_is_idempotent(db_url, tmp_path, cli_env):
    first = loyalty("init-db", cwd=tmp_path, env=cli_env)
    second = loyalty("init-db", cwd=tmp_path, env=cli_env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "nothing to apply" in second.stdout


def test_ingest_copies_the_file_and_prints_the_summary(db_url, engine, tmp_path, cli_env):
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza")
    source = write_csv(tmp_path / "incoming" / "march.csv", "email,first_name\nann@x.com,Ann\nbad,Bad\n")
    result = loyalty("ingest", str(source), "--program", "joes-pizza", cwd=tmp_path, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "joes-pizza/march.csv: 2 rows read, 1 accepted, 1 rejected" in result.stdout
    assert (tmp_path / "uploads" / "joes-pizza" / "march.csv").read_text() == source.read_text()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email FROM users")).scalars().all() == ["ann@x.com"]
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()  # the run is on the instance the UI reads


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--program", "no-such-program"], "program 'no-such-program' does not exist"),
        (["--program", "../etc"], "invalid program slug"),
    ],
)
def test_ingest_failures_exit_non_zero_with_one_line(db_url, tmp_path, cli_env, args, reason):
    source = write_csv(tmp_path / "march.csv", "email\na@x.com\n")
    result = loyalty("ingest", str(source), *args, cwd=tmp_path, env=cli_env)
    assert result.returncode != 0
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ingest_of_a_broken_file_names_the_problem(db_url, engine, tmp_path, cli_env):
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza")
    source = write_csv(tmp_path / "people.csv", "name,phone\nAnn,1\n")
    result = loyalty("ingest", str(source), "--program", "joes-pizza", cwd=tmp_path, env=cli_env)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        'loyalty ingest: joes-pizza/people.csv: no email column in the header (found: "name", "phone")'
    )


def test_ingest_takes_workbooks_legacy_xls_too_and_refuses_a_damaged_one_in_one_line(db_url, engine, tmp_path, cli_env):
    with engine.begin() as conn:
        save_program(conn, "joes-pizza", "Joe's Pizza")
    workbook = write_contacts_workbook(tmp_path / "incoming" / "Contacts.xlsx")
    result = loyalty("ingest", str(workbook), "--program", "joes-pizza", cwd=tmp_path, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "joes-pizza/Contacts.xlsx: 4 rows read, 3 accepted, 1 rejected" in result.stdout
    legacy = write_contacts_sheet(tmp_path / "incoming" / "Old.xls")
    result = loyalty("ingest", str(legacy), "--program", "joes-pizza", cwd=tmp_path, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "joes-pizza/Old.xls: 3 rows read, 2 accepted, 1 rejected" in result.stdout
    damaged = write_csv(tmp_path / "incoming" / "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512))
    result = loyalty("ingest", str(damaged), "--program", "joes-pizza", cwd=tmp_path, env=cli_env)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(
        "loyalty ingest: joes-pizza/old.xls: the workbook is damaged or not an .xls file"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_works_on_a_fresh_checkout_without_a_server(tmp_path):
    result = loyalty("demo", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "joes-pizza/joes-pizza.csv:" in result.stdout and "rejected" in result.stdout
    assert "rewarded today" in result.stdout and "ada.birthday@example.com" in result.stdout
    assert (tmp_path / ".loyalty" / "loyalty.db").exists()
    engine = make_engine(f"sqlite:///{tmp_path / '.loyalty' / 'loyalty.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM birthday_logs")).scalar_one() >= 2
    again = loyalty("demo", cwd=tmp_path, timeout=300)
    assert again.returncode == 0
    with engine.connect() as conn:  # the demo is rerunnable: nobody is rewarded twice
        assert conn.execute(text("SELECT count(*) FROM birthday_logs")).scalar_one() == 2
