"""What a sandbox serves: data size and shape, API quirks, activity and fault rates, presets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from etl_contacts.sandbox.traits import MAX_CONTACTS

DEMO_TOKEN = "5f0c0ffee0ddba11c0ffee00"
Sort = Literal["lastSeenAt", "createdAt", "updatedAt", "_id"]
TwoRanges = Literal["and", "or", "lastSeenAt", "createdAt"]
TWO_RANGES: tuple[TwoRanges, ...] = ("and", "or", "lastSeenAt", "createdAt")
SORTS: tuple[Sort, ...] = ("lastSeenAt", "createdAt", "updatedAt", "_id")
Preset = Literal["calm", "busy", "hostile"]
PRESETS: tuple[Preset, ...] = ("calm", "busy", "hostile")

FAULT_KINDS = (
    "429",  # Too Many Requests with Retry-After, in seconds or as an HTTP date
    "500",
    "502",
    "503",
    "504",
    "reset",  # the socket closed without a response (RST)
    "slow",  # the answer comes after `slow_seconds`, later than a client's read timeout
    "truncated",  # Content-Length promises more than is sent before the socket closes
    "html",  # a 200 whose body is a proxy's HTML error page
    "malformed",  # one broken record among the good ones (never part of the truth)
    "duplicate",  # a record of the neighbouring page served again on this one
)
# Faults only asked for by name (not in FAULT_KINDS nor the hostile preset): those no response
# shows, and a failure dressed as an answer
SILENT_FAULT_KINDS = (
    "hide",  # a record left out of its page, the next one not pulled up: the page is one short
    "empty",  # success with no records: a replica serving an empty copy behind a load balancer
    "unsuccessful",  # a 200 whose envelope says `success: false` (a query that timed out)
)


@dataclass(frozen=True)
class SandboxConfig:
    """A deterministic account: the same seed, anchor, contacts and days give the same contacts.

    Activity rates are expected changes per request (0.1: one per ten requests; 3: three per
    request). Fault rates are probabilities per request, at most one fault per request, so they
    add up to at most 1: `faults={"429": 0.1}` answers one request in ten with a 429.
    """

    contacts: int = 1_000
    days: int = 30
    seed: int = 1
    token: str = field(default=DEMO_TOKEN, repr=False)
    anchor: datetime | None = None  # end of the history; None: today 00:00 UTC
    page_size: int = 20
    page_size_later: int = 0  # from request `page_size_after` on, pages hold this many (0: never)
    page_size_after: int = 0
    page_size_two_ranges: int = 0  # a query with both date ranges gets pages this long (0: same)
    two_ranges: TwoRanges = "and"  # both date ranges in one body: ANDed, ORed, or one applied
    sort: Sort = "lastSeenAt"
    # each end of each date field read its own way: True or False for both fields, or the
    # names of the fields it holds for ("createdAt", "lastSeenAt")
    ends_at_inclusive: bool | tuple[str, ...] = False
    starts_at_exclusive: bool | tuple[str, ...] = False  # startAt matches only later times
    bound_precision_ms: int = 1  # 1000: startAt and endsAt read to the second (ms dropped)
    reverse_sort: bool = False  # the sort backwards: oldest first (_id: newest first)
    bulk_import_share: float = 0.1  # share of contacts imported in batches with one createdAt
    ids_minted_at_import: bool = False  # bulk imports' _ids made at the anchor, not at createdAt
    never_active_share: float = 0.0  # share of contacts never active: lastSeenAt null or absent
    nulls_first: bool = False  # a lastSeenAt sort puts those first (MongoDB: last)
    clock_offset_ms: int = 0  # the server's clock minus ours: its timestamps and Date header
    activity_rate: float = 0.0  # contacts becoming active (lastSeenAt, updatedAt = now)
    agent_change_rate: float = 0.0  # contacts an agent changes (status, agent, tags...: updatedAt)
    create_rate: float = 0.0  # contacts created (createdAt = now)
    delete_rate: float = 0.0  # contacts deleted
    faults: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0  # added to every API request
    jitter_ms: float = 0.0  # plus a uniform random share of this
    slow_seconds: float = 3.0  # how late a "slow" answer comes
    retry_after_seconds: int = 1  # what a 429 asks the client to wait

    def page_size_at(self, requests: int, *, ranges: int = 1) -> int:
        """The page size after this many requests: `page_size`, then `page_size_later` once
        more than `page_size_after` were answered (a server whose page size changes during a
        run: a deployment, a load shedder); `page_size_two_ranges` for a query with `ranges`
        2 (a server that answers each query from the index it picks, each with its own size)."""
        if ranges == 2 and self.page_size_two_ranges:
            return self.page_size_two_ranges
        later = self.page_size_later and requests > self.page_size_after
        return self.page_size_later if later else self.page_size

    def end_inclusive(self, field: str) -> bool:
        """Whether `endsAt` of this date field matches the moment it names."""
        return _holds_for(self.ends_at_inclusive, field)

    def start_exclusive(self, field: str) -> bool:
        """Whether `startAt` of this date field matches only later moments."""
        return _holds_for(self.starts_at_exclusive, field)

    def __post_init__(self) -> None:
        known = FAULT_KINDS + SILENT_FAULT_KINDS
        unknown = set(self.faults) - set(known)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {known}")
        if sum(self.faults.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates are probabilities of one request: their sum is at most 1")
        if self.bound_precision_ms not in (1, 1000):
            raise ValueError("bound_precision_ms is 1 (milliseconds) or 1000 (seconds)")
        _check_ends(self.ends_at_inclusive, self.starts_at_exclusive)
        if self.two_ranges not in TWO_RANGES:
            raise ValueError(f"unknown two_ranges {self.two_ranges!r}; use one of {TWO_RANGES}")
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}; use one of {SORTS}")
        if not 0 <= self.contacts < MAX_CONTACTS // 2:
            raise ValueError(f"contacts must be from 0 to {MAX_CONTACTS // 2 - 1}")
        if self.days < 1 or self.page_size < 1:
            raise ValueError("days and page_size must be at least 1")
        if min(self.page_size_later, self.page_size_after, self.page_size_two_ranges) < 0:
            raise ValueError(
                "page_size_later, page_size_after and page_size_two_ranges are counts: at least 0"
            )
        if not 0 <= self.never_active_share <= 1:
            raise ValueError("never_active_share is a share of the contacts: from 0 to 1")
        rates = (
            self.activity_rate,
            self.agent_change_rate,
            self.create_rate,
            self.delete_rate,
            *self.faults.values(),
        )
        if min(rates) < 0 or min(self.latency_ms, self.jitter_ms, self.slow_seconds) < 0:
            raise ValueError("rates, latencies and delays cannot be negative")
        if self.anchor is not None and self.anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware (UTC)")

    @property
    def anchor_time(self) -> datetime:
        """The end of the generated history: today 00:00 UTC unless given."""
        if self.anchor is not None:
            return self.anchor
        now = datetime.now(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)

    def server_time(self) -> float:
        """The server's clock (seconds since the epoch): one for its data and its headers."""
        return time.time() + self.clock_offset_ms / 1000


