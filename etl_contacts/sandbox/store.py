"""The sandbox's account: contacts in arrays, indexed by the fields the API filters on.

Two sorted indexes (by createdAt, by lastSeenAt) answer a date-range filter with a binary search,
and give the default sort orders without sorting. Activity keeps them sorted cheaply: a contact
that becomes active moves to the end of the lastSeenAt index (its new value is the largest), and a
new contact is appended to both.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import numpy as np
import orjson

from etl_contacts.sandbox.config import SandboxConfig
from etl_contacts.sandbox.data import STATUSES, generate_times, object_id, render
from etl_contacts.sandbox.filters import Query, matches
from etl_contacts.timestamps import format_ms, to_ms

PRERENDER_STEP = 500


@dataclass
class Page:
    """The encoded records of one page plus what a fault may need (the record before it)."""

    records: list[bytes]
    previous: bytes | None


class ContactStore:
    """Thread-safe state of one sandbox account."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed ^ 0x5EED)
        created, last_seen = generate_times(
            config.contacts,
            config.days,
            to_ms(config.anchor_time),
            config.seed,
            config.bulk_import_share,
        )
        n = config.contacts
        self.created = created
        self.last_seen = last_seen
        self.updated = last_seen.copy()
        self.status = np.random.default_rng(config.seed + 1).integers(
            0, len(STATUSES), size=n, dtype=np.int8
        )
        self.alive = np.ones(n, dtype=bool)
        self.by_created = np.arange(n, dtype=np.int64)
        self.by_last_seen = np.argsort(last_seen, kind="stable").astype(np.int64)
        self.deleted: list[dict[str, str]] = []
        self._cache: dict[int, bytes] = {}
        self._orders: dict[str, tuple[int, np.ndarray]] = {}
        self._version = 0
        threading.Thread(target=self._prerender, daemon=True, name="sandbox-render").start()

    @property
    def size(self) -> int:
        return len(self.created)

    def encoded(self, index: int) -> bytes:
        """A contact's JSON, rendered once and kept until the contact changes."""
        cached = self._cache.get(index)
        if cached is None:
            record = render(
                self.config.seed,
                index,
                int(self.created[index]),
                int(self.last_seen[index]),
                int(self.updated[index]),
                int(self.status[index]),
            )
            # orjson hands back an over-allocated buffer (~8 KB); a copy keeps only the ~900 bytes
            cached = bytes(memoryview(orjson.dumps(record)))
            self._cache[index] = cached
        return cached

    @property
    def rendered(self) -> int:
        """How many contacts have their JSON ready (all of them once warmed up)."""
        return len(self._cache)

    def record(self, index: int) -> dict[str, object]:
        return orjson.loads(self.encoded(index))

    def _prerender(self) -> None:
        """Render every contact in the background, so pages are served from ready-made JSON.

        Rendering is most of the cost of a first page; doing it ahead of time, in small steps
        that let requests through, keeps the sandbox from being what a benchmark measures.
        """
        for start in range(0, self.size, PRERENDER_STEP):
            with self._lock:
                for index in range(start, min(start + PRERENDER_STEP, self.size)):
                    self.encoded(index)

    def page(self, query: Query, page: int) -> Page:
        """The `page`-th page (from 1) of the contacts matching `query`, in the configured sort."""
        with self._lock:
            ordered = self._ordered(query)
            size = self.config.page_size
            start = (page - 1) * size
            chosen = ordered[start : start + size]
            records = [self.encoded(int(i)) for i in chosen]
            previous = self.encoded(int(ordered[start - 1])) if 0 < start <= len(ordered) else None
        return Page(records, previous)

    def _ordered(self, query: Query) -> np.ndarray:
        """Matching contacts in sort order; cached per query until the data next changes."""
        key = query.key
        cached = self._orders.get(key)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        if query.created != (None, None):
            candidates = self._range(self.by_created, self.created, query.created)
        elif query.last_seen != (None, None):
            candidates = self._range(self.by_last_seen, self.last_seen, query.last_seen)
        else:
            candidates = self.by_created
        candidates = self._keep(candidates, query)
        if self.config.sort == "_id":
            ordered = np.sort(candidates)
        else:
            keys = self.created if self.config.sort == "createdAt" else self.last_seen
            # newest first, ties by _id ascending (= index ascending)
            ordered = candidates[np.lexsort((candidates, -keys[candidates]))]
        if len(self._orders) >= 64:
            self._orders.clear()
        self._orders[key] = (self._version, ordered)
        return ordered

    def _range(
        self, index: np.ndarray, values: np.ndarray, bounds: tuple[int | None, int | None]
    ) -> np.ndarray:
        lo, hi = bounds
        sorted_values = values[index]
        left = 0 if lo is None else int(np.searchsorted(sorted_values, lo, side="left"))
        if hi is None:
            right = len(index)
        else:
            side = "right" if self.config.ends_at_inclusive else "left"
            right = int(np.searchsorted(sorted_values, hi, side=side))
        return index[left:right]

    def _keep(self, candidates: np.ndarray, query: Query) -> np.ndarray:
        mask = self.alive[candidates]
        mask &= self._within(self.created[candidates], query.created)
        mask &= self._within(self.last_seen[candidates], query.last_seen)
        kept = candidates[mask]
        if query.needs_records:
            kept = np.array(
                [i for i in kept if matches(self.record(int(i)), query)], dtype=np.int64
            )
        return kept

    def _within(self, values: np.ndarray, bounds: tuple[int | None, int | None]) -> np.ndarray:
        lo, hi = bounds
        mask = np.ones(len(values), dtype=bool)
        if lo is not None:
            mask &= values >= lo
        if hi is not None:
            mask &= (values <= hi) if self.config.ends_at_inclusive else (values < hi)
        return mask

    def act(self) -> None:
        """One request's worth of activity, at the configured rates."""
        config = self.config
        with self._lock:
            if config.activity_rate and self._rng.random() < config.activity_rate:
                self._touch(self._random_alive())
            if config.create_rate and self._rng.random() < config.create_rate:
                self._create()
            if config.delete_rate and self._rng.random() < config.delete_rate:
                self._delete(self._random_alive())

    def _now(self) -> int:
        now = int(time.time() * 1000)
        return max(now, int(self.last_seen[self.by_last_seen[-1]]) + 1)

    def _random_alive(self) -> int:
        while True:
            index = self._rng.randrange(self.size)
            if self.alive[index]:
                return index

    def _touch(self, index: int) -> None:
        self._version += 1
        now = self._now()
        position = int(np.flatnonzero(self.by_last_seen == index)[0])
        self.by_last_seen = np.append(np.delete(self.by_last_seen, position), index)
        self.last_seen[index] = now
        self.updated[index] = now
        if self._rng.random() < 0.5:
            self.status[index] = self._rng.randrange(len(STATUSES))
        self._cache.pop(index, None)

    def _create(self) -> None:
        self._version += 1
        now = self._now()
        index = self.size
        self.created = np.append(self.created, now)
        self.last_seen = np.append(self.last_seen, now)
        self.updated = np.append(self.updated, now)
        self.status = np.append(self.status, np.int8(0))
        self.alive = np.append(self.alive, True)
        self.by_created = np.append(self.by_created, index)
        self.by_last_seen = np.append(self.by_last_seen, index)

    def _delete(self, index: int) -> None:
        self._version += 1
        self.alive[index] = False
        self.deleted.append(
            {"_id": object_id(self.config.seed, index), "deletedAt": format_ms(self._now())}
        )
        self._cache.pop(index, None)

    def truth(self) -> dict[str, object]:
        with self._lock:
            live = np.flatnonzero(self.alive)
            return {
                "contacts": [self.record(int(i)) for i in live],
                "deleted": list(self.deleted),
            }
