"""Read-only questions the asset checks ask of the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

import sqlalchemy as sa

from etl_contacts.warehouse import tables
from etl_contacts.warehouse.warehouse import Warehouse

T = TypeVar("T")


def orphan_children(warehouse: Warehouse, account: str) -> int:
    """Tag, attribute and segment rows of the account whose contact is not stored: a load that
    replaced children without their contact (the primary key alone cannot show that)."""
    orphans = 0
    for child in (tables.contact_tags, tables.contact_attributes, tables.contact_segments):
        c = tables.contacts
        missing = ~sa.exists().where(
            c.c.account == child.c.account, c.c.contact_id == child.c.contact_id
        )
        orphans += _count(
            warehouse, sa.select(sa.func.count()).where(child.c.account == account, missing)
        )
    return orphans


def future_timestamps(warehouse: Warehouse, account: str, timezone: str) -> dict[date, int]:
    """The account's stored contacts with a time more than a day ahead of now, by the local day
    each was created (a load rejects such records: a row gets one only by an edit, or a clock
    set back)."""
    c = tables.contacts
    horizon = sa.func.now() + sa.text("interval '1 day'")
    day = sa.cast(sa.func.timezone(timezone, c.c.created_at), sa.Date)
    query = (
        sa.select(day, sa.func.count())
        .where(
            c.c.account == account,
            sa.or_(c.c.created_at > horizon, c.c.updated_at > horizon, c.c.last_seen_at > horizon),
        )
        .group_by(day)
    )
    with warehouse.engine.connect() as conn:
        return dict(conn.execute(query).tuples().all())


@dataclass(frozen=True)
class DayRead:
    """What one run's complete read of a day found."""

    received: int
    holes_repaired: int
    unaccounted: int


NOT_READ = DayRead(received=0, holes_repaired=0, unaccounted=0)
"""A day the run did not read completely (an outage left it unverified): nothing found."""


def days_read(warehouse: Warehouse, account: str, run_id: str) -> dict[date, DayRead]:
    """The days this run read completely, each with what its read found."""
    v = tables.day_verifications
    query = sa.select(
        v.c.day, v.c.contacts_seen, v.c.holes_repaired, v.c.contacts_unaccounted
    ).where(v.c.account == account, v.c.run_id == run_id)
    with warehouse.engine.connect() as conn:
        rows = conn.execute(query).tuples().all()
    return {day: DayRead(*counts) for day, *counts in rows}


OUTCOMES = ("inserted", "updated", "unchanged", "refused_older", "rejected")
"""What can become of a record received, each counted where it happens: together, every record."""


def run_counts(warehouse: Warehouse, run_id: str) -> dict[str, int]:
    """Counters of one run: received (`records`), what became of them (`OUTCOMES`), the
    contacts its complete windows missed (`holes_repaired`), and its absences: deleted, found
    missing, deletions the guard held, days that looked like an outage."""
    r = tables.sync_runs
    columns = (
        "records",
        *OUTCOMES,
        "holes_repaired",
        "deleted",
        "missing",
        "deletions_held",
        "suspect_days",
    )
    with warehouse.engine.connect() as conn:
        row = conn.execute(
            sa.select(*(r.c[n] for n in columns)).where(r.c.run_id == run_id)
        ).first()
    return dict(zip(columns, row or (0,) * len(columns), strict=True))


def last_success(warehouse: Warehouse, account: str) -> datetime | None:
    r = tables.sync_runs
    return _scalar(
        warehouse,
        sa.select(sa.func.max(r.c.finished_at)).where(
            r.c.account == account, r.c.status == "success"
        ),
    )


def ranges_combined(warehouse: Warehouse, account: str) -> bool | None:
    """What the account's latest run that found out saw: whether the server ANDs a lastSeenAt
    range with a createdAt range (None: no run has asked yet)."""
    r = tables.sync_runs
    found = _scalar(
        warehouse,
        sa.select(r.c.ranges_combined)
        .where(r.c.account == account, r.c.ranges_combined.is_not(None))
        .order_by(r.c.started_at.desc())
        .limit(1),
    )
    return None if found is None else bool(found)


def _scalar(warehouse: Warehouse, query: sa.Select[T]) -> T | None:
    with warehouse.engine.connect() as conn:
        return conn.scalar(query)


def _count(warehouse: Warehouse, query: sa.Select[int]) -> int:
    """A COUNT's answer, never NULL; `scalar` is typed for queries that may return no row."""
    return _scalar(warehouse, query) or 0
