"""Reading an in-process run's result for a person: why it failed, in one line, and a birthday
run's outcome per program (from its birthday_runs rows)."""

from __future__ import annotations

from loyalty_pipeline import birthday_runs


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


def birthday_outcomes(rows: list[birthday_runs.RunRow]) -> list[tuple[str, bool, str]]:
    """One (program, ok, summary) line per program over a birthday run's days (its birthday_runs rows)."""
    by_program: dict[str, list[birthday_runs.RunRow]] = {}
    for row in rows:
        by_program.setdefault(row.slug, []).append(row)
    outcomes = []
    for slug, days in by_program.items():
        failed = [r for r in days if r.status == "failed"]
        if failed:
            outcomes.append((slug, False, f"{len(failed)} day(s) failed: {failed[0].error}"))
            continue
        now = sum(r.rewarded_by_run for r in days)
        eligible = sum(r.eligible for r in days)
        skipped = [f"{r.day}: {r.note}" for r in days if r.status == "skipped"]
        outcomes.append(
            (
                slug,
                True,
                f"{now} rewarded now, {eligible - now} already rewarded, "
                f"{sum(r.points for r in days)} points on the day(s)"
                + (f"; skipped: {'; '.join(skipped[:3])}" if skipped else ""),
            )
        )
    return outcomes
