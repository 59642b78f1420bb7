"""What crosses the source's boundary: windows in, raw record batches out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from etl_contacts.timestamps import CREATED_AT, LAST_SEEN_AT

WindowField = Literal["createdAt", "lastSeenAt"]
"""The two date ranges the API filters on: the streams a run reads, and the record's fields."""
WINDOW_FIELDS: tuple[WindowField, ...] = (CREATED_AT, LAST_SEEN_AT)


@dataclass(frozen=True)
class Window:
    """Contacts whose `field` lies in [start, end): a half-open range of aware UTC datetimes.

    `created_outside`, on a lastSeenAt window, keeps only contacts whose createdAt lies outside
    those ranges: the contacts active in a run's days that its createdAt windows do not hold.
    `active_since`, on a createdAt window, asks only for contacts last seen at or after it when
    the server ANDs two ranges (a probe for contacts it knows were seen then); records outside
    it may still come, when it does not.
    """

    field: WindowField
    start: datetime
    end: datetime
    created_outside: tuple[tuple[datetime, datetime], ...] = ()
    active_since: datetime | None = None

    def __str__(self) -> str:
        text = f"{self.field} {self.start.isoformat()}..{self.end.isoformat()}"
        if self.created_outside:
            text += f" created outside {len(self.created_outside)} ranges"
        if self.active_since is not None:
            text += f" active since {self.active_since.isoformat()}"
        return text


@dataclass(frozen=True)
class ClientConfig:
    """How to talk to one account. `token` is kept out of repr, so it cannot reach a log line."""

    base_url: str
    token: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_concurrency: int = 8
    requests_per_second: float | None = None
    max_attempts: int = 8
    retry_budget_seconds: float = 300.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    ca_bundle: str | None = None
    """PEM file of CAs to trust besides the system's (a private CA); TLS is always verified."""
    extra_filters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """One page as the server answered it, with what its `Date` header said of its clock: the
    server's time in epoch seconds (truncated to the second, None without a readable header),
    and ours when the answer arrived."""

    items: list[object]
    server_time: float | None
    received_at: float


@dataclass(frozen=True)
class RecordsBatch:
    """Raw items of `data` from one response, new to this window (deduplicated by `_id`)."""

    window: Window
    records: list[object]


@dataclass(frozen=True)
class WindowDone:
    """Every record of `window` has been yielded in earlier batches."""

    window: Window


Event = RecordsBatch | WindowDone
