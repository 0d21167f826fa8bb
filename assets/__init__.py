"""Dagster assets: thin wiring over the domain functions in loyalty_pipeline."""
