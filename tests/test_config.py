"""One source of configuration: each variable is defined once in loyalty_pipeline.config, the
README documents exactly those, and the resources are built from them."""

from __future__ import annotations

import re
from pathlib import Path

from dagster import EnvVar

from loyalty_pipeline import config
from loyalty_pipeline.config import Settings
from loyalty_pipeline.definitions import build_resources
from loyalty_pipeline.upload_store import configured_store

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_variable_table_is_the_one_generated_from_the_definitions():
    block = re.search(r"<!-- variables:[^\n]*-->\n(.*?)<!-- /variables -->", README.read_text(), re.S)
    assert block, "README.md lost its <!-- variables --> block"
    assert block.group(1).strip() == config.markdown_table(), "run `python -m loyalty_pipeline.config`"


def test_every_variable_read_in_the_code_is_defined_once():
    names = [variable.name for variable in config.VARIABLES]
    assert len(names) == len(set(names))
    root = Path(__file__).resolve().parents[1]
    sources = [p for folder in ("loyalty_pipeline", "assets", "schedules") for p in (root / folder).rglob("*.py")]
    for path in sources:
        if path.name == "config.py":
            continue
        text = path.read_text()
        assert "os.environ.get(" not in text and "getenv(" not in text, f"{path.name} reads the environment itself"
        for name in re.findall(r'"(LOYALTY_[A-Z_]+)"', text):
            assert name in names, f"{path.name} uses {name}, which loyalty_pipeline.config does not define"


def test_settings_from_env_take_each_variable_and_default_the_rest():
    settings = Settings.from_env(
        {"LOYALTY_REPORTS_DIR": "/srv/reports", "LOYALTY_MAX_REJECT_RATE": "0.5", "LOYALTY_TIMEZONE": ""}
    )
    assert settings.reports_dir == Path("/srv/reports")
    assert settings.max_reject_rate == 0.5
    assert settings.timezone == "UTC", "an empty variable counts as unset"
    assert settings.uploads_dir == Path(".loyalty/uploads")
    assert settings == Settings(reports_dir=Path("/srv/reports"), max_reject_rate=0.5)


def test_resources_from_the_environment_show_the_variable_not_the_secret(monkeypatch):
    for variable in config.VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    monkeypatch.setenv("LOYALTY_ALERT_WEBHOOK_URL", "https://hooks.example.com/secret-token")
    monkeypatch.setenv("LOYALTY_WEBHOOK_URL", "https://notify.example.com/secret-token")
    resources = build_resources()
    assert resources["alert_webhook"].url == EnvVar("LOYALTY_ALERT_WEBHOOK_URL")
    assert resources["notification_sender"].webhook_url == EnvVar("LOYALTY_WEBHOOK_URL")
    assert resources["settings"].reports_dir == config.REPORTS_DIR.default, "unset: the one default"
    assert resources["alert_webhook"].ui_url == config.UI_URL.default


def test_the_bucket_connection_comes_from_the_aws_variables_as_env_vars(monkeypatch):
    for variable in config.VARIABLES:
        for name in (variable.name, *variable.also):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOYALTY_UPLOADS_URL", "s3://shop-files/uploads")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.supabase.co/storage/v1/s3")  # the generic name
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    settings = build_resources()["settings"]
    assert settings.uploads_url == EnvVar("LOYALTY_UPLOADS_URL")
    assert settings.uploads_endpoint_url == EnvVar("AWS_ENDPOINT_URL")
    assert settings.uploads_region == EnvVar("AWS_DEFAULT_REGION")
    assert settings.uploads_secret_access_key == EnvVar("AWS_SECRET_ACCESS_KEY"), "never the secret itself"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://minio.internal:9000")  # the S3-specific name wins
    assert Settings.from_env().uploads_endpoint_url == "https://minio.internal:9000"
    store = configured_store(Settings.from_env())
    assert store.describe() == "s3://shop-files/uploads at https://minio.internal:9000", "no credentials in it"
