"""Uploads in an S3 bucket, against a real S3-protocol server (moto's, started by the session on
127.0.0.1) and each real database: the sensor finds new and changed objects, runs read them, and
what cannot work (a vanished object, refused credentials, no such bucket) says so in one line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import text

from loyalty_pipeline import bucket_store
from loyalty_pipeline.config import Settings
from loyalty_pipeline.upload_store import UploadStoreError, configured_store
from tests.buckets import REGION, FlakyProxy
from tests.factories import ingest_run
from tests.test_cli import loyalty
from tests.test_ingestion_assets import per_file, step_failure, upload_row
from tests.test_upload_sensor import Sensor, statuses

KEY = "joes-pizza/march.csv"


def emails(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT email FROM users ORDER BY email")).scalars().all()


def test_an_object_is_found_ingested_found_again_when_changed_and_not_on_a_rerun(
    instance, bucket, bucket_settings, engine, program
):
    etag = bucket.put(KEY, "email\nann@x.com\n").strip('"')
    bucket.put("joes-pizza/.emptyFolderPlaceholder", "")  # what Supabase's dashboard leaves in a folder
    sensor = Sensor(instance, bucket_settings)
    assert sensor.requested() == [[KEY]], "a complete object needs no settling time"
    result = ingest_run(instance, bucket_settings, [KEY], skip_unchanged=True)
    assert result.success
    assert emails(engine) == ["ann@x.com"]
    assert upload_row(engine, KEY)["change_marker"] == f"16:{etag}"
    assert sensor.requested() == [], "the same ETag: nothing to do"

    again = ingest_run(instance, bucket_settings, [KEY], skip_unchanged=True)  # a rerun of the same request
    assert [row["status"] for row in per_file(again)] == ["unchanged"]

    bucket.put(KEY, "email\nann@x.com\nbob@x.com\n")  # a new version: a new ETag
    assert sensor.requested() == [[KEY]]
    assert ingest_run(instance, bucket_settings, [KEY], skip_unchanged=True).success
    assert emails(engine) == ["ann@x.com", "bob@x.com"]
    assert sensor.requested() == []
    assert len(sensor.cursor) < 200


def test_a_multipart_upload_in_progress_is_neither_listed_nor_read(instance, bucket, bucket_settings, engine, program):
    client = bucket.server.client()
    object_key = bucket.object_key(KEY)
    upload = client.create_multipart_upload(Bucket=bucket.name, Key=object_key)
    part = client.upload_part(
        Bucket=bucket.name, Key=object_key, UploadId=upload["UploadId"], PartNumber=1, Body=b"email\nann@x.com\n"
    )
    sensor = Sensor(instance, bucket_settings)
    assert sensor.requested() == []
    assert statuses(engine) == {}
    client.complete_multipart_upload(
        Bucket=bucket.name,
        Key=object_key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert sensor.requested() == [[KEY]], "complete: taken on the next tick"
    assert ingest_run(instance, bucket_settings, [KEY]).success
    assert emails(engine) == ["ann@x.com"]


def test_a_deleted_object_fails_its_file_with_one_line_and_the_others_land(
    instance, bucket, bucket_settings, engine, program
):
    bucket.put("joes-pizza/a.csv", "email\nann@x.com\n")
    bucket.put("joes-pizza/b.csv", "email\nbob@x.com\n")
    assert Sensor(instance, bucket_settings).requested() == [["joes-pizza/a.csv", "joes-pizza/b.csv"]]
    bucket.delete("joes-pizza/a.csv")
    result = ingest_run(instance, bucket_settings, ["joes-pizza/a.csv", "joes-pizza/b.csv"])
    assert result.success, "one file gone does not fail the others"
    error = upload_row(engine, "joes-pizza/a.csv")["error"]
    assert error == f"joes-pizza/a.csv: object not found in {bucket.url} at {bucket.server.endpoint}"
    assert statuses(engine) == {"joes-pizza/a.csv": "failed", "joes-pizza/b.csv": "succeeded"}
    assert emails(engine) == ["bob@x.com"]


def test_refused_credentials_fail_the_sensor_and_the_run_in_one_line_and_mark_no_file_failed(
    instance, bucket, bucket_settings, engine, program
):
    bucket.put(KEY, "email\nann@x.com\n")
    sensor = Sensor(instance, bucket_settings)
    assert sensor.requested() == [[KEY]]
    bucket.server.enforce_auth(True)  # from now on the test key is unknown to the server
    try:
        result = ingest_run(instance, bucket_settings, [KEY])
        assert not result.success
        reason = step_failure(result)
        assert reason.startswith(f"{bucket.url} at {bucket.server.endpoint}: access denied")
        assert "\n" not in reason and bucket_settings.uploads_secret_access_key not in reason
        assert upload_row(engine, KEY)["status"] == "running", "not the file's fault: requested again once stale"
        with pytest.raises(UploadStoreError, match="access denied") as refused:
            sensor.tick()
        assert "\n" not in str(refused.value)
    finally:
        bucket.server.enforce_auth(False)
    assert ingest_run(instance, bucket_settings, [KEY]).success, "the same request works once the key is accepted"


def test_a_bucket_that_does_not_exist_fails_the_sensor_in_one_line(instance, bucket, settings, engine, program):
    missing = bucket.settings(settings, uploads_url="s3://no-such-loyalty-bucket/uploads")
    with pytest.raises(UploadStoreError) as failed:
        Sensor(instance, missing).tick()
    assert str(failed.value) == (
        f"s3://no-such-loyalty-bucket/uploads at {bucket.server.endpoint}: bucket 'no-such-loyalty-bucket' does not exist"
    )


def test_throttling_is_retried_and_what_retrying_cannot_fix_fails_in_one_line(bucket, monkeypatch):
    bucket_settings = bucket.settings(Settings())  # no database: the store alone
    bucket.put(KEY, "email\nann@x.com\n")
    proxy = FlakyProxy(bucket.server, failures=2)
    try:
        store = configured_store(replace(bucket_settings, uploads_endpoint_url=proxy.endpoint))
        assert [f.key for f in store.scan(None).files] == [KEY]
        assert proxy.seen == [503, 503, 200], "two throttled answers, then the listing"
        with store.local_copy(KEY) as local:
            assert local.read_text() == "email\nann@x.com\n"

        monkeypatch.setattr(bucket_store, "RETRY_ATTEMPTS", 2)
        proxy.seen.clear()
        proxy.failures = 100  # throttled for good
        store = configured_store(replace(bucket_settings, uploads_endpoint_url=proxy.endpoint))
        with pytest.raises(UploadStoreError) as failed:
            store.scan(None)
        assert proxy.seen == [503] * 2 * bucket_store.S3FS_RETRIES, "bounded: botocore's attempts, s3fs's loop"
        assert str(failed.value) == (
            f"{bucket.url} at {proxy.endpoint}: SlowDown: Please reduce your request rate. (after the retries)"
        )
    finally:
        proxy.stop()


def test_keys_outside_a_program_folder_or_with_unsafe_names_are_refused_with_the_reason(
    instance, bucket, bucket_settings, engine, program
):
    for key in (
        "readme.csv",
        "joes-pizza/2024/march.csv",
        "Bad Slug/a.csv",
        "joes-pizza/a b.csv",
        "joes-pizza/../x.csv",
    ):
        bucket.put(key, "email\nann@x.com\n")
    bucket.put("joes-pizza/notes.pdf", "not an upload")
    scan = configured_store(bucket_settings).scan(None)
    assert scan.files == []
    assert sorted(scan.problems) == [
        "'Bad Slug/a.csv': invalid program slug 'Bad Slug': use 1-64 lower-case letters, digits and inner hyphens",
        "'joes-pizza/../x.csv': in a subfolder of a program folder (uploads are <program_slug>/<file>)",
        "'joes-pizza/2024/march.csv': in a subfolder of a program folder (uploads are <program_slug>/<file>)",
        "'joes-pizza/a b.csv': invalid upload file name 'a b.csv': use letters, digits, '.', '_' or '-' (no spaces, "
        "slashes or control characters), ending in .csv, .tsv, .txt, .xlsx, .xls, .ods, .vcf",
        "'readme.csv': outside any program folder (uploads are <program_slug>/<file>)",
    ]
    assert Sensor(instance, bucket_settings).requested() == []
    assert statuses(engine) == {}


def test_the_listing_pages_after_the_last_key_seen_and_wraps_around(bucket, monkeypatch):
    bucket_settings = bucket.settings(Settings())
    monkeypatch.setattr(bucket_store, "PAGE_KEYS", 3)
    monkeypatch.setattr(bucket_store, "PAGES_PER_TICK", 2)
    keys = [f"p{n:02}/f.csv" for n in range(10)]
    for key in keys:
        bucket.put(key, "email\n")
    store = configured_store(bucket_settings)
    seen, state = [], None
    for _ in range(2):  # 10 objects, 6 a tick: a pass takes two ticks
        scan = store.scan(state)
        seen.append([f.key for f in scan.files])
        state = scan.state
        assert not scan.full and len(json.dumps(state)) < 100
    assert seen == [keys[:6], keys[6:]]
    assert state == {"after": None}, "the end of the listing: the next tick starts over"
    assert [f.key for f in store.scan(state).files] == keys[:6]
    # A folder to revisit (its files waited for their program) is listed whole besides the pages.
    revisited = store.scan({"after": keys[5]}, revisit={"p00"})
    assert [f.key for f in revisited.files] == [keys[0], *keys[6:]]


def test_loyalty_ingest_uploads_the_file_into_the_bucket_then_ingests_it(bucket, engine, program, tmp_path, cli_env):
    source = tmp_path / "incoming" / "march.csv"
    source.parent.mkdir()
    source.write_text("email,first_name\nann@x.com,Ann\n")
    env = {
        **cli_env,
        "LOYALTY_UPLOADS_URL": bucket.url,
        "AWS_ENDPOINT_URL": bucket.server.endpoint,  # the generic name: AWS_ENDPOINT_URL_S3 when both
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "loyalty-cli-key",
        "AWS_SECRET_ACCESS_KEY": "loyalty-cli-secret",
    }
    result = loyalty("ingest", str(source), "--program", "joes-pizza", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "joes-pizza/march.csv: 1 rows read, 1 accepted, 0 rejected" in result.stdout
    body = bucket.server.client().get_object(Bucket=bucket.name, Key=bucket.object_key(KEY))["Body"].read()
    assert body == source.read_bytes()
    assert not (tmp_path / "uploads").exists(), "LOYALTY_UPLOADS_URL wins over the folder"
    assert emails(engine) == ["ann@x.com"]

    missing = loyalty(
        "ingest", str(source), "--program", "joes-pizza", cwd=tmp_path, env={**env, "LOYALTY_UPLOADS_URL": "s3://nope"}
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"loyalty ingest: s3://nope at {bucket.server.endpoint}: bucket 'nope' does not exist"
    )
