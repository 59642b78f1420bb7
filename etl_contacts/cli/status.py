"""`etl-contacts status`: recent runs, watermarks, the days not loaded yet and how far behind the
source the rows may be, per account."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from etl_contacts.defs.definitions import build_definitions, contacts_key, job_name
from etl_contacts.pipeline.nightly import Staleness, account_staleness
from etl_contacts.settings import Settings
from etl_contacts.warehouse import Warehouse, tables

RECENT_RUNS = 10


def show_status(settings: Settings, warehouse: Warehouse, console: Console) -> None:
    runs = tables.sync_runs
    with warehouse.engine.connect() as conn:
        recent = conn.execute(
            sa.select(
                runs.c.run_id,
                runs.c.account,
                runs.c.status,
                runs.c.windows,
                runs.c.started_at,
                runs.c.duration_seconds,
                runs.c.inserted,
                runs.c.updated,
                runs.c.unchanged,
                runs.c.rejected,
                runs.c.error,
            )
            .order_by(runs.c.started_at.desc())
            .limit(RECENT_RUNS)
        ).all()
        marks = conn.execute(sa.select(tables.sync_state)).all()
    table = Table(title="recent runs")
    for column in (
        "run",
        "account",
        "outcome",
        "windows",
        "started",
        "seconds",
        "ins/upd/same/rej",
    ):
        table.add_column(column)
    for run in recent:
        outcome = run.status if not run.error else f"{run.status}: {run.error[:60]}"
        table.add_row(
            run.run_id[:8],
            run.account,
            outcome,
            str(len(run.windows)),
            f"{run.started_at:%Y-%m-%d %H:%M}",
            f"{run.duration_seconds or 0:.1f}",
            f"{run.inserted}/{run.updated}/{run.unchanged}/{run.rejected}",
        )
    console.print(table)
    for mark in marks:
        console.print(f"watermark {mark.account} {mark.stream}: {mark.watermark:%Y-%m-%d %H:%M %Z}")
    for account, days in missing_days(settings).items():
        console.print(f"{account}: {_describe(days)}", highlight=False)
        found = account_staleness(warehouse, account, settings.freshness, settings.timezone)
        console.print(f"{account}: {describe_staleness(found, settings)}", highlight=False)
        console.print(
            f"{account}: {describe_absences(warehouse, account, settings)}", highlight=False
        )


def describe_absences(warehouse: Warehouse, account: str, settings: Settings) -> str:
    """Contacts awaiting their second look, and what the guard and the outage test did last."""
    runs = tables.sync_runs
    with warehouse.engine.connect() as conn:
        last = conn.execute(
            sa.select(runs.c.deletions_held, runs.c.suspect_days)
            .where(runs.c.account == account, runs.c.status == "success")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
    held, suspect = last if last is not None else (0, 0)
    parts = [f"{warehouse.missing_count(account)} contacts missing, awaiting a second look"]
    if held:
        parts.append(
            f"the last run held {held} deletions back (found missing by a run that found more "
            f"than ETL_CONTACTS_MAX_DELETE_PERCENT={settings.max_delete_percent:g} % of the "
            "account); "
            "if the source really lost them: etl-contacts sync --allow-mass-delete"
        )
    else:
        parts.append(
            f"deletion guard clear ({settings.max_delete_percent:g} % found missing by a run)"
        )
    if suspect:
        parts.append(
            f"the last run left {suspect} days unverified: their answers looked like an outage"
        )
    return "; ".join(parts)


def describe_staleness(found: Staleness, settings: Settings) -> str:
    """The promise and how it stands: the oldest verification bounds how far behind a row is."""
    budget = f"freshness budget {settings.reverify_days} days"
    if found.unverified:
        return (
            f"{len(found.unverified)} of {found.days} days never verified ({budget}; the "
            f"nightly verifies about 1/{settings.reverify_days} of them a night, or backfill them)"
        )
    if found.oldest is None:
        return f"no day to verify yet ({budget})"
    behind = (datetime.now(UTC) - found.oldest) / timedelta(days=1)
    return (
        f"every row is at most {behind:.1f} days behind the source: oldest verification "
        f"{found.oldest:%Y-%m-%d %H:%M %Z} of {found.days} days ({budget})"
    )


def missing_days(settings: Settings) -> dict[str, list[date]]:
    """Partition days up to yesterday that no run has loaded, per account."""
    defs = build_definitions(settings)
    result = {}
    with dg.DagsterInstance.get() as instance:
        for account in settings.accounts:
            partitions_def = defs.resolve_job_def(job_name(settings, account)).partitions_def
            assert partitions_def is not None
            keys = partitions_def.get_partition_keys(current_time=datetime.now(UTC))
            done = instance.get_materialized_partitions(contacts_key(settings, account))
            result[account.name] = [date.fromisoformat(k) for k in keys if k not in done]
    return result


def _describe(days: list[date]) -> str:
    if not days:
        return "every day up to yesterday is loaded"
    spans, start, previous = [], days[0], days[0]
    for day in [*days[1:], None]:
        if day is not None and day == previous + timedelta(days=1):
            previous = day
            continue
        spans.append(str(start) if start == previous else f"{start}..{previous}")
        if day is not None:
            start = previous = day
    shown = ", ".join(spans[-5:])
    more = f" (and {len(spans) - 5} earlier ranges)" if len(spans) > 5 else ""
    return f"{len(days)} days not loaded: {shown}{more}"
