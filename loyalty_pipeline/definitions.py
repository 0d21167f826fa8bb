"""The composition root: every asset, check, job, sensor, schedule and resource, configured
from the environment. `dagster dev -w workspace.yaml` and the `loyalty` CLI both load `defs`."""

from __future__ import annotations

from dagster import Definitions, EnvVar, in_process_executor

from assets.birthdays import birthday_job, birthday_log, birthday_notifications
from assets.ingestion import ingest_upload_job, ingest_uploads
from assets.resources import AlertWebhook, Clock, LoyaltyDatabase, LoyaltySettings, NotificationSender
from loyalty_pipeline.config import Settings
from schedules.alerts import run_failure_alert_sensor
from schedules.catchup import birthday_catchup_sensor
from schedules.late_alerts import birthday_late_sensor
from schedules.schedules import birthday_schedule
from schedules.sensors import upload_sensor


def build_resources(settings: Settings | None = None, *, frozen_now: str | None = None) -> dict:
    """The resources, from the environment or from explicit `settings` (tests, benchmarks).

    From the environment, a value whose variable is set is an EnvVar: the UI shows the variable's
    name instead of the value (webhook URLs and database passwords stay out of the run config)."""
    from_env = settings is None
    settings = settings or Settings.from_env()

    def value(field_name: str):
        variable = Settings.variable(field_name)
        if from_env and variable.is_set():
            return EnvVar(variable.source())
        raw = getattr(settings, field_name)
        return None if raw is None else str(raw)

    return {
        "database": LoyaltyDatabase(url=value("database_url")),
        "settings": LoyaltySettings(
            uploads_dir=value("uploads_dir"),
            uploads_url=value("uploads_url"),
            uploads_endpoint_url=value("uploads_endpoint_url"),
            uploads_region=value("uploads_region"),
            uploads_access_key_id=value("uploads_access_key_id"),
            uploads_secret_access_key=value("uploads_secret_access_key"),
            reports_dir=value("reports_dir"),
            timezone=value("timezone"),
            max_reject_rate=settings.max_reject_rate,  # a number: EnvVar only carries strings
            catchup_days=settings.catchup_days,
            late_alert_hours=settings.late_alert_hours,
        ),
        "clock": Clock(frozen_now=frozen_now or value("frozen_now")),
        "notification_sender": NotificationSender(
            kind=value("notification_sender"),
            log_path=value("notification_log"),
            webhook_url=value("webhook_url"),
        ),
        "alert_webhook": AlertWebhook(url=value("alert_webhook_url"), ui_url=value("ui_url")),
    }


defs = Definitions(
    assets=[ingest_uploads, birthday_log, birthday_notifications],
    jobs=[ingest_upload_job, birthday_job],
    sensors=[upload_sensor, birthday_catchup_sensor, birthday_late_sensor, run_failure_alert_sensor],
    schedules=[birthday_schedule],
    resources=build_resources(),
    # Runs are short and database-bound: one process per run instead of one per step (~2 s vs ~5 s a launch).
    executor=in_process_executor,
)
