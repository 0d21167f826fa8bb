"""loyalty-pipeline: CSV ingestion and the birthday bot for a multi-tenant loyalty platform."""

import os

# polars allocates through its own jemalloc, which by default keeps freed pages for ~10 s: a
# 1M-row upload's read left ~450 MB of freed buffers in the process for the next steps, which then
# stacked their own peaks on top. Returning pages as they are freed (read when polars is first
# imported, so it is set here, before any module imports polars) keeps the ingest's peak RSS at
# what is alive. A value set in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
