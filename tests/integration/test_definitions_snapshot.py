"""A snapshot of what the Dagster project declares, as the model projects keep one
(dagster-open-platform's tests/__snapshots__/test_defs.ambr), in plain JSON.

A change to an asset key, group, partitioning, policy, pool, check, schedule, sensor or job
shows as a diff in review instead of going unnoticed. After an intended change, regenerate:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/integration/test_definitions_snapshot.py

Only what the code declares is rendered: no paths, ports, dates that move or secrets.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from etl_contacts.defs.definitions import build_definitions
from etl_contacts.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_ENV = "UPDATE_SNAPSHOTS"
# Fixed settings, not the machine's environment: the default single account, and two accounts
# in a time zone with daylight saving time and a smaller backfill chunk.
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "default": {},
    "two accounts, Europe/Berlin": {
        "ETL_CONTACTS_ACCOUNTS": "acme=ACME_EXPRESS_CHAT_TOKEN,beta=BETA_EXPRESS_CHAT_TOKEN",
        "ETL_CONTACTS_TIMEZONE": "Europe/Berlin",
        "ETL_CONTACTS_START_DATE": "2025-03-30",
        "ETL_CONTACTS_MAX_DAYS_PER_RUN": "31",
    },
}
# Variables that change which resources are bound as EnvVars; cleared so the snapshot cannot
# depend on the shell it runs in.
BINDING_ENV = (
    "EXPRESS_CHAT_BASE_URL",
    "EXPRESS_CHAT_CA_BUNDLE",
    "ETL_CONTACTS_DATABASE_URL",
    "ETL_CONTACTS_PII_KEY",
)


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    kind = type(partitions_def).__name__
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return {
            "type": kind,
            "start": partitions_def.start.isoformat(),
            "end": partitions_def.end.isoformat() if partitions_def.end else None,
            "timezone": partitions_def.timezone,
            "cron": partitions_def.cron_schedule,
            "format": partitions_def.fmt,
            "end_offset": partitions_def.end_offset,
        }
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return {
            "type": kind,
            "dimensions": {
                dimension.name: _partitions(dimension.partitions_def)
                for dimension in partitions_def.partitions_defs
            },
        }
    if isinstance(partitions_def, dg.StaticPartitionsDefinition):
        return {"type": kind, "keys": partitions_def.get_partition_keys()}
    return {"type": kind}


def _backfill_policy(policy: dg.BackfillPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "type": policy.policy_type.value,
        "max_partitions_per_run": policy.max_partitions_per_run,
    }


def _automation(condition: dg.AutomationCondition | None) -> str | None:
    if condition is None:
        return None
    return condition.get_label() or type(condition).__name__


def _assets(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    rendered = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assets_def = defs.resolve_assets_def(key)
        rendered[_key(key)] = {
            "group": node.group_name,
            "deps": sorted(_key(parent) for parent in node.parent_keys),
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "tags": dict(sorted(node.tags.items())),
            "code_version": node.code_version,
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": _backfill_policy(node.backfill_policy),
            "automation_condition": _automation(node.automation_condition),
            "freshness_policy": None
            if node.freshness_policy is None
            else repr(node.freshness_policy),
            "op": assets_def.node_def.name,
            "pool": assets_def.op.pool,
            "resources": sorted(assets_def.required_resource_keys),
            "executable": node.is_executable,
        }
    return rendered


def _checks(defs: dg.Definitions) -> dict[str, Any]:
    rendered = {}
    for checks_def in defs.asset_checks or ():
        assert isinstance(checks_def, dg.AssetChecksDefinition)
        for spec in checks_def.check_specs:
            rendered[f"{_key(spec.asset_key)}:{spec.name}"] = {
                "blocking": spec.blocking,
                "per_partition": spec.partitions_def is not None,
                "op": checks_def.node_def.name,
                "resources": sorted(checks_def.required_resource_keys),
            }
    return rendered


def _jobs(defs: dg.Definitions) -> dict[str, Any]:
    """The declared jobs, resolved one by one (Dagster's implicit asset job is left out)."""
    rendered = {}
    for declared in defs.jobs or ():
        job = defs.resolve_job_def(declared.name)
        rendered[job.name] = {
            "assets": sorted(_key(key) for key in job.asset_layer.selected_asset_keys),
            "checks": sorted(
                f"{_key(key.asset_key)}:{key.name}"
                for key in job.asset_layer.asset_graph.asset_check_keys
            ),
            "ops": sorted(node.name for node in job.graph.nodes),
            "tags": dict(sorted(job.tags.items())),
            "partitions": _partitions(job.partitions_def),
        }
    return rendered


def _schedules(defs: dg.Definitions) -> dict[str, Any]:
    rendered = {}
    for schedule in defs.schedules or ():
        assert isinstance(schedule, dg.ScheduleDefinition)
        rendered[schedule.name] = {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
    return rendered


def _sensors(defs: dg.Definitions) -> dict[str, Any]:
    rendered = {}
    for sensor in defs.sensors or ():
        assert isinstance(sensor, dg.SensorDefinition)
        monitored = getattr(sensor, "_monitored_jobs", None) or []  # run status sensors only
        rendered[sensor.name] = {
            "type": sensor.sensor_type.value,
            "class": type(sensor).__name__,
            "default_status": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "monitored_jobs": sorted(job.name for job in monitored),
            "resources": sorted(sensor.required_resource_keys),
        }
    return rendered


def describe(defs: dg.Definitions) -> dict[str, Any]:
    """A stable, sorted description of everything `defs` declares (no resource values)."""
    return {
        "assets": _assets(defs),
        "asset_checks": _checks(defs),
        "jobs": _jobs(defs),
        "schedules": _schedules(defs),
        "sensors": _sensors(defs),
        "resources": {
            key: type(resource).__name__ for key, resource in (defs.resources or {}).items()
        },
    }


def _settings(configuration: str) -> Settings:
    return Settings.from_env(CONFIGURATIONS[configuration])


def _render() -> str:
    described = {name: describe(build_definitions(_settings(name))) for name in CONFIGURATIONS}
    return json.dumps(described, indent=2, sort_keys=True) + "\n"


def test_definitions_match_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the project declares is what was reviewed; UPDATE_SNAPSHOTS=1 rewrites the file."""
    for name in BINDING_ENV:
        monkeypatch.delenv(name, raising=False)
    rendered = _render()
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(rendered)
        warnings.warn(f"{UPDATE_ENV}=1: wrote {SNAPSHOT.name}; review and commit it", stacklevel=1)
        return
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 and commit {SNAPSHOT}"
    stored = SNAPSHOT.read_text()
    if rendered != stored:
        diff = "".join(
            difflib.unified_diff(
                stored.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                "snapshot",
                "definitions now",
            )
        )
        pytest.fail(
            f"the Dagster definitions changed; if intended, rerun with {UPDATE_ENV}=1 and commit "
            f"{SNAPSHOT.relative_to(SNAPSHOT.parents[3])}:\n{diff}",
            pytrace=False,
        )


def test_the_snapshot_holds_nothing_of_this_machine(repo_root: Path) -> None:
    """A snapshot with a path, a host or a port in it would differ on the next machine."""
    text = SNAPSHOT.read_text()
    for machine_specific in (str(repo_root), "127.0.0.1", "localhost", "/tmp/", "://"):
        assert machine_specific not in text


@pytest.mark.parametrize("configuration", ["default", "two accounts, Europe/Berlin"])
def test_every_configuration_loads_as_a_code_location(configuration: str) -> None:
    """What `dagster dev` and the code server do first: a repository that loads."""
    dg.Definitions.validate_loadable(build_definitions(_settings(configuration)))
