"""The Dagster instance the CLI and the demo run on: the one in DAGSTER_HOME, created with an
embedded SQLite configuration on first use, so their runs show in the UI like scheduled ones."""

from __future__ import annotations

import os

from loyalty_pipeline.config import dagster_home

_DEFAULT_INSTANCE_YAML = """\
# Embedded instance for `loyalty` and `dagster dev`: SQLite storage under this folder.
# deploy/dagster.yaml is the PostgreSQL-backed production instance.
telemetry:
  enabled: false
nux:
  enabled: false
"""


def dagster_instance():
    from dagster import DagsterInstance

    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DEFAULT_INSTANCE_YAML)
    return DagsterInstance.get()
