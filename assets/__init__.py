"""Dagster assets: thin wiring over the domain functions in loyalty_pipeline."""

import warnings

from dagster import BetaWarning

import loyalty_pipeline  # noqa: F401  (first: it sets polars' allocator up before polars is imported)

# BackfillPolicy is "beta" in Dagster 1.13 but is what makes a year-long backfill one run per
# program; the warning would otherwise greet every CLI command.
warnings.filterwarnings("ignore", category=BetaWarning)
