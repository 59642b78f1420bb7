"""Faults the sandbox injects, drawn from a seeded generator so a failing test can be replayed."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

from etl_contacts.sandbox.config import FAULT_KINDS, SandboxConfig
from etl_contacts.timestamps import format_ms


class FaultPlan:
    """Decides, per request, which fault (if any) to inject, and counts what it injected."""

    def __init__(self, config: SandboxConfig) -> None:
        self._rates = [(kind, config.faults.get(kind, 0.0)) for kind in FAULT_KINDS]
        self._rng = random.Random(config.seed ^ 0xFA017)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.malformed: list[object] = []
        self._serial = 0

    def draw(self) -> str | None:
        with self._lock:
            roll = self._rng.random()
            for kind, rate in self._rates:
                if roll < rate:
                    self.counts[kind] += 1
                    return kind
                roll -= rate
            return None

    def jitter(self, jitter_ms: float) -> float:
        with self._lock:
            return self._rng.random() * jitter_ms

    def malformed_record(self, template: dict[str, object]) -> object:
        """A copy of a good record broken in one of many ways, or a non-object item."""
        with self._lock:
            self._serial += 1
            serial = self._serial
            breaker = self._rng.choice(BREAKERS)
        record = breaker(dict(template), serial)
        self.malformed.append(record)
        return record


def _bad_id(serial: int) -> str:
    return f"ffffffff{serial:016x}"


def _no_id(record: dict[str, object], serial: int) -> object:
    record.pop("_id", None)
    record["uuid"] = f"malformed-{serial}"
    return record


def _with(field: str, value: object) -> Callable[[dict[str, object], int], object]:
    def breaker(record: dict[str, object], serial: int) -> object:
        record["_id"] = _bad_id(serial)
        record[field] = value
        return record

    return breaker


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


BREAKERS: tuple[Callable[[dict[str, object], int], object], ...] = (
    _no_id,
    _with("createdAt", "2024-13-45T99:61:00.000Z"),
    _with("createdAt", 1714150222134),
    _with("lastSeenAt", "yesterday"),
    _with("updatedAt", format_ms(32503680000000)),
    _with("status", {"unexpected": ["object"]}),
    _with("profile", "not an object"),
    _with("profile", {"userDetails": {"userProvidedName": "NUL\x00byte", "tags": ["a\x00b"]}}),
    _with("profile", {"userDetails": {"userProvidedName": "x" * 100_000}}),
    _with("lastMessage", _nested(100)),
    _with("websiteVisits", "many"),
    lambda record, serial: f"not an object {serial}",
    lambda record, serial: [serial, "list item"],
    lambda record, serial: serial,
)
