"""Dynamic partitions of former asset shapes, deleted on existing instances a chunk per tick
(deleting one is two queries in the daemon, so a large set is spread over ticks)."""

from dagster import DeleteDynamicPartitionsRequest, SensorEvaluationContext

RETIRE_PER_TICK = 1000


def retire(context: SensorEvaluationContext, name: str) -> list[DeleteDynamicPartitionsRequest]:
    left = context.instance.get_dynamic_partitions(name)
    if not left:
        return []
    context.log.info(f"deleting {min(len(left), RETIRE_PER_TICK)} of {len(left)} obsolete {name!r} partitions")
    return [DeleteDynamicPartitionsRequest(name, list(left[:RETIRE_PER_TICK]))]
