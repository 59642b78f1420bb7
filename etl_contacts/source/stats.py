"""Counters of one extraction, shared by the worker threads."""

from __future__ import annotations

import threading
import time
from collections import Counter


class ExtractStats:
    """Windows, requests, retries by cause, pages, records, duplicates dropped, seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._server: dict[str, str] = {}
        self._ahead = 0.0  # how far the source's clock was seen ahead of ours, in seconds

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def learned(self, facts: dict[str, str]) -> None:
        """What the extraction found the server to do (sort, page size, ...): the first
        extraction's, the run's read of its windows (later ones re-read a few days)."""
        with self._lock:
            for name, value in facts.items():
                self._server.setdefault(name, value)

    def saw_clock(self, server_time: float, received_at: float) -> None:
        """An answer's `Date` (epoch seconds) and when it arrived, on our clock."""
        with self._lock:
            self._ahead = max(self._ahead, server_time - received_at)

    def now_at_least(self) -> float:
        """Now (epoch seconds) on whichever clock is ahead, ours or the source's as its answers
        showed it: a record the source stamps now is not in the future."""
        with self._lock:
            return time.time() + self._ahead

    def server(self) -> dict[str, str]:
        with self._lock:
            return dict(self._server)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            counts: dict[str, float] = {
                key: self._counts[key]
                for key in ("windows", "requests", "pages", "records", "duplicates_dropped")
            }
            counts.update(self._counts)
            counts["retries"] = sum(v for k, v in self._counts.items() if k.startswith("retry_"))
        counts["seconds"] = round(time.monotonic() - self._started, 3)
        return counts
