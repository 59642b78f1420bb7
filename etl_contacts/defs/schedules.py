"""The nightly schedule: yesterday's partition, in the partitions' own time zone."""

from __future__ import annotations

import dagster as dg

NIGHTLY_HOUR = 2


def nightly_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job, name="nightly_contacts", hour_of_day=NIGHTLY_HOUR, minute_of_hour=0
    )
