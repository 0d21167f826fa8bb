"""The IO manager between the ingestion steps: values survive the trip exactly, frames included,
and a later run can load what an earlier one stored."""

import io
from dataclasses import dataclass
from datetime import date

import polars as pl
import pytest
from dagster import materialize
from sqlalchemy import text
from upath import UPath

from assets.io_managers import FramePickleIOManager, dump, load
from tests.factories import INGESTION, run_upload


@dataclass
class Nested:
    label: str
    frames: dict


def test_frames_inside_any_object_round_trip_exactly():
    users = pl.DataFrame(
        {
            "email": ["ann@x.com", "bob@x.com", None],
            "first_name": ["Ann", '=HYPERLINK("x")', "Zoë 🎂"],
            "birth_date": [date(1990, 3, 14), None, date(2000, 2, 29)],
            "birth_month": pl.Series([3, None, 2], dtype=pl.Int16),
            "line": pl.Series([2, 3, 4], dtype=pl.Int32),
        }
    )
    value = Nested(label="joes-pizza/u.csv", frames={"users": users, "empty": users.clear()})
    buffer = io.BytesIO()
    dump(value, buffer)
    buffer.seek(0)
    restored = load(buffer)

    assert restored.label == value.label
    assert restored.frames["users"].equals(users, null_equal=True)
    assert restored.frames["users"].schema == users.schema
    assert restored.frames["empty"].schema == users.schema and restored.frames["empty"].height == 0


@pytest.mark.parametrize("key", ["../escape.csv", "/etc/passwd", "a/../../b.csv", "a//b.csv"])
def test_a_partition_key_that_would_leave_the_storage_directory_is_refused(tmp_path, key):
    manager = FramePickleIOManager(base_path=UPath(tmp_path))
    with pytest.raises(ValueError, match="cannot be stored as a path"):
        manager.make_safe_partition_path(UPath(tmp_path), key)


def test_a_later_run_loads_the_validated_upload_an_earlier_run_stored(instance, settings, engine, program):
    from assets.ingestion import users_and_passes
    from loyalty_pipeline.definitions import build_resources

    key = "joes-pizza/u.csv"
    first = run_upload(instance, settings, key, "email,first_name\nann@x.com,Ann\nbob@x.com,Bob\n")
    assert first.success
    assert sorted((settings.storage_dir).rglob("*.pickle")) != []
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM passes_master"))
        conn.execute(text("DELETE FROM users"))

    # Only the last step: its input comes from the file the first run stored.
    again = materialize(
        [users_and_passes, *INGESTION[:2]],
        selection=[users_and_passes],
        partition_key=key,
        instance=instance,
        resources=build_resources(settings, frozen_now="2026-11-26T10:00:00+00:00"),
    )

    assert again.success
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email, first_name FROM users ORDER BY email")).all() == [
            ("ann@x.com", "Ann"),
            ("bob@x.com", "Bob"),
        ]
        assert conn.execute(text("SELECT count(*) FROM passes_master")).scalar_one() == 2
