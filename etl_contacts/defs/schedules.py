"""The nightly schedule: yesterday, plus every day of the last week that is missing or failed,
plus what keeps the history fresh (see `etl_contacts.pipeline.nightly`).

A night the machine was down, or a run that failed, heals itself the next night without anyone
launching a backfill. The days go into one run over a contiguous range: days in between that were
already loaded are loaded again, which the idempotent upserts make harmless.
"""

from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

NIGHTLY_HOUR = 2
CATCH_UP_DAYS = 7
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
NIGHTLY_TAG = "etl_contacts/nightly"
"""On a run that also re-reads the lookback days and re-verifies the least recently verified."""


def catch_up_range(
    instance: dg.DagsterInstance,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    asset_key: dg.AssetKey,
    now: datetime,
) -> tuple[str, str] | None:
    """First and last partition key to load now, or None before the first partition ends."""
    keys = partitions_def.get_partition_keys(current_time=now)[-CATCH_UP_DAYS:]
    if not keys:
        return None
    status = instance.get_status_by_partition(asset_key, keys, partitions_def) or {}
    pending = [k for k in keys if status.get(k) != dg.AssetPartitionStatus.MATERIALIZED]
    return (pending[0] if pending else keys[-1]), keys[-1]


ALLOW_MASS_DELETE_TAG = "etl_contacts/allow_mass_delete"
"""On a run allowed, once, to delete beyond ETL_CONTACTS_MAX_DELETE_PERCENT (and to accept days
that still look like an outage): `etl-contacts sync --allow-mass-delete`."""


def range_tags(
    first: str, last: str, *, nightly: bool = False, allow_mass_delete: bool = False
) -> dict[str, str]:
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last}
    if nightly:
        tags[NIGHTLY_TAG] = "true"
    if allow_mass_delete:
        tags[ALLOW_MASS_DELETE_TAG] = "true"
    return tags


def nightly_schedule(
    job: "UnresolvedAssetJobDefinition",
    partitions_def: dg.TimeWindowPartitionsDefinition,
    asset_key: dg.AssetKey,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"nightly_{job.name}",
        job=job,
        cron_schedule=f"0 {NIGHTLY_HOUR} * * *",
        execution_timezone=partitions_def.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def nightly_contacts(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Load yesterday and catch up the missing or failed days of the last week; re-read the
        lookback days' activity and re-verify the least recently verified days."""
        span = catch_up_range(
            context.instance, partitions_def, asset_key, context.scheduled_execution_time
        )
        if span is None:
            return dg.SkipReason("no complete partition yet")
        return dg.RunRequest(run_key=f"{span[0]}..{span[1]}", tags=range_tags(*span, nightly=True))

    return nightly_contacts
