"""The loaders a data team would use instead of the pipeline, as benchmarks/run.py runs them.

Both do the same cleaning and nothing more: the file's columns renamed to the pipeline's names,
every cell kept as text, the email trimmed and lower-cased, rows without an email dropped, one row
per email (the last one wins). No validation, no date or phone parsing, no passes, no issue rows.
Each target table has a unique index on email, like `users`, so the merge does comparable work.

- dlt: `write_disposition="merge"`, `primary_key="email"`, a polars frame handed over as Arrow,
  `loader_file_format="csv"` (dlt's fastest path into Postgres: the pyarrow CSV writer and COPY
  into a staging table, then its delete-insert merge).
- pandas: `read_csv` (all text), `to_sql(method=None)` into a staging table, then one
  `INSERT ... ON CONFLICT (email) DO UPDATE`, all in one transaction.

Benchmark-only dependencies: the `bench` extra of pyproject.toml.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.harness import sqlalchemy_url

# The benchmark files' headers (benchmarks/generate_csv.py, "messy") -> the pipeline's field names.
COLUMNS = {
    "Mobile": "phone_number",
    "Surname": "last_name",
    "First Name": "first_name",
    " Email ": "email",
    "DOB": "birth_date",
}
FIELDS = ["email", "first_name", "last_name", "birth_date", "phone_number"]
DLT_DATASET = "dlt_bench"
PANDAS_TABLE = "pandas_users"


def _polars_frame(path: Path):
    import polars as pl

    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=True).rename(
        lambda name: COLUMNS.get(name.lstrip("\ufeff"), name)
    )
    email = pl.col("email").str.strip_chars().str.to_lowercase()
    return (
        frame.select(FIELDS)
        .with_columns(email)
        .filter(pl.col("email").is_not_null() & (pl.col("email") != ""))
        .unique(subset="email", keep="last", maintain_order=True)
    )


def dlt_merge(path: Path, url: str, pipelines_dir: Path) -> dict:
    """One dlt run merging the file into DLT_DATASET.users; returns dlt's row count for the table."""
    import dlt
    import polars as pl
    from sqlalchemy.engine import make_url

    # dlt insists on a password; a server that trusts local connections ignores it.
    parsed = make_url(url)
    credentials = parsed.set(drivername="postgresql", password=parsed.password or "unused")
    table = _polars_frame(path).to_arrow(compat_level=pl.CompatLevel.oldest())
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        destination=dlt.destinations.postgres(credentials=credentials.render_as_string(hide_password=False)),
        dataset_name=DLT_DATASET,
        pipelines_dir=str(pipelines_dir),
        progress=None,
    )
    info = pipeline.run(
        table, table_name="users", write_disposition="merge", primary_key="email", loader_file_format="csv"
    )
    info.raise_on_failed_jobs()
    return {"rows": table.num_rows}


def dlt_prepare(conn) -> None:
    """After the first load: the unique index on email the pipeline's `users` has."""
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS dlt_users_email ON {DLT_DATASET}.users (email)")


_PANDAS_UPSERT = f"""
INSERT INTO {PANDAS_TABLE} ({", ".join(FIELDS)})
SELECT {", ".join(FIELDS)} FROM pandas_stage
ON CONFLICT (email) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    birth_date = EXCLUDED.birth_date, phone_number = EXCLUDED.phone_number
"""


def pandas_upsert(path: Path, url: str) -> dict:
    import pandas as pd
    from sqlalchemy import create_engine

    frame = pd.read_csv(
        path, dtype=str, keep_default_na=False, encoding="utf-8-sig", encoding_errors="replace", on_bad_lines="skip"
    )
    frame = frame.rename(columns=lambda name: COLUMNS.get(name, name))[FIELDS]
    frame["email"] = frame["email"].str.strip().str.lower()
    frame = frame[frame["email"] != ""].drop_duplicates(subset="email", keep="last")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {PANDAS_TABLE} ({', '.join(f + ' text' for f in FIELDS)}, UNIQUE (email))"
        )
        frame.to_sql("pandas_stage", conn, if_exists="replace", index=False, method=None)
        conn.exec_driver_sql(_PANDAS_UPSERT)
        conn.exec_driver_sql("DROP TABLE pandas_stage")
    engine.dispose()
    return {"rows": len(frame)}


# --- as benchmark children (benchmarks/harness.py runs them in a fresh interpreter) ---------------


def child_dlt(task: dict) -> dict:
    started = time.perf_counter()
    result = dlt_merge(Path(task["path"]), task["db_url"], Path(task["pipelines_dir"]))
    return {"seconds": time.perf_counter() - started, **result}


def child_pandas(task: dict) -> dict:
    started = time.perf_counter()
    result = pandas_upsert(Path(task["path"]), sqlalchemy_url(task["db_url"]))
    return {"seconds": time.perf_counter() - started, **result}
