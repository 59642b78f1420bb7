"""Run the sync job in-process on the `DAGSTER_HOME` instance, so a shell run shows in the UI.

The CLI goes through Dagster rather than calling the pipeline directly: there is one pipeline,
and every run, whoever started it, has the same run history, metadata and checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from etl_contacts.defs.definitions import (
    build_definitions,
    catch_up_range,
    contacts_key,
    job_name,
    range_tags,
)
from etl_contacts.defs.failures import failure_cause
from etl_contacts.settings import Account, Settings


@dataclass(frozen=True)
class LaunchOutcome:
    """The end of one run: whether it succeeded, its metadata, or the cause of failure."""

    run_id: str
    success: bool
    metadata: dict[str, dict[str, object]]
    error: str | None

    def value(self, key: str, table: str = "contacts") -> object:
        return self.metadata.get(table, {}).get(key, 0)


def ensure_dagster_home() -> Path:
    """`DAGSTER_HOME` defaults to `./dagster_home`, as in the Makefile and the architecture."""
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def tonight_range(settings: Settings, account: Account) -> tuple[date, date] | None:
    """The days the nightly schedule would load now: yesterday plus the gaps of the last week."""
    ensure_dagster_home()
    defs = build_definitions(settings)
    partitions_def = defs.resolve_job_def(job_name(settings, account)).partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    with dg.DagsterInstance.get() as instance:
        span = catch_up_range(
            instance, partitions_def, contacts_key(settings, account), datetime.now(UTC)
        )
    return None if span is None else (date.fromisoformat(span[0]), date.fromisoformat(span[1]))


def launch_sync(
    settings: Settings,
    account: Account,
    first: date,
    last: date,
    *,
    nightly: bool = False,
    allow_mass_delete: bool = False,
) -> LaunchOutcome:
    """Materialize the partitions `first`..`last` (inclusive) of one account in one run;
    `nightly`: as the schedule does, with the lookback and the re-verification;
    `allow_mass_delete`: past the deletion guard, once."""
    ensure_dagster_home()
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name(settings, account))
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            # progress reaches the terminal through etl_contacts.cli.progress, and the cause of a
            # failure as one line: Dagster's console copy (with tracebacks) stays in the UI
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            instance=instance,
            tags=range_tags(
                first.isoformat(),
                last.isoformat(),
                nightly=nightly,
                allow_mass_delete=allow_mass_delete,
            ),
            raise_on_error=False,
        )
    metadata: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata[materialization.asset_key.path[-1]] = {
            k: v.value for k, v in materialization.metadata.items()
        }
    return LaunchOutcome(
        run_id=result.run_id,
        success=result.success,
        metadata=metadata,
        error=None
        if result.success
        else failure_cause(result.get_step_failure_events())
        or "the run failed before any step ran; see the run in the Dagster UI",
    )
