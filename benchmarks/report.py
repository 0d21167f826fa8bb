"""The results table: each case's value against its target (defined at --scale 1.0), the raw
measurements behind it, and the document benchmarks/run.py writes to results.json.
"""

from __future__ import annotations

from datetime import datetime, timezone

from benchmarks.birthday_cases import FULL_PASSES, PROGRAMS
from benchmarks.ingestion_cases import FULL_ROWS

# (case, unit, target, compare, title) in the order; a target of None is information only.
CASES = [
    ("ingest_vs_dlt", "x dlt", 1.0, "<=", "file B through Dagster / dlt merge of the same file"),
    ("ingest_vs_pandas", "x pandas", None, "<=", "file B through Dagster / pandas to_sql + upsert"),
    ("ingest_vs_fk_floor", "x floor", 2.0, "<=", "file B through Dagster / COPY of every row it writes, with FKs"),
    ("ingest_vs_floor", "x floor", None, "<=", "file B through Dagster / the same COPY without FKs"),
    ("reingest_vs_copy", "x COPY", 1.2, "<=", "same file again, nothing changed / COPY of its users"),
    ("ingest_peak_rss", "GB", 0.72, "<=", "peak RSS of the {rows}-row ingest process"),
    ("sqlite_vs_postgres", "x PG", 1.6, "<=", "file B through Dagster on SQLite / the same on Postgres"),
    ("ingest_vs_copy", "x COPY", None, "<=", "file B through Dagster / COPY of its accepted users"),
    ("seed_style_vs_ours", "x ours", None, ">=", "seed-style per-row upsert (extrapolated) / ours"),
    ("birthday_partition_sql", "s", 0.5, "<=", "one birthday partition, {passes} passes / 100 programs"),
    ("birthday_partition_rerun_sql", "s", 0.2, "<=", "rerun of that partition (nothing to do)"),
    ("birthday_backfill", "s", 45.0, "<=", "backfill 365 days x 10 programs through Dagster"),
]


def _met(value: float, target: float | None, compare: str) -> bool | None:
    if target is None:
        return None
    return value <= target if compare == "<=" else value >= target


def _seconds(runs: list) -> list:
    return [round(r["seconds"], 2) for r in runs]


def report(values: dict, scale: float, machine: dict, measurements: dict) -> dict:
    rows, passes = int(FULL_ROWS * scale), int(FULL_PASSES * scale)
    results = {}
    lines = [f"{'case':<68} {'value':>10} {'unit':<9} {'target':>7}  met", "-" * 102]
    for case, unit, target, compare, title in CASES:
        if case not in values:
            continue
        value = values[case]
        met = _met(value, target, compare)
        results[case] = {"value": round(value, 3), "unit": unit, "target": target, "compare": compare, "met": met}
        label = title.format(rows=f"{rows:,}", passes=f"{passes:,}")
        shown_target = f"{compare} {target}" if target is not None else "info"
        shown_met = {True: "yes", False: "NO", None: "-"}[met]
        lines.append(f"{label:<68} {value:>10.3f} {unit:<9} {shown_target:>7}  {shown_met}")
    print("\n".join(lines))
    info = []
    if "ingest" in measurements:
        m = measurements
        info.append(
            f"file B medians: ours {m['ingest']['seconds']:.2f} s {_seconds(m['ingest']['runs'])}, again "
            f"{m['reingest']['seconds']:.2f} s {_seconds(m['reingest']['runs'])}, dlt {m['dlt']['seconds']:.2f} s "
            f"{_seconds(m['dlt']['runs'])}, pandas {m['pandas']['seconds']:.2f} s {_seconds(m['pandas']['runs'])}, "
            f"ours on SQLite {m['sqlite']['seconds']:.2f} s {_seconds(m['sqlite']['runs'])}"
        )
        info.append(
            f"floor {m['floor']['best']:.2f} s, with foreign keys {m['floor']['with_foreign_keys']['best']:.2f} s "
            f"({m['floor']['rows']}), COPY of the accepted users "
            f"{m['copy_baseline']['best']:.2f} s ({m['copy_baseline']['rows']:,} rows), seed-style "
            f"{m['seed_style']['extrapolated_seconds']:.0f} s (from {m['seed_style']['rows']:,} rows), first ingest "
            f"into empty users {m['ingest_first_into_empty']['seconds']:.2f} s"
        )
        info.append(
            "peak RSS GB: "
            + ", ".join(f"{k} {m[k]['peak_rss_gb']}" for k in ("ingest", "reingest", "sqlite", "dlt", "pandas"))
        )
        info.append(f"fingerprints: {m['fingerprints_check']}")
    if "birthday_partition" in measurements:
        m = measurements
        info.append(
            f"birthday partitions {[f'{s:.3f}' for s in m['birthday_partition']['seconds']]} s, reruns "
            f"{[f'{s:.3f}' for s in m['birthday_partition']['rerun_seconds']]} s; one day x {PROGRAMS} programs "
            f"{m['birthday_one_day_all_programs']['seconds']:.2f} s; backfill runs "
            f"{[r['seconds'] for r in m['birthday_backfill']['runs']]} s"
        )
    info.append(
        f"load average at start {machine.get('load_average_at_start')}, at end {machine.get('load_average_at_end')}"
    )
    for line in info:
        print(line)
    if scale != 1.0:
        print(
            f"note: the targets are defined at --scale 1.0; at {scale} a run's fixed Dagster cost weighs "
            "more against a smaller COPY, so the ratios read worse than at full scale"
        )
    document = {
        **results,
        "scale": scale,
        "targets_defined_at_scale": 1.0,
        "machine": machine,
        "measurements": measurements,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return document
