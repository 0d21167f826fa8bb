"""loyalty-pipeline: CSV ingestion and the birthday bot for a multi-tenant loyalty platform."""

import os

# polars allocates through its own jemalloc, which by default keeps freed pages for 0.5-1 s: a
# 1M-row upload's read left ~450 MB of freed buffers in the process for the next steps, which then
# stacked their own peaks on top. Returning pages as they are freed keeps the ingest's peak RSS at
# what is alive. jemalloc reads this when polars is first imported, so it is set here, before any
# module imports polars; and it is appended, because polars writes its own defaults into the
# environment (inherited by every process a polars-importing process starts: a code server's run
# workers, a benchmark's children), and the last value of an option wins.
_FREE_PAGES_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"
_conf = os.environ.get("_RJEM_MALLOC_CONF", "")
if not _conf.endswith(_FREE_PAGES_AT_ONCE):
    os.environ["_RJEM_MALLOC_CONF"] = f"{_conf},{_FREE_PAGES_AT_ONCE}" if _conf else _FREE_PAGES_AT_ONCE
