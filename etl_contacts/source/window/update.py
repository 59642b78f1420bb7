"""Answers sorted by updatedAt, newest first (the most recently changed on top): paged by number.

No range narrows by updatedAt, so no keyset follows this order. Page numbers do, and what a
change does to them is what makes that complete:

- A change (activity, an agent's edit, a new contact) moves a record to page 1. The records
  above its old place move one place down, so a page may begin with records the page before
  ended with: read twice, never skipped. The record itself is on the top pages, which a pass
  begun after the change reads.
- A deletion moves the records after it one place up. One of them crosses onto a page already
  read, and only a pass begun after the deletion finds it there.

So the window is paged again while a pass finds records that did not change meanwhile (what a
deletion hid from the pass before) and, once no contact can enter the listing any more, while
the listing's length changed between the ends of two passes (a deletion during the pass that
just ended), unless two passes in a row found nothing hidden. Then its top is read down to the
records changed before that last pass began. That is about twice the page floor, where cutting
the window until each part fits on one page (`split`) took 5.35 times it.

Left to the next read of the day: a record changed at the wrong moment of every pass and of
every read of the top; one a deletion (or, in a past lastSeenAt window, activity taking a
contact out) hid from two passes in a row, in a listing still open (today's) or while a contact
a data fix moved into it kept its length; one an answer left out where no other pass found it,
or that answers from replicas lagging behind one another placed apart; answers empty for a
while (an outage: every strategy takes an empty page for the end; the proof of deletes holds
stored contacts); ties on one updatedAt the server orders differently from one answer to the
next (`split` cannot read those either). Every page is checked against the order, and
against the page before it; an answer out of order is asked again once, then
`SortChangedError` hands the window to `split`.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass

from etl_contacts.source.errors import NotConvergedError, SortChangedError
from etl_contacts.source.query import Query
from etl_contacts.source.window.keyset import UPDATED_AT
from etl_contacts.source.window.reader import MAX_PASSES, Reader, Reading
from etl_contacts.source.window.records import earliest, value
from etl_contacts.source.window.slice import UNKNOWN_CLOCK_MARGIN_MS


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass over the listing saw."""

    top: list[object]
    """Its page 1."""
    end: tuple[int, int, int] | None
    """Where it ended: the number of the last page read that held records, that page's length
    and page 1's length. Two passes that end alike, with as many records per page, saw listings
    of one length. None when no page held any, or when a page before the last was not as long
    as page 1 (an answer left a record out, or added one: no proof of a length). The last
    page's length is one answer's word: one that left a record out there is not seen."""
    unchanged: int
    """Records new to the window, and older than the bound the pass was given: unchanged since
    the pass before began, so hidden from it (by a deletion, or by the answer)."""


def by_update(read: Reader, query: Query, first: list[object] | None) -> Reading:
    """Passes by page number until one is proven whole, then the top once more."""
    before: Pass | None = None
    bound: int | None = None
    settled = False  # the pass before found nothing a deletion hid
    for done in range(MAX_PASSES):
        clock = read.learned.server_now_at_least()
        closed = read.closed(query)  # no contact can enter the listing during this pass
        this = yield from _pass(
            read,
            query,
            first if done == 0 else None,
            bound=bound,
            before=before.end if before is not None and closed else None,
        )
        if _whole(this, before, closed, settled):
            yield from _top(read, query, earliest(clock, _newest(this.top)))
            return
        settled = before is not None and not this.unchanged
        before, bound = this, earliest(clock, _newest(this.top))
    raise NotConvergedError(
        f"{read.window}: records kept shifting between pages for {MAX_PASSES} passes"
    )


def _whole(this: Pass, before: Pass | None, closed: bool, settled: bool) -> bool:
    """Whether a pass after the first left nothing a deletion hid: it found no record that was
    unchanged yet missing from the pass before and, where no contact can enter the listing, the
    listing's length did not change while it was read (no deletion during it), or the pass
    before found none either (a deletion then hid a record from two passes in a row)."""
    if before is None or this.unchanged:
        return False
    return settled or not closed or (this.end is not None and this.end == before.end)


