"""The one `Definitions` of the project: what `dagster dev -w workspace.yaml` and the CLI load."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg

from etl_contacts.defs.assets import build_contact_assets
from etl_contacts.defs.checks import build_checks
from etl_contacts.defs.partitions import daily_partitions
from etl_contacts.defs.resources import ExpressChatResource, WarehouseResource
from etl_contacts.defs.schedules import catch_up_range, nightly_schedule, range_tags
from etl_contacts.defs.sensors import ACCOUNT_TAG, build_failure_sensor
from etl_contacts.defs.summary import build_daily_activity
from etl_contacts.pipeline.deletions import DeletePolicy
from etl_contacts.settings import (
    BASE_URL_ENV,
    CA_BUNDLE_ENV,
    DATABASE_URL_ENV,
    PII_KEY_ENV,
    Account,
    Settings,
)

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

SYNC_JOB = "sync_contacts"
__all__ = ["build_definitions", "catch_up_range", "contacts_key", "defs", "job_name", "range_tags"]


def _env_or_none(name: str) -> dg.EnvVar | None:
    """Bind an optional setting as an `EnvVar` (resolved at run time, masked in the UI)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def job_name(settings: Settings, account: Account) -> str:
    """One job per account; with a single account, plainly `sync_contacts`."""
    return SYNC_JOB if len(settings.accounts) == 1 else f"{SYNC_JOB}_{account.name}"


def contacts_key(settings: Settings, account: Account) -> dg.AssetKey:
    prefix = [] if len(settings.accounts) == 1 else [account.name]
    return dg.AssetKey([*prefix, "contacts"])


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = daily_partitions(settings)
    single = len(settings.accounts) == 1
    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    jobs: list[UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    resources: dict[str, dg.ConfigurableResource] = {}
    for account in settings.accounts:
        api_key = "express_chat" if single else f"express_chat_{account.name}"
        contacts = build_contact_assets(
            partitions,
            account=account.name,
            api_resource_key=api_key,
            key_prefix=[] if single else [account.name],
            timezone=settings.timezone,
            max_days_per_run=settings.max_days_per_run,
            freshness=settings.freshness,
            policy=DeletePolicy(
                max_delete_percent=settings.max_delete_percent,
                suspect_pause_seconds=settings.suspect_pause_seconds,
            ),
        )
        job = dg.define_asset_job(
            job_name(settings, account),
            selection=[contacts],
            partitions_def=partitions,
            tags={ACCOUNT_TAG: account.name},
        )
        key = contacts_key(settings, account)
        assets.append(contacts)
        assets.append(
            build_daily_activity(
                key, account=account.name, key_prefix=[] if single else [account.name]
            )
        )
        checks.extend(build_checks(key, account.name, settings, partitions))
        jobs.append(job)
        schedules.append(nightly_schedule(job, partitions, key))
        resources[api_key] = ExpressChatResource(
            base_url=_env_or_none(BASE_URL_ENV) or settings.base_url,
            token=dg.EnvVar(account.token_env),
            ca_bundle=_env_or_none(CA_BUNDLE_ENV),
        )
    resources["warehouse"] = WarehouseResource(
        database_url=_env_or_none(DATABASE_URL_ENV),
        schema_name=settings.schema,
        home=str(settings.home.resolve()),
        pii_key=_env_or_none(PII_KEY_ENV),
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=[build_failure_sensor(jobs)],
        resources=resources,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` loads. Settings are read when the code location loads, never when this
    module is imported: the command line imports it before it has checked them (and answers a
    wrong one in a line), and a location that cannot load shows the same message in the UI."""
    return build_definitions(Settings.from_env())
