"""Faults the sandbox injects, drawn from a seeded generator so a failing run can be replayed.

With one client asking one request after another, the same seed gives the same faults on the
same requests. Malformed records are copies of good ones broken in one way each; their `_id`
(when they have one) starts with ffffffff, which no sandbox contact's does before 2106. Hidden
records are listed by `_id`: nothing in a response tells a client one is missing.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate

import orjson

from etl_contacts.sandbox.config import FAULT_KINDS, SILENT_FAULT_KINDS, SandboxConfig

Breaker = Callable[[dict[str, object], int], object]
Clock = Callable[[], float]  # the server's time, in seconds since the epoch


class FaultPlan:
    """Decides, per request, which fault (if any) to inject, and counts what was injected."""

    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        """`clock`: the server's, when not the configured one (the store's, with its days)."""
        self._config = config
        self._clock = clock or config.server_time
        kinds = FAULT_KINDS + SILENT_FAULT_KINDS
        self._rates = [(kind, config.faults.get(kind, 0.0)) for kind in kinds]
        self._rng = random.Random(config.seed ^ 0xFA017)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._malformed: list[object] = []
        self._hidden: list[str] = []

    def draw(self) -> str | None:
        """The fault this request gets, if any; count it with `injected` once it is applied."""
        with self._lock:
            roll = self._rng.random()
            for kind, rate in self._rates:
                if roll < rate:
                    return kind
                roll -= rate
            return None

    def injected(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def delay_seconds(self) -> float:
        """Latency for this request: the fixed part plus a random share of the jitter."""
        config = self._config
        if not config.jitter_ms:
            return config.latency_ms / 1000
        with self._lock:
            return (config.latency_ms + self._rng.random() * config.jitter_ms) / 1000

    def retry_after(self) -> str:
        """A Retry-After value: seconds, or (one time in three) the same moment as an HTTP date."""
        seconds = self._config.retry_after_seconds
        with self._lock:
            as_date = self._rng.random() < 1 / 3
        moment = self._clock() + seconds  # a date by the server's clock, as sent
        return formatdate(moment, usegmt=True) if as_date else str(seconds)

    def malformed_record(self, template: dict[str, object]) -> object:
        """A copy of a good record broken in one of many ways, or an item that is no object."""
        with self._lock:
            serial = len(self._malformed) + 1
            breaker = self._rng.choice(BREAKERS)
            record = breaker(dict(template), serial)
            self._malformed.append(record)
            self._counts["malformed"] += 1
        return record

    def hide(self, records: list[bytes]) -> list[bytes]:
        """The page without one of its records, its neighbours where they were.

        A record is hidden from one answer only (a lost record, not a missing one), so the
        page is left whole when the record drawn was hidden before.
        """
        with self._lock:
            position = self._rng.randrange(len(records))
            record_id = orjson.loads(records[position])["_id"]
            if record_id in self._hidden:
                return records
            self._hidden.append(record_id)
            self._counts["hide"] += 1
        return records[:position] + records[position + 1 :]

    def report(self) -> dict[str, object]:
        with self._lock:
            return {
                "malformed": list(self._malformed),
                "hidden": list(self._hidden),
                "faults": dict(self._counts),
            }


def _no_id(record: dict[str, object], serial: int) -> object:
    record.pop("_id", None)
    record["uuid"] = f"malformed-{serial}"
    return record


def _with(field: str, value: object) -> Breaker:
    def breaker(record: dict[str, object], serial: int) -> object:
        record["_id"] = f"ffffffff{serial:016x}"
        record[field] = value
        return record

    return breaker


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


BREAKERS: tuple[Breaker, ...] = (
    _no_id,
    _with("_id", 12345),
    _with("createdAt", "2024-13-45T99:61:00.000Z"),
    _with("createdAt", 1714150222134),
    _with("createdAt", None),
    _with("lastSeenAt", "yesterday"),
    _with("updatedAt", "9999-12-31T23:59:59.999Z"),
    _with("status", {"unexpected": ["object"]}),
    _with("isOnline", "yes"),
    _with("segments", "not-a-list"),
    _with("profile", "not an object"),
    _with("profile", {"userDetails": {"userProvidedName": "NUL\x00byte", "tags": ["a\x00b"]}}),
    _with("profile", {"userDetails": {"userProvidedName": "x" * 100_000}}),
    _with("profile", {"userDetails": {"attributes": {"key": "not", "value": "a list"}}}),
    _with("lastMessage", _nested(100)),
    _with("websiteVisits", "many"),
    lambda _record, serial: f"not an object {serial}",
    lambda _record, serial: [serial, "list item"],
    lambda _record, serial: serial,
    lambda _record, _serial: None,
)
