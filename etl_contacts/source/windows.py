"""Fetch one window completely while the data changes under us.

Page numbers skip records when the data moves: a contact that becomes active jumps to page 1 and
shifts every record behind it. So pages are never numbered, except inside one timestamp:

- Keyset (the server sorts newest first by createdAt or lastSeenAt, learned from its answers):
  ask for page 1 only, then the same query ending at the oldest timestamp `b` seen (`<= b`: ties
  at `b` may have been cut). Each answer is one atomic snapshot of the top of what is left, so a
  record can only be missed by moving *above* the cursor. createdAt never changes, and a record
  leaving a past lastSeenAt window is not in it any more, so the one hole is a createdAt window
  read by lastSeenAt: those records now have lastSeenAt after the sweep began, and catch-up passes
  over `lastSeenAt >= sweep start` repeat until one finds nothing new.
- Split (any other order): a window whose page 1 is full is halved, recursively; a window whose
  page 1 is not full was answered whole, in one atomic response.
- One timestamp holding more than a page (a bulk import) is paged by number, and paged again
  until a pass finds nothing new, which undoes shifts from deletions during the pass.

Bounds: `startAt` is sent a millisecond early and `endsAt` a millisecond late unless the server
has shown it includes `endsAt` (a record equal to it came back); records outside the window are
dropped client-side, duplicates by `_id`. So the result is right whichever way the bounds fall.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import orjson

from etl_contacts.source.learned import Learned
from etl_contacts.source.models import Window
from etl_contacts.source.stats import ExtractStats
from etl_contacts.timestamps import format_ms, parse_ms, to_ms

FIELDS = ("createdAt", "lastSeenAt")
CATCH_UP_MARGIN_MS = 120_000
MAX_PASSES = 8

Fetch = Callable[[dict[str, object], int], list[object]]
Bound = tuple[str, int] | None  # ("lt" | "le", ms) or unbounded


class SortChangedError(Exception):
    """An answer was not in the order the keyset assumed: fall back to splitting."""


class WindowFetcher:
    """Yields the new records of one window, batch by batch (one batch per response)."""

    def __init__(self, fetch: Fetch, window: Window, learned: Learned, stats: ExtractStats) -> None:
        self._fetch = fetch
        self.window = window
        self._field = window.field
        self._lo = to_ms(window.start)
        self._hi = to_ms(window.end)
        self._learned = learned
        self._stats = stats
        self._ids: set[str] = set()
        self._junk: set[bytes] = set()
        self._out: list[list[object]] = []

    def batches(self) -> Iterator[list[object]]:
        first = self._request({self._field: self._range(self._lo, ("lt", self._hi))}, 1)
        yield from self._drain()
        if self._learned.is_short(len(first)):
            return
        key = self._sort_key(first)
        if key is None:
            yield from self._split(self._lo, self._hi)
            return
        try:
            if key == self._field:
                yield from self._keyset(key, {}, self._lo, ("lt", self._hi), first)
            else:
                yield from self._keyset_with_catch_up(key, first)
        except SortChangedError:
            yield from self._split(self._lo, self._hi)

    def _keyset_with_catch_up(self, key: str, first: list[object]) -> Iterator[list[object]]:
        base = {self._field: self._range(self._lo, ("lt", self._hi))}
        since = _now_ms() - CATCH_UP_MARGIN_MS
        yield from self._keyset(key, base, None, None, first)
        for _ in range(MAX_PASSES):
            before = len(self._ids)
            started = _now_ms() - CATCH_UP_MARGIN_MS
            yield from self._keyset(key, base, since, None, None)
            if len(self._ids) == before:
                return
            since = started
        raise SortChangedError

    def _keyset(
        self,
        key: str,
        base: dict[str, object],
        lo: int | None,
        upper: Bound,
        first: list[object] | None,
    ) -> Iterator[list[object]]:
        items = first
        previous_length = 0
        while True:
            if items is None:
                items = self._request({**base, key: self._range(lo, upper)}, 1)
                yield from self._drain()
            keys = [k for k in (self._key(r, key) for r in items) if k is not None]
            if keys != sorted(keys, reverse=True):
                raise SortChangedError
            if upper is not None and any(_above(k, upper) for k in keys):
                if self._learned.ends_inclusive:
                    raise SortChangedError
                self._learned.learn_ends_inclusive()
                items = None
                continue
            inside = [k for k in keys if lo is None or k >= lo]
            if not inside or self._learned.is_short(len(items)):
                return
            oldest = min(inside)
            if upper == ("le", oldest):
                yield from self._slice(key, base, oldest)
                upper = ("lt", oldest)
            else:
                if upper is not None and upper[0] == "le":
                    # records older than the last answer's oldest exist: that answer was full
                    self._learned.confirm_full(previous_length)
                upper = ("le", oldest)
            previous_length = len(items)
            items = None

    def _split(self, lo: int, hi: int) -> Iterator[list[object]]:
        filters = {self._field: self._range(lo, ("lt", hi))}
        full = self._full(self._request(filters, 1), filters)
        yield from self._drain()
        if not full:
            return
        if hi - lo <= 1:
            yield from self._slice(self._field, {}, lo)
            return
        middle = (lo + hi) // 2
        yield from self._split(lo, middle)
        yield from self._split(middle, hi)

    def _full(self, items: list[object], filters: dict[str, object]) -> bool:
        """Whether page 1 left records out; probes page 2 until the page size is known."""
        if self._learned.is_short(len(items)):
            return False
        if self._learned.page_size is not None:
            return True
        if self._request(filters, 2):
            self._learned.confirm_full(len(items))
            return True
        return False

    def _slice(self, key: str, base: dict[str, object], moment: int) -> Iterator[list[object]]:
        """Every record whose `key` is exactly `moment`, by page number, until a pass adds none."""
        filters = {**base, key: self._range(moment, ("le", moment))}
        for _ in range(MAX_PASSES):
            before = len(self._ids)
            page = 1
            while True:
                items = self._request(filters, page)
                yield from self._drain()
                if self._learned.is_short(len(items)) or not items:
                    break
                page += 1
            if len(self._ids) == before:
                return

    def _request(self, filters: dict[str, object], page: int) -> list[object]:
        items = self._fetch(filters, page)
        self._stats.add("pages")
        fresh: list[object] = []
        for item in items:
            record_id = item.get("_id") if isinstance(item, dict) else None
            moment = self._key(item, self._field)
            if isinstance(record_id, str) and moment is not None:
                if not self._lo <= moment < self._hi:
                    continue
                if record_id in self._ids:
                    self._stats.add("duplicates_dropped")
                    continue
                self._ids.add(record_id)
            else:
                fingerprint = _fingerprint(item)
                if fingerprint in self._junk:
                    continue
                self._junk.add(fingerprint)
            fresh.append(item)
        if fresh:
            self._out.append(fresh)
        return items

    def _drain(self) -> Iterator[list[object]]:
        while self._out:
            batch = self._out.pop(0)
            self._stats.add("records", len(batch))
            yield batch

    def _range(self, lo: int | None, upper: Bound) -> dict[str, str]:
        start = "" if lo is None else format_ms(lo - 1)
        if upper is None:
            return {"startAt": start, "endsAt": ""}
        kind, moment = upper
        inclusive = self._learned.ends_inclusive
        if kind == "le":
            end = moment if inclusive else moment + 1
        else:
            end = moment - 1 if inclusive else moment
        return {"startAt": start, "endsAt": format_ms(end)}

    @staticmethod
    def _key(item: object, key: str) -> int | None:
        return parse_ms(item.get(key)) if isinstance(item, dict) else None

    def _sort_key(self, items: list[object]) -> str | None:
        """The field the server sorts by (newest first), if this page shows it unambiguously."""
        if self._learned.sort_field is not None:
            return self._learned.sort_field
        sorted_by = []
        for key in FIELDS:
            keys = [k for k in (self._key(r, key) for r in items) if k is not None]
            if len(set(keys)) >= 3 and keys == sorted(keys, reverse=True):
                sorted_by.append(key)
        if len(sorted_by) != 1:
            return None
        self._learned.learn_sort(sorted_by[0])
        return sorted_by[0]


def _fingerprint(item: object) -> bytes:
    """Identity of a record without a usable `_id`, so it is handed over once per window."""
    try:
        return orjson.dumps(item, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: still one identity
        return repr(item).encode()


def _above(moment: int, upper: tuple[str, int]) -> bool:
    kind, bound = upper
    return moment > bound or (kind == "lt" and moment == bound)


def _now_ms() -> int:
    return int(time.time() * 1000)
