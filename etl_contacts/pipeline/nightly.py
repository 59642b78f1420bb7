"""What keeps every row at most a known number of days behind the source.

A day read once is true only at that moment: an agent's change moves `updatedAt` but not
`lastSeenAt`, and a deletion leaves no trace a sync keyed on activity can see. So the nightly run
re-reads, besides its own days, the contacts active in the last `lookback_days` (agents' work on
recent conversations shows the next morning) and the `createdAt` windows of the least recently
verified days, about 1 / `reverify_days` of the history a night. The choice follows the recorded
verification times, not the calendar: running the nightly `reverify_days` times in a row
verifies every day.
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
    first: date, last: date, *, verified: Mapping[date, datetime], freshness: Freshness
) -> NightlyPlan:
    """The extra reading of a nightly run over [first, last]: never verified days first, then
    the least recently verified, then the oldest."""
    history = freshness.history(last)
    share = math.ceil(len(history) / freshness.reverify_days)
    own = set(days_between(first, last))
    others = [day for day in history if day not in own]
    ordered = sorted(others, key=lambda day: (day in verified, verified.get(day), day))
    return NightlyPlan(
        reverify=tuple(sorted(ordered[:share])),
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
    """The account's staleness over every day from the start date to yesterday (local)."""
    yesterday = datetime.now(UTC).astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)
    return staleness(warehouse.verified_days(account), freshness.history(yesterday))
