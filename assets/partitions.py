"""Partition definitions: days, for the birthday bot (the programs of a day are a batch inside the
run, chosen by run config: see assets/birthdays.py) and for ingestion (a day of arrival; the files of
a run are its config: see assets/ingestion.py). Neither grows with programs or files."""

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import DailyPartitionsDefinition

from loyalty_pipeline import config

# Dynamic partitions of former shapes, deleted on existing instances a chunk per tick: `programs`
# (day x program birthdays) by the catch-up sensor, `uploads` (one partition per file) by the upload sensor.
OBSOLETE_PROGRAMS_PARTITIONS = "programs"
OBSOLETE_UPLOADS_PARTITIONS = "uploads"

# Partitions are defined when the code location loads, so these two are read from the environment then.
BIRTHDAY_START_DATE = config.BIRTHDAY_START_DATE.read()
UPLOADS_START_DATE = config.UPLOADS_START_DATE.read()
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

# Days of arrival of uploads; today must exist as soon as it starts in the partition time zone.
upload_days = DailyPartitionsDefinition(start_date=UPLOADS_START_DATE, timezone=DEFAULT_TIMEZONE, end_offset=1)


def arrival_day(moment: datetime) -> str:
    """The ingestion partition a file arriving at `moment` belongs to."""
    return moment.astimezone(ZoneInfo(upload_days.timezone)).date().isoformat()
