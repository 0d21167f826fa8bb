"""Sensors and schedules: when the assets run."""
