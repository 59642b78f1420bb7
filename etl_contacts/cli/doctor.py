"""`etl-contacts doctor`: every prerequisite of a sync, checked; a problem is one line and a fix."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from rich.console import Console

from etl_contacts.defs.definitions import contacts_key
from etl_contacts.settings import CA_BUNDLE_ENV, DATABASE_FIX, Account, Settings
from etl_contacts.source import AuthError, ClientConfig, SourceError, probe
from etl_contacts.warehouse import Warehouse, error_cause, quality
from etl_contacts.warehouse.warehouse import MIGRATIONS


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


def diagnose(settings: Settings, open_warehouse: Callable[[Settings], Warehouse]) -> list[Finding]:
    findings = [
        Finding(True, f"configuration: schema {settings.schema}, time zone {settings.timezone}")
    ]
    findings += [_api(settings, account.name, account.token_env) for account in settings.accounts]
    findings += _warehouse(settings, open_warehouse)
    if all(finding.ok for finding in findings):
        warehouse = open_warehouse(settings)
        findings += [_ranges(warehouse, account.name) for account in settings.accounts]
    return findings + _dagster(settings)


def _api(settings: Settings, account: str, token_env: str) -> Finding:
    token = os.environ.get(token_env)
    if not token:
        return Finding(
            False,
            f"account {account}: {token_env} is not set",
            f"export {token_env}=<the account's Express-Chat API token>",
        )
    try:
        probe(
            ClientConfig(
                base_url=settings.base_url,
                token=token,
                read_timeout=10.0,
                ca_bundle=os.environ.get(CA_BUNDLE_ENV),
            )
        )
    except AuthError as exc:
        return Finding(False, f"account {account}: {exc}", f"check {token_env}")
    except SourceError as exc:
        return Finding(
            False,
            f"account {account}: {settings.base_url} did not answer ({exc})",
            "check EXPRESS_CHAT_BASE_URL and the network",
        )
    return Finding(True, f"account {account}: {settings.base_url} accepts the token")


def _warehouse(
    settings: Settings, open_warehouse: Callable[[Settings], Warehouse]
) -> list[Finding]:
    try:
        warehouse = open_warehouse(settings)
        with warehouse.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = MigrationContext.configure(
                conn, opts={"version_table_schema": settings.schema}
            ).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        return [Finding(False, f"warehouse: {error_cause(exc)}", DATABASE_FIX)]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    url = warehouse.engine.url
    reached = Finding(
        True, f"warehouse: database {url.database} on {url.host or url.query['host']}"
    )
    if current != head:
        behind = f"warehouse: schema at migration {current}, newest is {head}"
        return [reached, Finding(False, behind, "run etl-contacts migrate (every sync also does)")]
    return [reached, Finding(True, f"warehouse: schema {settings.schema} at the newest migration")]


def _ranges(warehouse: Warehouse, account: str) -> Finding:
    """How the last runs read the contacts active in their days (not a fault: a cost)."""
    combined = quality.ranges_combined(warehouse, account)
    if combined is None:
        how = "not known yet (no run has read contacts active in its days)"
    elif combined:
        how = "the server ANDs lastSeenAt and createdAt ranges: each contact is read once"
    else:
        how = (
            "the server does not AND lastSeenAt and createdAt ranges: runs read the contacts "
            "active in their days in full and keep those created outside them (more requests)"
        )
    return Finding(True, f"account {account}: {how}")


def _server(instance: dg.DagsterInstance, settings: Settings, account: Account) -> Finding:
    """What the account's last run found the server to do (its `server/` metadata): evidence
    of that run, re-learned by every run; what a sort, a page size or a hidden order cost is
    in the README's extraction section."""
    event = instance.get_latest_materialization_event(contacts_key(settings, account))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return Finding(
            True, f"account {account.name}: what the server does is not known yet (no run)"
        )
    found = {
        key.removeprefix("server/"): str(value.value)
        for key, value in materialization.metadata.items()
        if key.startswith("server/")
    }
    if not found:
        return Finding(True, f"account {account.name}: the last run recorded no server facts")
    facts = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in found.items())
    return Finding(True, f"account {account.name}: the last run found {facts}")


def _dagster(settings: Settings) -> list[Finding]:
    """The instance, and what each account's last run found the server to do (one instance
    opened for all of it)."""
    try:
        with dg.DagsterInstance.get() as instance:
            storage = type(instance.run_storage).__name__
            servers = [_server(instance, settings, account) for account in settings.accounts]
    except Exception as exc:  # noqa: BLE001 (any failure to load the instance is the finding)
        first = f"Dagster instance: {exc}".splitlines()[0]
        return [Finding(False, first, "check DAGSTER_HOME and its dagster.yaml")]
    home = os.environ.get("DAGSTER_HOME")
    return [Finding(True, f"Dagster instance in {home} ({storage})"), *servers]


def report(findings: list[Finding], console: Console) -> bool:
    for finding in findings:
        mark = "[green]ok[/]  " if finding.ok else "[bold red]fail[/]"
        console.print(f"{mark} {finding.what}", highlight=False)
        if not finding.ok:
            console.print(f"     fix: {finding.fix}", highlight=False)
    return all(f.ok for f in findings)
