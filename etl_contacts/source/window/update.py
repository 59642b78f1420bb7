"""Answers sorted by updatedAt, newest first (the most recently changed on top): paged by number.

No range narrows by updatedAt, so no keyset follows this order. Page numbers do, and what a
change does to them is what makes that complete:

- A change (activity, an agent's edit, a new contact) moves a record to page 1. The records
  above its old place move one place down, onto the next page: read twice, never skipped. The
  record itself is on the top pages, which a pass begun after the change reads.
- A deletion moves the records after it one place up. One of them crosses onto a page already
  read, and only a pass begun after the deletion finds it there.

So the window is paged until a pass finds nothing new (the second, unless the account changed
under the first), then its top is read again down to the records changed before that pass
began: one changed during both passes, before each reached it, is there. That is about twice
the page floor, where cutting the window until each part fits on one page (`split`) took 5.35
times it. Every page is checked against the order, and against the page before it (the
reader's place continues where that page ended); an answer out of order is asked again once,
then `SortChangedError` hands the window to `split`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

from etl_contacts.source.errors import NotConvergedError, SortChangedError
from etl_contacts.source.query import Query
from etl_contacts.source.window.keyset import UPDATED_AT
from etl_contacts.source.window.reader import MAX_PASSES, Reader, Reading
from etl_contacts.source.window.records import earliest, value


def by_update(read: Reader, query: Query, first: list[object] | None) -> Reading:
    """Passes by page number until one finds nothing new, then the top once more.

    In a window already closed (no contact can be created in it) a pass after the first stops
    at the page the pass before ended on, unless that page has grown: changes only move records
    toward page 1, deletions only shorten the listing, and a record a deletion moved past the
    reader lies on a page before the one it was read after.
    """
    end: End | None = None
    for done in range(MAX_PASSES):
        clock = read.learned.server_now_at_least()
        before = read.seen
        top, last = yield from _pass(read, query, first if done == 0 else None, end=end)
        if done and read.seen == before:
            yield from _top(read, query, earliest(clock, _newest(top)))
            return
        end = last if read.closed(query) else None
    raise NotConvergedError(
        f"{read.window}: records kept shifting between pages for {MAX_PASSES} passes"
    )


class End(NamedTuple):
    """The last page a pass read that held records: its number and length."""

    page: int
    length: int


def _pass(
    read: Reader,
    query: Query,
    first: list[object] | None,
    *,
    since: int | None = None,
    end: End | None = None,
) -> Generator[list[object], None, tuple[list[object], End | None]]:
    """Pages from 1 to the end of the listing; with `since`, to the first page that reaches
    below it (everything changed since then lies above); with `end`, to that page unless it
    grew. Returns page 1 and where the pass ended."""
    page, items, above = 1, first, None
    top: list[object] = []
    last: End | None = None
    while True:
        if items is None:
            items = (yield from read.ask(query, page)).items
        try:
            values = _in_order(items, above)
        except SortChangedError:
            read.stats.add("pages_asked_again")
            items = (yield from read.ask(query, page)).items
            values = _in_order(items, above)
        if page == 1:
            top = items
        if items:
            last = End(page, len(items))
        if since is not None and values and values[-1] < since:
            return top, last
        if end is not None and page == end.page and len(items) <= end.length:
            return top, last
        if (yield from read.ends(query, page, items)):
            return top, last
        above = values[-1] if values else above
        page, items = page + 1, None


def _top(read: Reader, query: Query, since: int | None) -> Reading:
    """The records changed since `since`, until a read of them finds nothing new for certain.

    A read of one page is a snapshot: finding nothing new there ends it. One of several pages
    misses a record changed again after its page 1, so finding nothing new there ends it only
    when the read before found nothing new either (as `activity`'s catch-up). Without any bound
    on the server's time (no `Date` header, no updatedAt seen) it reads the whole window again.
    """
    settled = False
    for _ in range(MAX_PASSES):
        clock = read.learned.server_now_at_least()
        before = read.seen
        top, last = yield from _pass(read, query, None, since=since)
        found = read.seen > before
        if not found and (settled or last is None or last.page == 1):
            return
        settled = not found
        since = earliest(clock, _newest(top))
    raise NotConvergedError(
        f"{read.window}: still finding changed records after {MAX_PASSES} reads of the top"
    )


def _in_order(items: list[object], above: int | None) -> list[int]:
    """The page's updatedAt values, newest first and none newer than the end of the page before
    (a change moves a record to page 1, never onto a later page); raises SortChangedError."""
    values = [v for v in (value(r, UPDATED_AT) for r in items) if v is not None]
    if values != sorted(values, reverse=True) or (
        above is not None and values and values[0] > above
    ):
        raise SortChangedError(items)
    return values


def _newest(items: list[object]) -> int | None:
    return max((v for v in (value(r, UPDATED_AT) for r in items) if v is not None), default=None)
