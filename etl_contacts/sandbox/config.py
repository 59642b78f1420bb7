"""What a sandbox serves: data size and shape, API quirks, activity and fault rates, presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

DEMO_TOKEN = "5f0c0ffee0ddba11c0ffee00"
Sort = Literal["lastSeenAt", "createdAt", "_id"]
Preset = Literal["calm", "busy", "hostile"]

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "slow",
    "truncated",
    "html",
    "malformed",
    "duplicate",
)


@dataclass(frozen=True)
class SandboxConfig:
    """A deterministic account: the same seed, anchor and sizes give the same contacts.

    Rates are probabilities per request: `activity_rate=0.1` is one contact becoming active per
    ten requests on average; `faults={"429": 0.1}` answers one request in ten with a 429.
    """

    contacts: int = 1_000
    days: int = 30
    seed: int = 1
    token: str = DEMO_TOKEN
    anchor: datetime | None = None
    page_size: int = 20
    sort: Sort = "lastSeenAt"
    ends_at_inclusive: bool = False
    bulk_import_share: float = 0.1
    activity_rate: float = 0.0
    create_rate: float = 0.0
    delete_rate: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    slow_seconds: float = 3.0
    retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")

    @property
    def anchor_time(self) -> datetime:
        """The end of the generated history: today 00:00 UTC unless given."""
        if self.anchor is not None:
            return self.anchor
        now = datetime.now(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)


def preset(name: Preset, base: SandboxConfig | None = None) -> SandboxConfig:
    """`calm`: a still account; `busy`: steady activity; `hostile`: activity and every fault."""
    config = base or SandboxConfig()
    if name == "calm":
        return replace(config, activity_rate=0.0, create_rate=0.0, delete_rate=0.0, faults={})
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
    raise ValueError(f"unknown preset {name!r}; use calm, busy or hostile")
