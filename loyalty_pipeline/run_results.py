"""Reading an in-process run's result for a person: why it failed, in one line, and what an asset
reported in its materialization metadata."""

from __future__ import annotations


def innermost_cause(error):
    """The error a Dagster error info was raised from, followed to its root."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def _root_message(error) -> str:
    """The first meaningful line of the innermost cause (SQLAlchemy appends a docs link line)."""
    error = innermost_cause(error)
    lines = [line.strip() for line in error.message.strip().splitlines()]
    meaningful = [line for line in lines if line and not line.startswith("(Background on this error")]
    return meaningful[0] if meaningful else "run failed"


def failure_reason(result) -> str:
    """The first step failure's message, as short as the error allows."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error:
                return _root_message(data.error)
    return "run failed (see the Dagster UI for the logs)"


def materialization_metadata(result, asset_name: str) -> dict:
    """The plain values of `asset_name`'s materialization metadata in the run ({} if none)."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset_name:
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}
