"""What keeps every row at most a known number of days behind the source.

A day read once is true only at that moment: an agent's change moves `updatedAt` but not
`lastSeenAt`, and a deletion leaves no trace a sync keyed on activity can see. So the nightly run
re-reads, besides its own days, the contacts active in the last `lookback_days` (agents' work on
recent conversations shows the next morning) and the `createdAt` windows of the least recently
verified days, about 1 / `reverify_days` of the history a night. The choice follows the recorded
verification times, not the calendar: running the nightly `reverify_days` times in a row
verifies every day. The days before the start date that hold stored contacts (created earlier,
stored because they were active in a loaded day) are in the rotation too: the promise covers
every stored contact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from etl_contacts.settings import Freshness, days_between
from etl_contacts.warehouse import Warehouse


@dataclass(frozen=True)
class NightlyPlan:
    reverify: tuple[date, ...]
    """Days outside the run's own range whose createdAt windows are read again."""
    prestart: tuple[date, ...]
    """Days before the start date whose stored contacts are probed."""
    lookback_from: date
    """First day whose active contacts are read again."""


@dataclass(frozen=True)
class Staleness:
    """How far behind the source the warehouse may be, from the verification record."""

    days: int
    unverified: tuple[date, ...]
    oldest: datetime | None
    """The oldest verification among the days (None when some day was never verified)."""

    def older_than(self, limit: timedelta, now: datetime) -> bool:
        """Whether some day was never verified, or not within `limit` of `now`."""
        return bool(self.unverified) or (self.oldest is not None and now - self.oldest > limit)


def plan_nightly(
    first: date,
    last: date,
    *,
    verified: Mapping[date, datetime],
    freshness: Freshness,
    before: Sequence[date] = (),
) -> NightlyPlan:
    """The extra reading of a nightly run over [first, last]: never verified days first, then
    the least recently verified, then the oldest; `before`: the days before the start date that
    hold stored contacts."""
    history = [*before, *freshness.history(last)]
    share = math.ceil(len(history) / freshness.reverify_days)
    own = set(days_between(first, last))
    others = [day for day in history if day not in own]
    ordered = sorted(others, key=lambda day: (day in verified, verified.get(day), day))
    chosen = sorted(ordered[:share])
    return NightlyPlan(
        reverify=tuple(day for day in chosen if day >= freshness.history_start),
        prestart=tuple(day for day in chosen if day < freshness.history_start),
        lookback_from=max(
            freshness.history_start, last - timedelta(days=freshness.lookback_days - 1)
        ),
    )


def staleness(verified: Mapping[date, datetime], history: Sequence[date]) -> Staleness:
    unverified = tuple(day for day in history if day not in verified)
    known = [verified[day] for day in history if day in verified]
    return Staleness(
        days=len(history),
        unverified=unverified,
        oldest=None if unverified or not known else min(known),
    )


def account_staleness(
    warehouse: Warehouse, account: str, freshness: Freshness, timezone: str
) -> Staleness:
    """The account's staleness over every day from the start date to yesterday (local), and
    every day before it that holds stored contacts."""
    yesterday = datetime.now(UTC).astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)
    before = warehouse.days_before(account, freshness.history_start, timezone)
    return staleness(warehouse.verified_days(account), [*before, *freshness.history(yesterday)])
