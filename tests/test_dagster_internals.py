"""Every private Dagster name the project relies on (loyalty_pipeline.dagster_internals) is still
where it was and means the same: after an upgrade, this is the test that says what moved."""

from __future__ import annotations

import importlib
import inspect

from dagster import instance_for_test

from loyalty_pipeline import dagster_internals as internals


def test_run_tag_names_are_the_ones_dagster_writes():
    tags = importlib.import_module(internals.PRIVATE_TAGS_MODULE)
    assert tags.PARTITION_NAME_TAG == internals.PARTITION_NAME_TAG
    assert tags.ASSET_PARTITION_RANGE_START_TAG == internals.ASSET_PARTITION_RANGE_START_TAG
    assert tags.ASSET_PARTITION_RANGE_END_TAG == internals.ASSET_PARTITION_RANGE_END_TAG
    assert tags.BACKFILL_ID_TAG == internals.BACKFILL_ID_TAG


def test_retry_delay_function_is_where_the_reliability_tests_wrap_it():
    function = getattr(internals.retry_delay_module(), internals.RETRY_DELAY_FUNCTION)
    assert list(inspect.signature(function).parameters) == ["attempt_num", "backoff", "jitter", "base_delay"]


def test_in_memory_event_log_storage_loads_by_name():
    with instance_for_test(overrides={"event_log_storage": internals.IN_MEMORY_EVENT_LOG}) as instance:
        assert type(instance.event_log_storage).__name__ == internals.IN_MEMORY_EVENT_LOG["class"]
