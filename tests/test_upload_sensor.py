"""The upload sensor against each real database: what it has handled is the `uploads` table, so
its cursor stays small and a file is requested once per version, in batched runs."""

import json
import os
import time
from pathlib import Path

import pytest
from dagster import build_sensor_context
from sqlalchemy import text

from loyalty_pipeline import upload_store, uploads
from loyalty_pipeline.definitions import build_resources
from schedules.sensors import upload_sensor
from tests.factories import INGEST_NOW, ingest_run, make_program, write_csv


def _settle(path: Path, seconds_ago: float = 60) -> Path:
    past = time.time() - seconds_ago
    os.utime(path, (past, past))
    return path


def put(settings, key: str, content: str = "email\na@x.com\n", seconds_ago: float = 60) -> Path:
    return _settle(write_csv(settings.uploads_dir / key, content), seconds_ago)


class Sensor:
    """Ticks upload_sensor as the daemon does, carrying the cursor from tick to tick."""

    def __init__(self, instance, settings, now: str = INGEST_NOW):
        self.instance, self.settings, self.now, self.cursor = instance, settings, now, None

    def tick(self):
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=build_resources(self.settings, frozen_now=self.now),
        )
        result = upload_sensor(context)
        self.cursor = context.cursor
        return result

    def requested(self) -> list[list[str]]:
        """The files of each run the next tick requests."""
        return [r.run_config["ops"]["ingest_uploads"]["config"]["files"] for r in self.tick().run_requests]


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT key, status FROM uploads")).all())


def test_new_files_become_one_batched_run_and_queued_rows(instance, settings, engine, program):
    put(settings, "joes-pizza/a.csv")
    put(settings, "joes-pizza/b.csv")
    make_program(engine, "city-events")
    put(settings, "city-events/c.csv")
    write_csv(settings.uploads_dir / "joes-pizza" / "still-writing.csv", "email\n")  # mtime is now
    write_csv(settings.uploads_dir / "joes-pizza" / "notes.pdf", "ignored")
    write_csv(settings.uploads_dir / "Bad Slug" / "x.csv", "email\n")
    sensor = Sensor(instance, settings)

    result = sensor.tick()
    [request] = result.run_requests
    assert request.partition_key == "2026-11-26"  # today's arrival partition
    assert request.run_config["ops"]["ingest_uploads"]["config"] == {
        "files": ["city-events/c.csv", "joes-pizza/a.csv", "joes-pizza/b.csv"],
        "skip_unchanged": True,
    }
    assert statuses(engine) == {k: "queued" for k in ("city-events/c.csv", "joes-pizza/a.csv", "joes-pizza/b.csv")}
    assert sensor.requested() == []  # queued: not requested again

    _settle(settings.uploads_dir / "joes-pizza" / "still-writing.csv")
    assert sensor.requested() == [["joes-pizza/still-writing.csv"]], "a file that settled is taken next tick"


def test_a_changed_file_is_requested_again_and_a_touched_one_is_not(instance, settings, engine, program):
    path = put(settings, "joes-pizza/a.csv")
    sensor = Sensor(instance, settings)
    assert sensor.requested() == [["joes-pizza/a.csv"]]
    assert ingest_run(instance, settings, ["joes-pizza/a.csv"]).success
    assert sensor.requested() == []

    copy = write_csv(path.with_name("a.csv.tmp"), path.read_text())
    os.replace(_settle(copy, 30), path)  # the same content uploaded again: hashed once, not ingested
    assert sensor.requested() == []
    with engine.connect() as conn:
        marker = conn.execute(text("SELECT change_marker FROM uploads")).scalar_one()
    assert marker.endswith(str(path.stat().st_mtime_ns))

    put(settings, "joes-pizza/a.csv", "email\nb@x.com\n", seconds_ago=20)  # a new version
    [run] = sensor.tick().run_requests
    assert run.run_config["ops"]["ingest_uploads"]["config"]["files"] == ["joes-pizza/a.csv"]
    assert statuses(engine) == {"joes-pizza/a.csv": "queued"}


def test_the_cursor_does_not_grow_with_files(instance, settings, engine, program):
    for n in range(300):
        put(settings, f"joes-pizza/file-{n:04}.csv")
    sensor = Sensor(instance, settings)
    assert sum(len(files) for files in sensor.requested()) == 300
    assert len(sensor.cursor) < 200
    assert json.loads(sensor.cursor)["revisit"] == []


def test_a_file_waits_for_its_program_then_is_taken(instance, settings, engine):
    put(settings, "not-yet/a.csv")
    sensor = Sensor(instance, settings)
    assert sensor.requested() == []
    assert statuses(engine) == {}
    make_program(engine, "not-yet")
    assert sensor.requested() == [["not-yet/a.csv"]]  # its folder did not change: it was kept to revisit


