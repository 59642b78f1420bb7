"""Answers sorted by a date field: ask page 1 only, then the same query narrowed past the last
record seen. Each answer is an atomic snapshot of the top of what is left, so a record is missed
only by moving across the cursor, which createdAt never does (lastSeenAt does: see `activity`).

The cursor moves by whole seconds, which every server reads exactly, and keeps the second of the
last record seen, whose other records the answer may have cut. Every answer is checked against
the order assumed: one out of order is asked again (a record misplaced once is a glitch: on
make conformance's servers it sent a window to `split` on most loads), and a second answer
out of order raises `SortChangedError`, which hands the window to `split`.
"""

from __future__ import annotations

from etl_contacts.source.errors import SortChangedError
from etl_contacts.source.learned import Order
from etl_contacts.source.models import LAST_SEEN_AT
from etl_contacts.source.query import GRANULE_MS, Query, Span, floor_granule
from etl_contacts.source.window.reader import Reader, Reading
from etl_contacts.source.window.records import never_active, ordered, value
from etl_contacts.source.window.slice import read_second
from etl_contacts.source.window.split import split

BY_ACTIVITY = Order(LAST_SEEN_AT, descending=True)
UPDATED_AT = "updatedAt"


def keyset(
    read: Reader, query: Query, order: Order, first: list[object] | None, *, tail_read: bool = False
) -> Reading:
    """Every record of `query` with a value of `order.field`, by narrowing the range.

    An answer that lies within one second is paged by number (`read_second`), then left behind.
    A page that looks like the last ends the keyset on proof (`Reader.ends`), or, with
    `tail_read`, on being shorter than the confirmed page size: the caller then reads the
    listing's last pages by number, to an empty page, which holds whatever a page mistaken for
    the last left out.
    """
    key, descending = order
    cursor, items = query, first
    cut: tuple[Query, int, int] | None = None  # the previous answer: query, length, second
    while True:
        if items is None:
            items = (yield from read.ask(cursor, 1)).items
        try:
            values = ordered(items, order)
        except SortChangedError:
            read.stats.add("pages_asked_again")
            items = (yield from read.ask(cursor, 1)).items
            values = ordered(items, order)
        inside = [v for v in values if cursor.span(key).contains(v)]
        if cut is not None and any(
            (v < cut[2]) if descending else (v >= cut[2] + GRANULE_MS) for v in inside
        ):
            yield from _was_full(read, *cut[:2])
        if not items:
            return
        if tail_read and read.learned.is_short(len(items)):
            return
        if (yield from read.ends(cursor, 1, items)):
            return
        if not inside:  # a full page of what the bounds' widening let in: no order helps
            yield from split(read, cursor, items)
            return
        second = floor_granule(resume_at(read, inside[-1], items, order))
        if floor_granule(inside[0]) == second:
            yield from read_second(read, cursor, key, second)
            after = Span(hi=second) if descending else Span(lo=second + GRANULE_MS)
            cut = None
        else:
            after = Span(hi=second + GRANULE_MS) if descending else Span(lo=second)
            cut = (cursor, len(items), second)
        narrower = cursor.narrow(key, after)
        if narrower.span(key) == cursor.span(key):  # no progress: no order helps
            yield from split(read, cursor, items)
            return
        cursor = narrower
        if cursor.empty:
            return
        items = None


def _was_full(read: Reader, query: Query, length: int) -> Reading:
    """An answer of `length` records left some out: it was a full page. Shorter than the page
    size, it lost one on its way (a record hidden from one answer is not missing from the
    next), and it is asked again before the keyset leaves it behind for good."""
    size = read.learned.page_size
    read.learned.confirm_full(length)
    if size is not None and length < size:
        read.stats.add("pages_asked_again")
        yield from read.ask(query, 1)


def resume_at(read: Reader, last: int, items: list[object], order: Order) -> int:
    """Where the next answer of a keyset must begin so that nothing is skipped.

    An inbox sorted by updatedAt looks sorted by lastSeenAt (updatedAt is never earlier), and
    what follows its page has an updatedAt, so a lastSeenAt, at most the page's lowest
    updatedAt: until an answer has shown the order is not by updatedAt, resume there.
    """
    if order != BY_ACTIVITY or read.learned.not_by_update:
        return last
    updated = [v for v in (value(r, UPDATED_AT) for r in items if not never_active(r)) if v]
    if updated != sorted(updated, reverse=True):
        read.learned.learn_not_by_update()
        return last
    return max(last, min(updated, default=last))
