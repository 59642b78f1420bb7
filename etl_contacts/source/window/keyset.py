"""Answers sorted by a date field: ask page 1 only, then the same query narrowed past the last
record seen. Each answer is an atomic snapshot of the top of what is left, so a record is missed
only by moving across the cursor, which createdAt never does (lastSeenAt does: see `activity`).

The cursor moves by whole seconds, which every server reads exactly, and keeps the second of the
last record seen, whose other records the answer may have cut. Every answer is checked against
the order assumed: one out of order is asked again (a record misplaced once is a glitch: on
make conformance's servers it sent a window to `split` on most loads), and a second answer
out of order raises `SortChangedError`, which hands the window to `split`. A listing sorted by
`_id` looks sorted by createdAt while ids follow creation: `reached` proves a createdAt keyset
met every record until an answer shows the order is not by `_id`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Literal

from etl_contacts.source.errors import SortChangedError
from etl_contacts.source.learned import Order
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT
from etl_contacts.source.query import GRANULE_MS, Query, Span, floor_granule
from etl_contacts.source.window.reader import Reader, Reading
from etl_contacts.source.window.records import by_id, never_active, ordered, value
from etl_contacts.source.window.slice import read_second
from etl_contacts.source.window.split import split

BY_ACTIVITY = Order(LAST_SEEN_AT, descending=True)
UPDATED_AT = "updatedAt"


End = Literal["asked", "tail", "reached"]
"""Who proves where a keyset's listing ends: the keyset, asking the page after a short one;
the caller, reading the listing's last pages by number (the never-active tail); or, once the
keyset narrowed, the caller's `reached`, which reads them all the same."""


def keyset(
    read: Reader,
    query: Query,
    order: Order,
    first: list[object] | None,
    *,
    end: End = "asked",
    first_of: Query | None = None,
) -> Generator[list[object], None, bool]:
    """Every record of `query` with a value of `order.field`, by narrowing the range; returns
    whether it narrowed (else page 1 held the whole listing).

    An answer that lies within one second is paged by number (`read_second`), then left behind.
    A page that looks like the last ends the keyset on proof (`Reader.ends`), or, by `end`, on
    being shorter than the confirmed page size: the caller then reads the listing's last pages
    by number, to an empty page, which holds whatever a page mistaken for the last left out
    (`reached` fails on it: the window is split).

    `first_of`: the query `first` answered, when not `query` (`by_activity` hands the window's
    own page 1 to the keyset on its active contacts): a server may page it by another size, so
    it is judged by that query's, and proven the last by that query's next page.
    """
    key, descending = order
    cursor, items = query, first
    answered = first_of or query  # the query `items` answered
    cut: tuple[Query, int, int] | None = None  # the previous answer: query, length, second
    while True:
        given = items
        items, values = yield from _answer(read, cursor, items, order)
        if items is not given:
            answered = cursor
        inside = [v for v in values if cursor.span(key).contains(v)]
        if cut is not None and any(
            (v < cut[2]) if descending else (v >= cut[2] + GRANULE_MS) for v in inside
        ):
            yield from _was_full(read, *cut[:2])
        if not items:
            return cursor is not query
        caller_proves = end == "tail" or (end == "reached" and cursor is not query)
        if caller_proves and read.learned.is_short(len(items), answered.shape):
            return cursor is not query
        if (yield from read.ends(answered, 1, items)):
            return cursor is not query
        if not inside:  # a full page of what the bounds' widening let in: no order helps
            yield from split(read, cursor, items)
            return True
        second = floor_granule(resume_at(read, inside[-1], items, order))
        if floor_granule(inside[0]) == second:
            yield from read_second(read, cursor, key, second)
            after = Span(hi=second) if descending else Span(lo=second + GRANULE_MS)
            cut = None
        else:
            after = Span(hi=second + GRANULE_MS) if descending else Span(lo=second)
            cut = (answered, len(items), second)
        narrower = cursor.narrow(key, after)
        if narrower.span(key) == cursor.span(key):  # no progress: no order helps
            yield from split(read, cursor, items)
            return True
        cursor = answered = narrower
        if cursor.empty:
            return True
        items = None


def _answer(
    read: Reader, cursor: Query, items: list[object] | None, order: Order
) -> Generator[list[object], None, tuple[list[object], list[int]]]:
    """The answer at the cursor (asked, unless given) and its values, in order: one out of order
    is asked again, a second raises SortChangedError. One sorted by createdAt and not by `_id`,
    asked again, shows the server sorts by createdAt (`reached` is then no longer needed for the
    run): once, a record served by mistake (the copy of another under an id of its own) made
    the run drop the proof, and lose an import whose ids were minted later."""
    if items is None:
        items = (yield from read.ask(cursor, 1)).items
    try:
        values = ordered(items, order)
    except SortChangedError:
        read.stats.add("pages_asked_again")
        items = (yield from read.ask(cursor, 1)).items
        values = ordered(items, order)
    if (
        order.field == CREATED_AT
        and not read.learned.not_by_id
        and not by_id(items, order.descending)
    ):
        read.stats.add("pages_asked_again")
        if not by_id((yield from read.ask(cursor, 1)).items, order.descending):
            read.learned.learn_not_by_id()
    return items, values


def reached(read: Reader, query: Query, listed: int) -> Reading:
    """Proof that a createdAt keyset reached every record of `query`: read by page number from
    the page where `listed` records would end, to an empty page, the listing holds no record
    the keyset did not meet, every page but its last is as long as the page size (which may
    have changed: then that page is past the end, or not the last, and no position can be
    told), and it ends within `listed`.
    Else SortChangedError (the window is then split), once the pages were read twice (one
    answer may repeat a record); records the keyset never met, in two windows, also read the
    run's later windows by split.

    A listing sorted by `_id` looks sorted by createdAt while ids follow creation, and a keyset
    narrowed past a contact whose id was minted later (an import) never meets it: the narrowed
    answers leave it out, each in order. Needed only until an answer sorted by createdAt has
    shown it is not sorted by `_id` too, and only where no contact can be created any more.
    Two requests, mostly.
    """
    size = read.learned.likely_size(query.shape)
    first = max(1, -(-listed // size))
    for _ in range(2):
        page, lengths = first, list[int]()
        while True:
            answer = yield from read.ask(query, page)
            if answer.new:  # the order is not creation's (twice: no window is read by keyset)
                read.learned.learn_by_id()
                raise SortChangedError(answer.items)
            if not answer.items or (lengths and lengths[-1] != size):
                break  # the end, or a page before it not as long as the page size
            lengths.append(len(answer.items))
            page += 1
        whole = not answer.items and lengths and lengths[:-1] == [size] * (len(lengths) - 1)
        if whole and (first - 1) * size + sum(lengths) <= listed:
            return
        read.stats.add("pages_asked_again")
    raise SortChangedError()


def _was_full(read: Reader, query: Query, length: int) -> Reading:
    """An answer of `length` records left some out: it was a full page. Shorter than the page
    size, it lost one on its way (a record hidden from one answer is not missing from the
    next), and it is asked again before the keyset leaves it behind for good."""
    size = read.learned.size_of(query.shape)
    read.learned.confirm_full(length, query.shape)
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
