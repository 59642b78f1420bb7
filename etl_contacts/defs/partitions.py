"""Daily partitions in the configured time zone: partition D means contacts created or seen on D."""

from __future__ import annotations

import dagster as dg

from etl_contacts.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(), timezone=settings.timezone
    )
