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

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def learned(self, facts: dict[str, str]) -> None:
        """What the extraction found the server to do (sort, page size, ...): the first
        extraction's, the run's read of its windows (later ones re-read a few days)."""
        with self._lock:
            for name, value in facts.items():
                self._server.setdefault(name, value)

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
