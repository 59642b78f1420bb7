"""A failed sync run is recorded in the warehouse and, when configured, announced to a webhook.

Most failures are already recorded by the sync itself; this catches the rest (a resource that
could not start, a killed process), so `sync_runs` is the one place an analyst looks.
"""

import os
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )
import requests

from etl_contacts.defs.failures import failure_cause
from etl_contacts.defs.resources import WarehouseResource

ALERT_WEBHOOK_ENV = "ETL_CONTACTS_ALERT_WEBHOOK"
ACCOUNT_TAG = "etl_contacts/account"
WEBHOOK_TIMEOUT = (5.0, 10.0)


def build_failure_sensor(jobs: "list[UnresolvedAssetJobDefinition]") -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="record_sync_failures",
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def record_sync_failures(
        context: dg.RunFailureSensorContext, warehouse: WarehouseResource
    ) -> None:
        """Write the failure to sync_runs and post it to ETL_CONTACTS_ALERT_WEBHOOK if set."""
        run = context.dagster_run
        account = run.tags.get(ACCOUNT_TAG, "default")
        message = (
            failure_cause(context.get_step_failure_events())
            or ((context.failure_event.message or "run failed").strip().splitlines()[0])
        )
        warehouse.warehouse().record_failure(run_id=run.run_id, account=account, error=message)
        webhook = os.environ.get(ALERT_WEBHOOK_ENV)
        if webhook:
            payload = {
                "text": f"etl-contacts: run {run.run_id} of {run.job_name} failed: {message}",
                "run_id": run.run_id,
                "job": run.job_name,
                "account": account,
                "error": message,
            }
            requests.post(webhook, json=payload, timeout=WEBHOOK_TIMEOUT).raise_for_status()

    return record_sync_failures
