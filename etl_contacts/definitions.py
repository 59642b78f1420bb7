"""The one `Definitions` of the project: what `dagster dev -w workspace.yaml` and the CLI load."""

from __future__ import annotations

import os

import dagster as dg

from etl_contacts.defs.assets import build_contact_assets
from etl_contacts.defs.partitions import daily_partitions
from etl_contacts.defs.resources import ExpressChatResource, WarehouseResource
from etl_contacts.defs.schedules import catch_up_range, nightly_schedule, range_tags
from etl_contacts.settings import (
    BASE_URL_ENV,
    DATABASE_URL_ENV,
    PII_KEY_ENV,
    TOKEN_ENV,
    Settings,
)

SYNC_JOB = "sync_contacts"
__all__ = ["SYNC_JOB", "build_definitions", "catch_up_range", "defs", "range_tags"]


def _env_or_none(name: str) -> dg.EnvVar | None:
    """Bind an optional setting as an `EnvVar` (resolved at run time, masked in the UI)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings)
    contacts = build_contact_assets(partitions, timezone=settings.timezone)
    job = dg.define_asset_job(SYNC_JOB, selection=[contacts], partitions_def=partitions)
    return dg.Definitions(
        assets=[contacts],
        jobs=[job],
        schedules=[nightly_schedule(job, partitions, dg.AssetKey("contacts"))],
        resources={
            "express_chat": ExpressChatResource(
                base_url=_env_or_none(BASE_URL_ENV) or settings.base_url,
                token=dg.EnvVar(TOKEN_ENV),
            ),
            "warehouse": WarehouseResource(
                database_url=_env_or_none(DATABASE_URL_ENV),
                schema_name=settings.schema,
                home=str(settings.home.resolve()),
                pii_key=_env_or_none(PII_KEY_ENV),
            ),
        },
    )


defs = build_definitions(Settings.from_env())