def test_a_file_rewritten_in_place_is_found_by_the_sweep(instance, settings, engine, program):
    path = put(settings, "joes-pizza/a.csv")
    sensor = Sensor(instance, settings)
    assert sensor.requested() == [["joes-pizza/a.csv"]]
    assert ingest_run(instance, settings, ["joes-pizza/a.csv"]).success
    past = os.stat(path.parent).st_mtime_ns
    with path.open("w") as handle:  # in place: the folder's mtime stays
        handle.write("email\nnew@x.com\n")
    _settle(path, 30)
    os.utime(path.parent, ns=(past, past))
    found = [sensor.requested() for _ in range(upload_store.SWEEP_TICKS)]
    assert sum(found, []) == [["joes-pizza/a.csv"]]


def test_a_request_whose_run_was_lost_is_requested_again(instance, settings, engine, program):
    put(settings, "joes-pizza/a.csv")
    sensor = Sensor(instance, settings)
    [first] = sensor.tick().run_requests
    sensor.now = "2026-11-26T10:30:00+00:00"
    assert sensor.requested() == []
    sensor.now = "2026-11-26T11:01:00+00:00"  # over uploads.STALE_AFTER: its run never recorded anything
    [again] = sensor.tick().run_requests
    assert again.run_config == first.run_config and again.run_key == first.run_key, "same version, same run key"


def test_bursts_are_packed_into_bounded_runs_and_a_large_file_runs_alone(
    instance, settings, engine, program, monkeypatch
):
    monkeypatch.setattr(uploads, "MAX_FILES_PER_RUN", 4)
    monkeypatch.setattr(uploads, "RUN_ALONE_BYTES", 1000)
    for n in range(9):
        put(settings, f"joes-pizza/f{n}.csv")
    put(settings, "joes-pizza/big.csv", "email\n" + "".join(f"u{n}@x.com\n" for n in range(200)))
    batches = Sensor(instance, settings).requested()
    assert batches == [
        ["joes-pizza/big.csv"],
        ["joes-pizza/f0.csv", "joes-pizza/f1.csv", "joes-pizza/f2.csv", "joes-pizza/f3.csv"],
        ["joes-pizza/f4.csv", "joes-pizza/f5.csv", "joes-pizza/f6.csv", "joes-pizza/f7.csv"],
        ["joes-pizza/f8.csv"],
    ]


@pytest.mark.parametrize("name", ["a.csv", "b.tsv", "c.txt", "d.xlsx", "e.XLSX", "f.xls"])
def test_the_sensor_takes_every_accepted_file_kind(instance, settings, engine, program, name):
    put(settings, f"joes-pizza/{name}")
    put(settings, "joes-pizza/g.pdf")
    put(settings, "joes-pizza/.h.csv.part")
    assert Sensor(instance, settings).requested() == [[f"joes-pizza/{name}"]]


def test_the_obsolete_uploads_partitions_are_retired_in_chunks(instance, settings, engine, program, monkeypatch):
    from schedules import obsolete_partitions

    monkeypatch.setattr(obsolete_partitions, "RETIRE_PER_TICK", 2)
    instance.add_dynamic_partitions("uploads", ["joes-pizza/a.csv", "joes-pizza/b.csv", "joes-pizza/c.csv"])
    sensor = Sensor(instance, settings)
    [first] = sensor.tick().dynamic_partitions_requests
    assert first.partitions_def_name == "uploads" and len(first.partition_keys) == 2


def test_a_burst_larger_than_a_tick_takes_is_finished_by_the_next_ticks(
    instance, settings, engine, program, monkeypatch
):
    monkeypatch.setattr(uploads, "MAX_REQUESTS_PER_TICK", 3)
    for n in range(7):
        put(settings, f"joes-pizza/f{n}.csv")
    sensor = Sensor(instance, settings)
    taken = [sum(len(files) for files in sensor.requested()) for _ in range(4)]
    assert taken == [3, 3, 1, 0]
    assert set(statuses(engine).values()) == {"queued"} and len(statuses(engine)) == 7


def test_a_first_look_at_every_folder_is_spread_over_ticks(tmp_path, monkeypatch):
    """Every folder is listed once over the first ticks (a bounded number per tick), and a file
    written during that pass is found as soon as it ends."""
    monkeypatch.setattr(upload_store, "FULL_PASS_FOLDERS", 2)
    monkeypatch.setattr(upload_store, "SWEEP_TICKS", 1000)  # no sweep slice in the way
    root = tmp_path / "uploads"
    for n in range(5):
        _settle(_settle(write_csv(root / f"shop-{n}" / "a.csv", "email\n")).parent)  # folders written a minute ago
    store = upload_store.FolderStore(root)
    state, listed = None, []
    for _ in range(3):
        scan = store.scan(state)
        listed.append(sorted(f.key for f in scan.files))
        state = scan.state
    assert listed == [
        ["shop-0/a.csv", "shop-1/a.csv"],
        ["shop-2/a.csv", "shop-3/a.csv"],
        ["shop-4/a.csv"],
    ]
    assert scan.full and len(json.dumps(state)) < 100
    write_csv(root / "shop-0" / "b.csv", "email\n")
    assert [f.key for f in store.scan(state).files] == ["shop-0/a.csv", "shop-0/b.csv"]