def preset(name: Preset, base: SandboxConfig | None = None) -> SandboxConfig:
    """`calm`: a still account; `busy`: steady activity; `hostile`: activity and every fault.

    Hostile rates leave about one request in four failing, so a client that makes 8 attempts
    per request with backoff completes (all 8 fail for one request in ~50,000).
    """
    config = base or SandboxConfig()
    if name == "calm":
        return replace(
            config,
            activity_rate=0.0,
            agent_change_rate=0.0,
            create_rate=0.0,
            delete_rate=0.0,
            faults={},
        )
    busy = replace(config, activity_rate=0.3, create_rate=0.05, delete_rate=0.02)
    if name == "busy":
        return busy
    if name == "hostile":
        return replace(
            busy,
            faults={kind: (0.02 if kind == "slow" else 0.03) for kind in FAULT_KINDS},
            latency_ms=2.0,
            jitter_ms=3.0,
            slow_seconds=2.0,
        )
    raise ValueError(f"unknown preset {name!r}; use one of {PRESETS}")


def _holds_for(ends: bool | tuple[str, ...], field: str) -> bool:
    return ends if isinstance(ends, bool) else field in ends


def _check_ends(*ends: bool | tuple[str, ...]) -> None:
    for named in ends:
        if not isinstance(named, bool) and not set(named) <= {"createdAt", "lastSeenAt"}:
            raise ValueError(f"an end is read per date field, createdAt or lastSeenAt: {named}")
