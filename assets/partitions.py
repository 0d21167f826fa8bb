"""Partition definitions: one partition per upload, and one per day for the birthday bot (the
programs of a day are a batch inside the run, chosen by run config: see assets/birthdays.py)."""

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition

from loyalty_pipeline import config

uploads_partitions = DynamicPartitionsDefinition(name="uploads")
# The `programs` dynamic partitions of the former (day x program) shape; the catch-up sensor deletes
# what is left of them on existing instances.
OBSOLETE_PROGRAMS_PARTITIONS = "programs"

# Partitions are defined when the code location loads, so these two are read from the environment then.
BIRTHDAY_START_DATE = config.BIRTHDAY_START_DATE.read()
DEFAULT_TIMEZONE = config.TIMEZONE.read()
EARLIEST_ZONE_HOURS = 14  # Pacific/Kiritimati, UTC+14: the first place where a day begins


def _end_offset(timezone: str) -> int:
    """Today's partition must exist on the day itself (offset 1), and so must the local date of a
    program far east of the partition time zone, which can be up to two days ahead."""
    offset = datetime.now(ZoneInfo(timezone)).utcoffset()
    hours_ahead = EARLIEST_ZONE_HOURS - offset.total_seconds() / 3600
    return 1 + math.ceil(hours_ahead / 24)


birthday_partitions = DailyPartitionsDefinition(
    start_date=BIRTHDAY_START_DATE, timezone=DEFAULT_TIMEZONE, end_offset=_end_offset(DEFAULT_TIMEZONE)
)
