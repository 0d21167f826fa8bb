"""The code location loads: a broken definition fails here in seconds, not in the e2e test."""

from __future__ import annotations

from dagster import Definitions

from loyalty_pipeline.definitions import defs


def test_defs_load_and_every_job_schedule_and_sensor_resolves():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")} >= {
        "ingest_upload_job",
        "birthday_job",
    }
    for job in repository.get_all_jobs():
        assert defs.resolve_job_def(job.name).name == job.name
    for schedule in repository.schedule_defs:
        assert defs.resolve_schedule_def(schedule.name).job_name in {job.name for job in repository.get_all_jobs()}
    for sensor in repository.sensor_defs:
        assert defs.resolve_sensor_def(sensor.name).name == sensor.name
    resources = set(defs.resources)
    for definition in [*repository.sensor_defs, *repository.schedule_defs]:
        missing = definition.required_resource_keys - resources
        assert not missing, f"{definition.name} needs resources {missing} that defs does not provide"
    assert {s.name for s in repository.sensor_defs} >= {
        "upload_sensor",
        "birthday_catchup_sensor",
        "birthday_late_sensor",
        "run_failure_alert_sensor",
    }
    assert {s.name for s in repository.schedule_defs} >= {"birthday_schedule"}
