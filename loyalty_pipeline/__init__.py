"""loyalty-pipeline: CSV ingestion and the birthday bot for a multi-tenant loyalty platform."""

from loyalty_pipeline.config import return_polars_memory_at_once

return_polars_memory_at_once()