def _pass(
    read: Reader,
    query: Query,
    first: list[object] | None,
    *,
    bound: int | None = None,
    since: int | None = None,
    before: tuple[int, int, int] | None = None,
) -> Generator[list[object], None, Pass]:
    """Pages from 1 to the end of the listing; with `since`, to the first page that reaches
    below it (everything changed since then lies above); with `before`, where the pass before
    ended on a short page, to that page unless it grew (the empty page after it is asked only
    then)."""
    clock = read.learned.server_now_at_least()
    page, items = 1, first
    top: list[object] = []
    read_here: set[object] = set()  # a change moves records of this pass a page down
    above: int | None = None  # the oldest updatedAt of the page before
    began: int | None = None  # the server's time as the pass began, or what page 1 shows of it
    end: tuple[int, int, int] | None = None
    alike = True  # every page before the last as long as page 1
    unchanged = 0
    while True:
        if items is None:
            items, older = yield from _ask(read, query, page, bound)
            unchanged += older
        try:
            values = _in_order(items, above, read_here, began)
        except SortChangedError:
            read.stats.add("pages_asked_again")
            items, older = yield from _ask(read, query, page, bound)
            unchanged += older
            values = _in_order(items, above, read_here, began)
        if page == 1:
            top = items
            began = _newest(top) if clock is None else clock
        elif items and end is not None:  # records after it: the page before was full
            read.learned.confirm_full(end[1], query.shape)
            alike = alike and end[1] == end[2]  # else an answer left one out, or added one
        if items:
            end = (page, len(items), len(top))
        read_here.update(r.get("_id") for r in items if isinstance(r, dict))
        if since is not None and values and values[-1] < since:
            return Pass(top, end, unchanged)
        if before is not None and end is not None and alike and _no_longer(end, before):
            return Pass(top, end, unchanged)
        if (yield from read.ends(query, page, items)):
            return Pass(top, end if alike else None, unchanged)
        above = values[-1] if values else above
        page, items = page + 1, None


def _no_longer(end: tuple[int, int, int], before: tuple[int, int, int]) -> bool:
    """Whether this pass, reading the page the pass before ended on (short, so the last), with
    as many records per page, finds it no longer: nothing lies after it."""
    page, length, size = end
    return page == before[0] and size == before[2] and length <= before[1] < size


def _ask(
    read: Reader, query: Query, page: int, bound: int | None
) -> Generator[list[object], None, tuple[list[object], int]]:
    """One page, and how many of its records new to the window are older than `bound`."""
    asking = read.ask(query, page)
    older = 0
    while True:
        try:
            batch = next(asking)
        except StopIteration as answered:
            return answered.value.items, older
        older += sum(1 for r in batch if _older(r, bound))
        yield batch


def _older(item: object, bound: int | None) -> bool:
    updated = value(item, UPDATED_AT)
    return updated is not None and (bound is None or updated < bound)


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
        this = yield from _pass(read, query, None, since=since)
        found = read.seen > before
        if not found and (settled or this.end is None or this.end[0] == 1):
            return
        settled = not found
        since = earliest(clock, _newest(this.top))
    raise NotConvergedError(
        f"{read.window}: still finding changed records after {MAX_PASSES} reads of the top"
    )


def _in_order(
    items: list[object], above: int | None, read_here: set[object], began: int | None
) -> list[int]:
    """The page's updatedAt values, newest first; raises SortChangedError when they are not, or
    when a record is newer than the end of the page before though neither this pass read it
    nor did it change during the pass. Changes during the pass move records down a page: those
    this pass read, and changed ones that yet more changes pushed below page 1. (`began` is the
    server's time alone when known, not the earlier of it and page 1's newest as the passes'
    bounds are: a lenient check here costs no record, a lenient bound could.)"""
    values = [v for v in (value(r, UPDATED_AT) for r in items) if v is not None]
    if values != sorted(values, reverse=True):
        raise SortChangedError(items)
    if above is None:
        return values
    for item in items:
        updated = value(item, UPDATED_AT)
        if updated is None or updated <= above or (began is not None and updated >= began):
            continue
        if isinstance(item, dict) and item.get("_id") not in read_here:
            raise SortChangedError(items)
    return values


def _newest(items: list[object]) -> int | None:
    """The newest updatedAt of a page: the server's time at least, as it answered. A date more
    than a day ahead of ours is a record's error (a `no_future_timestamps` failure), not a
    time: taken for one, it would end a read of the top before what changed since."""
    ahead = int(time.time() * 1000) + UNKNOWN_CLOCK_MARGIN_MS
    dated = (value(r, UPDATED_AT) for r in items)
    return max((v for v in dated if v is not None and v <= ahead), default=None)
