"""loyalty-pipeline: CSV ingestion and the birthday bot for a multi-tenant loyalty platform."""
