"""The few things this project needs from Dagster that its public API does not export, each named
once with the reason. tests/test_dagster_internals.py fails loudly when a Dagster upgrade moves or
renames one, so an upgrade breaks there first and not somewhere obscure."""

from __future__ import annotations

import importlib
from types import ModuleType

# Run tags. The names are documented (they are how a run records its partition, its partition
# range - the one run a BackfillPolicy.single_run() backfill makes - and its backfill),
# but `dagster` exports the constants only from the private dagster._core.storage.tags. Launching
# a ranged run in process has no other API than these two tags.
PRIVATE_TAGS_MODULE = "dagster._core.storage.tags"
PARTITION_NAME_TAG = "dagster/partition"
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_ID_TAG = "dagster/backfill"

# Tests only. RetryPolicy has no public hook to learn when a retry is scheduled nor to shorten its
# delays; the reliability tests wrap the module-level function that computes every retry's delay.
RETRY_DELAY_MODULE = "dagster._core.definitions.policy"
RETRY_DELAY_FUNCTION = "calculate_delay"

# Tests only. The in-memory event log storage for test instances (instance_for_test overrides take
# the storage by module and class name); a 30-day run logs ~150 events at ~20 ms each in SQLite.
IN_MEMORY_EVENT_LOG = {"module": "dagster._core.storage.event_log", "class": "InMemoryEventLogStorage"}


def retry_delay_module() -> ModuleType:
    """The module whose RETRY_DELAY_FUNCTION tests replace (monkeypatch.setattr(module, name, ...))."""
    return importlib.import_module(RETRY_DELAY_MODULE)
