"""Any order at all: a window whose page 1 is full is cut in two and each part asked again.

It needs nothing of the server but its filters: a part whose page 1 is not full was answered
whole, in one atomic response, and cuts are made at whole seconds near the median of the full
page (a sample of the window), so the parts shrink as fast as the data allows. Cuts are made by
the window's own field: on lastSeenAt a record can only leave a past window, never enter it.
"""

from __future__ import annotations

from collections.abc import Generator
from statistics import median_low

from etl_contacts.source.query import (
    EARLIEST_MS,
    GRANULE_MS,
    LATEST_MS,
    Query,
    Span,
    ceil_granule,
    floor_granule,
)
from etl_contacts.source.window.reader import Reader, Reading
from etl_contacts.source.window.records import value
from etl_contacts.source.window.slice import read_second


def split(read: Reader, query: Query, first: list[object] | None) -> Reading:
    """Every record of `query`, cutting it until page 1 holds the whole part."""
    key = read.window.field
    span = query.span(key)
    lo = EARLIEST_MS if span.lo is None else span.lo
    hi = LATEST_MS if span.hi is None else span.hi
    items = first if first is not None else (yield from read.ask(query, 1)).items
    if not (yield from _full(read, query, items)):
        return
    cut = _cut(items, key, lo, hi)
    if cut is None:  # within one second: no narrower query reads differently
        yield from read_second(read, query, key, floor_granule(lo))
        return
    yield from split(read, query.narrow(key, Span(hi=cut)), None)
    yield from split(read, query.narrow(key, Span(lo=cut)), None)


def _full(read: Reader, query: Query, items: list[object]) -> Generator[list[object], None, bool]:
    """Whether page 1 left records out; probes page 2 until the page size is known."""
    if read.learned.size_of(query.shape) is not None:
        return not (yield from read.ends(query, 1, items))
    if not items:
        return False
    if (yield from read.ask(query, 2)).items:
        read.learned.confirm_full(len(items), query.shape)
        return True
    # page 2 empty says page 1 held everything, unless a record left page 1 between the two
    # answers and pulled one from page 2 onto it: page 1 again shows whether it did
    return (yield from read.ask(query, 1)).new > 0


def _cut(items: list[object], key: str, lo: int, hi: int) -> int | None:
    """A whole second strictly inside [lo, hi) to split at, near the median value of a full
    page (else the middle); None when [lo, hi) lies within one second."""
    first, last = floor_granule(lo) + GRANULE_MS, ceil_granule(hi) - GRANULE_MS
    if first > last:
        return None
    inside = sorted(v for v in (value(r, key) for r in items) if v is not None and lo < v < hi)
    middle = median_low(inside) if inside else (lo + hi) // 2
    return min(max(floor_granule(middle), first), last)
