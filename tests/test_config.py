"""One source of configuration: each variable is defined once in loyalty_pipeline.config, the
README documents exactly those, and the resources are built from them."""

from __future__ import annotations

import re
from pathlib import Path

from dagster import EnvVar

from loyalty_pipeline import config
from loyalty_pipeline.config import Settings
from loyalty_pipeline.definitions import build_resources

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
