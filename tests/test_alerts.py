"""The run-failure alert: a real failing run on a test instance, the sensor invoked on it, and the
JSON it POSTs checked as received by a local HTTP server."""

from __future__ import annotations

import pytest
from dagster import Definitions, build_run_status_sensor_context, in_process_executor, instance_for_test

from assets.birthdays import batch_config
from assets.ingestion import batch_config as ingestion_config
from assets.ingestion import ingest_upload_job, ingest_uploads
from assets.resources import Clock
from loyalty_pipeline.alerts import AlertDeliveryError, AlertSender
from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import make_engine, migrate
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.programs import save_program
from schedules.alerts import _program, build_alert, run_failure_alert_sensor
from tests.factories import birthday_definitions, write_csv

# build_run_status_sensor_context(repository_def=...) is marked beta in Dagster 1.13.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A real failed ingestion run (once for the module): the CSV sits in the folder of a program
    that does not exist."""
    tmp_path = tmp_path_factory.mktemp("alerts")
    db_url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    engine.dispose()
    uploads = tmp_path / "uploads"
    write_csv(uploads / "ghost-program" / "customers.csv", "email\nann@example.com\n")
    key = "ghost-program/customers.csv"
    with instance_for_test() as instance:
        defs = Definitions(
            assets=[ingest_uploads],
            jobs=[ingest_upload_job],
            sensors=[run_failure_alert_sensor],
            resources=build_resources(Settings(database_url=db_url, uploads_dir=uploads)),
            executor=in_process_executor,
        )
        result = defs.resolve_job_def("ingest_upload_job").execute_in_process(
            instance=instance,
            partition_key="2026-11-26",
            raise_on_error=False,
            tags={"program": "ghost-program"},
            run_config=ingestion_config([key]),
        )
        assert not result.success
        yield build_run_status_sensor_context(
            sensor_name=run_failure_alert_sensor.name,
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            repository_def=defs.get_repository_def(),
        )


def with_settings(context, settings: Settings):
    """The sensor's context for the same failed run, with the resources built from `settings`."""
    return build_run_status_sensor_context(
        sensor_name=context.sensor_name,
        dagster_event=context.dagster_event,
        dagster_instance=context.instance,
        dagster_run=context.dagster_run,
        repository_def=context.repository_def,
        resources=build_resources(settings),
    )


def test_failed_run_posts_json_alert(failed_run, http_receiver):
    receiver = http_receiver(200)
    settings = Settings(alert_webhook_url=receiver.url, ui_url="https://dagster.example.com/")
    run_failure_alert_sensor(with_settings(failed_run, settings))
    assert len(receiver.requests) == 1, "exactly one alert per failed run"
    request = receiver.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    alert = request.json()
    run_id = failed_run.dagster_run.run_id
    assert alert["event"] == "run_failure"
    assert alert["run_id"] == run_id
    assert alert["job"] == "ingest_upload_job"
    assert alert["status"] == "FAILURE"
    assert alert["partition"] == "2026-11-26"
    assert alert["program"] == "ghost-program"
    assert alert["assets"] == ["passes", "raw_upload", "users", "validated_users"]
    assert alert["failed_assets"] == ["passes", "raw_upload", "users", "validated_users"], "the step's assets"
    assert "'ghost-program' does not exist" in alert["error"], alert["error"]
    assert "\n" not in alert["error"] and len(alert["error"]) <= 500, "a one-line summary"
    assert alert["errors"] == [{"step": "ingest_uploads", "error": alert["error"]}]
    assert alert["run_url"] == f"https://dagster.example.com/runs/{run_id}", "trailing slash of LOYALTY_UI_URL dropped"
    assert alert["failed_at"]
    assert "raw_upload" in alert["text"] and alert["run_url"] in alert["text"], "Slack-style text line"


def test_ui_url_defaults_to_local_dagster(failed_run):
    alert = build_alert(failed_run, Settings().ui_url)
    assert alert["run_url"] == f"http://localhost:3000/runs/{failed_run.dagster_run.run_id}"


def test_no_webhook_configured_sends_nothing(failed_run, http_receiver):
    receiver = http_receiver(200)
    # Every other URL the pipeline knows is the receiver's: only the alert webhook is missing.
    settings = Settings(
        alert_webhook_url=None, notification_sender="webhook", webhook_url=receiver.url, ui_url=receiver.url
    )
    assert run_failure_alert_sensor(with_settings(failed_run, settings)) is None
    assert receiver.requests == []


def test_webhook_5xx_is_retried_then_delivered(failed_run, http_receiver):
    receiver = http_receiver(503, 200)
    run_failure_alert_sensor(with_settings(failed_run, Settings(alert_webhook_url=receiver.url)))
    assert len(receiver.requests) == 2
    assert receiver.requests[0].json() == receiver.requests[1].json()
    assert receiver.requests[1].headers["Idempotency-Key"] == f"run-failure:{failed_run.dagster_run.run_id}"


@pytest.mark.parametrize(
    "tags, partition, program",
    [
        ({"program": "joes-pizza"}, "2026-11-26|joes-pizza", "joes-pizza"),
        ({}, "joes-pizza/customers.csv", "joes-pizza"),
        ({}, "2026-11-26|city-events", "city-events"),
        ({}, "2026-11-01|city-events...2026-11-25|city-events", "city-events"),
        ({}, None, None),
    ],
)
def test_program_from_tag_or_partition(tags, partition, program):
    assert _program(tags, partition) == program


def test_rejected_alert_fails_the_tick_with_a_reason(http_receiver):
    receiver = http_receiver(400)
    with pytest.raises(AlertDeliveryError, match="HTTP 400"):
        AlertSender(receiver.url).send({"run_id": "r1"})
    assert len(receiver.requests) == 1, "a 4xx is not retried"


def test_unreachable_webhook_fails_the_tick_with_a_reason(http_receiver):
    receiver = http_receiver(200)
    receiver.stop()
    with pytest.raises(AlertDeliveryError, match="not delivered"):
        AlertSender(receiver.url, timeout_seconds=1, attempts=2).send({"run_id": "r1"})


@pytest.mark.parametrize(
    "programs, alerted",
    [
        (["broken"], False),  # its failure is recorded: birthday_late_sensor alerts it per (program, day)
        (["broken", "ghost"], True),  # a program that does not exist has no row to alert from
    ],
)
def test_a_birthday_run_is_alerted_once_per_failure(db_url, tmp_path, http_receiver, programs, alerted):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        save_program(conn, "broken", "Broken", birthday_bot_enabled=True, birthday_message="")
    engine.dispose()
    receiver = http_receiver(200)
    settings = Settings(database_url=db_url, alert_webhook_url=receiver.url)
    resources = {**build_resources(settings), "clock": Clock(frozen_now="2026-11-26T10:00:00+00:00")}
    with instance_for_test() as instance:
        defs = birthday_definitions(resources, sensors=[run_failure_alert_sensor])
        result = defs.resolve_job_def("birthday_job").execute_in_process(
            instance=instance, partition_key="2026-11-26", run_config=batch_config(programs), raise_on_error=False
        )
        assert not result.success
        context = build_run_status_sensor_context(
            sensor_name=run_failure_alert_sensor.name,
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            repository_def=defs.get_repository_def(),
            resources=resources,
        )
        run_failure_alert_sensor(context)
    assert len(receiver.requests) == (1 if alerted else 0)
    if alerted:
        assert "'ghost' does not exist" in receiver.requests[0].json()["error"]
