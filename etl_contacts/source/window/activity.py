"""Answers sorted by lastSeenAt, newest first (what an inbox does): a keyset on lastSeenAt.

A record is then missed only by moving above the cursor, that is by becoming active after the
read began; its new lastSeenAt is at least the server's time when the read began, bounded below
by the newest lastSeenAt of the first answer and by the `Date` header (both on the server's
clock, so no margin for clock skew is needed). Catch-up passes over `lastSeenAt >= that bound`
repeat until one finds nothing new. Contacts never active (no lastSeenAt) are excluded by any
lastSeenAt range: they sort together at one end, and are read there by page number.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

from etl_contacts.source.errors import NotConvergedError, SortChangedError
from etl_contacts.source.models import LAST_SEEN_AT
from etl_contacts.source.query import EARLIEST_MS, Query, Span
from etl_contacts.source.window.keyset import BY_ACTIVITY, UPDATED_AT, keyset, resume_at
from etl_contacts.source.window.reader import MAX_PASSES, Page, Reader, Reading, handed
from etl_contacts.source.window.records import (
    earliest,
    never_active,
    newest,
    ordered,
    together,
    value,
)

TAIL_READS = 3
"""Reads of the never-active tail and its proof (while the order may be by updatedAt) before a
window whose contacts keep becoming active meanwhile is read by page number instead."""


def by_activity(read: Reader, query: Query, first: list[object], clock: int | None) -> Reading:
    """Keyset on lastSeenAt, the never-active contacts by page number, then catch-up."""
    together(first)
    if query.span(LAST_SEEN_AT).bounded:
        yield from keyset(read, query, BY_ACTIVITY, first)
        yield from _catch_up(read, query, earliest(clock, newest(first)))
        return
    active = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS))
    if first and never_active(first[0]):
        if not all(never_active(r) for r in first):  # both kinds on one page: proof
            read.learned.learn_nulls_first()
        yield from _passes(read, _never_active_first, query)
        clock = read.learned.server_now_at_least()
        first = (yield from read.ask(active, 1)).items
        since = earliest(clock, newest(first))
        if not (yield from read.ends(active, 1, first)):
            yield from keyset(read, active, BY_ACTIVITY, first)
        yield from _catch_up(read, query, since)
        return
    since = earliest(clock, newest(first))
    nulls_last = not read.learned.nulls_first
    yield from keyset(
        read, active, BY_ACTIVITY, first, end="tail" if nulls_last else "asked", first_of=query
    )
    if not nulls_last:
        yield from _catch_up(read, query, since)
        return
    newest_seen = newest(first)
    for _ in range(TAIL_READS):
        tail = yield from _never_active_tail(read, query)
        probed = not read.learned.not_by_update and read.closed(query)
        if probed:
            yield from _actives_as_listed(read, active, tail)
        top = yield from _catch_up(read, query, since, nulls_last=True)
        # a contact of the window active since its newest seen may have made up for one the
        # probe would have shown sorted among active ones: the tail and the probe again
        if not probed or top is None or (newest_seen is not None and top <= newest_seen):
            break
        read.stats.add("tail_read_again_after_activity")
        newest_seen = top
    else:
        raise SortChangedError  # read by a strategy that needs no order
    # the listing held more than the window has seen, contacts that became active included:
    # never-active ones sort among active ones too (an order by updatedAt puts them where their
    # last change was), on pages the tail did not read
    if tail.listed > read.seen and read.closed(query):
        raise SortChangedError


def _catch_up(
    read: Reader, query: Query, since: int | None, *, nulls_last: bool = False
) -> Generator[list[object], None, int | None]:
    """Records that became active during the read, until a pass finds none for certain;
    returns the newest lastSeenAt of its first answer.

    A pass of one answer (its page 1 held all it asked for) is a snapshot: finding nothing new
    there ends the catch-up. A pass of several answers misses a record made active again after
    its page 1 (it moves above the pass's cursor), so finding nothing new there ends it only
    when the pass before found nothing new either: a record then escapes only by becoming
    active three times, each time at that moment (twice for one created during the read; the
    next night's read of the day's activity has it). (Another rule, passes until one is a single
    answer, never ended on an account busier than a page per pass.)
    With `nulls_last`, `query` lists the window newest first, never-active contacts last: its
    page 1 holds every record of the pass's range when it reaches below the range, which proves
    the pass in one answer where the range's own page 1 needs the empty page after it.
    Without any bound on the server's time (no `Date` header, no lastSeenAt seen) a pass reads
    every active record of the window again: slow, never wrong.
    """
    settled = False  # the pass before found nothing new
    top: int | None = None  # the newest lastSeenAt of the first answer
    for number in range(MAX_PASSES):
        floor = since if since is not None else query.span(LAST_SEEN_AT).lo
        recent = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS if floor is None else floor))
        if recent.empty:
            return None
        clock = read.learned.server_now_at_least()
        before = read.seen
        if nulls_last:
            first = (yield from read.ask(query, 1)).items
            try:
                whole = _reaches_below(read, first, floor)
            except SortChangedError:  # no proof; the range's keyset checks its order again
                whole = False
            # the window's page 1 is the range's only when every record of it is in the range
            page_1 = first if all(isinstance(r, dict) and recent.admits(r) for r in first) else None
        else:
            first = page_1 = (
                yield from read.ask(recent, 1, doubt=read.learned.false_empties)
            ).items
            whole = yield from read.ends(recent, 1, first)
        top = newest(first) if number == 0 else top
        if not whole:
            yield from keyset(read, recent, BY_ACTIVITY, page_1)
        found = read.seen > before
        if not found and (whole or settled):
            return top
        settled = not found
        since = earliest(clock, newest(first)) if first else since
    raise NotConvergedError(
        f"{read.window}: still finding newly active records after {MAX_PASSES} catch-up passes"
    )


def _reaches_below(read: Reader, items: list[object], floor: int | None) -> bool:
    """Whether page 1 of a listing sorted newest first, never-active contacts last, holds every
    record at or above `floor`: nothing after it sorts higher.

    In an order by lastSeenAt that is so when the page ends below the floor or with a
    never-active contact. An order by updatedAt looks the same (updatedAt is never earlier), but
    places a never-active contact by its own updatedAt, so until an answer has shown the order
    is not by updatedAt, every record of the page must also have an updatedAt below the floor.
    """
    together(items)
    if not items:
        return True
    if not read.learned.not_by_update:
        updated = [value(r, UPDATED_AT) for r in items]
        if floor is None or None in updated or min(v or 0 for v in updated) >= floor:
            return False
    if never_active(items[-1]):
        return True
    last = ordered(items, BY_ACTIVITY)[-1]
    return floor is not None and resume_at(read, last, items, BY_ACTIVITY) < floor


def _passes(read: Reader, pass_: Callable[[Reader, Query], Reading], query: Query) -> Reading:
    """Page-numbered reading, repeated until a pass finds nothing new: a never-active contact
    sorted first that becomes active (or is deleted) on a page already read shifts the next
    page's first one onto it, and the next pass finds it."""
    for _ in range(MAX_PASSES):
        if not (yield from handed(pass_(read, query))):
            return
    raise NotConvergedError(
        f"{read.window}: the never-active contacts kept shifting for {MAX_PASSES} passes"
    )


def _never_active_first(read: Reader, query: Query) -> Reading:
    """Pages from 1 while they hold only never-active contacts (sorted first)."""
    page = 1
    while True:
        items = (yield from read.ask(query, page)).items
        together(items)
        if not items or not all(never_active(r) for r in items):
            return
        page += 1


@dataclass(frozen=True)
class _Tail:
    """The listing as the tail's last pass read it: its length, the records before its first
    never-active one (all of them when none was), its last page, the records before the
    pass's first page, the page size it placed pages by, and how many pages held records."""

    listed: int
    active: int
    end: list[object]
    start: int
    size: int
    pages: int


def _never_active_tail(read: Reader, query: Query) -> Generator[list[object], None, _Tail]:
    """The never-active contacts sorted last, paged again until a pass finds none the window had
    not seen: a deletion before the reader moves the ones behind it toward page 1, onto a page
    already read (one becoming active moves those before it a place later: read twice at
    worst). Even a pass whose first page looks like the end is repeated: the page size may
    have shrunk, or the answer left a record out. In a listing no contact can enter any more,
    a later pass that finds the last page of the pass before unchanged, record for record, ends
    there: nothing lies after it (the empty page after it was asked once). A later pass begins
    no later than the one before: what that one found moved the active ones' count on, but a
    deletion during it may have moved a record onto its first page. A pass that read the
    listing's end in one short page is not repeated when nothing could have shifted under it
    (`_whole_at_once`)."""
    last: list[object] | None = None
    start: int | None = None
    for _ in range(MAX_PASSES):
        before = read.seen
        tail = yield from _never_active_last(read, query, last, start)
        if read.seen == before or _whole_at_once(read, query, tail):
            return tail
        last = tail.end if read.closed(query) else None
        start = tail.start
    raise NotConvergedError(
        f"{read.window}: the never-active contacts kept shifting for {MAX_PASSES} passes"
    )


def _whole_at_once(read: Reader, query: Query, tail: _Tail) -> bool:
    """Whether the pass read, in one answer, every record from where it began to the end: a
    second pass could find nothing more.

    A pass misses a record only when a deletion before its page moves one onto a page already
    read. Here the pass read one page with records, shorter than the page size, then an empty
    page, in a listing no contact can enter any more: at the first answer nothing lay after
    it, so nothing could move onto it. That rests on the page size, which the page's own
    content checks: its first never-active contact stands where the pass placed it by that size
    (every active contact the listing held before it was handed over, none more, none less). A
    page size changed since would misplace it, unless deletions made up for the difference
    exactly; then only a further deletion between the page and the empty one, milliseconds
    apart, could move a record past the pass. Busy windows (a contact deleted or made active
    since the keyset) fail the check and are paged again.
    """
    return (
        tail.pages == 1
        and len(tail.end) < tail.size
        and tail.active == read.active_seen
        and read.closed(query)
    )


def _never_active_last(
    read: Reader, query: Query, last: list[object] | None, start: int | None
) -> Generator[list[object], None, _Tail]:
    """Pages from where the never-active contacts begin (sorted last) to the end, or to a page
    that is `last` unchanged: the listing's length by the last page's number and length.

    They begin after the active ones, whose number we know from the keyset: start at the page
    that holds the first place after them, and a page earlier while the page read begins with
    a never-active one or is past the end (active ones deleted during the read moved the
    boundary toward page 1), or with an active one the keyset did not meet (it ended on a page
    that only looked like the last: a deletion may have moved the record after the last it
    met onto the page before), and no later than the place `start`.
    """
    size = _page_size(read, query)
    place = read.active_seen if start is None else min(read.active_seen, start)
    page = place // size + 1
    while True:
        answer = yield from _tail_page(read, query, page, doubt=page == 1)
        items = answer.items
        head = items[0] if items else None
        if page == 1 or (
            isinstance(head, dict) and not never_active(head) and head["_id"] not in answer.new_ids
        ):
            break
        page -= 1  # past the end, inside the never-active ones, or after a gap: start earlier
    listed, end, active, begun, pages = 0, items, None, (page - 1) * size, 0
    while True:
        if items:
            listed, end, pages = (page - 1) * size + len(items), items, pages + 1
        first = next((i for i, r in enumerate(items) if never_active(r)), None)
        if active is None and first is not None:
            active = (page - 1) * size + first
        if not items or (last and items == last):
            return _Tail(listed, listed if active is None else active, end, begun, size, pages)
        page += 1
        before, items = items, (yield from _tail_page(read, query, page)).items
        if items:  # the page before was full: its length is this kind of query's page size
            read.learned.confirm_full(len(before), query.shape)


def _actives_as_listed(
    read: Reader, active: Query, tail: _Tail
) -> Generator[list[object], None, None]:
    """Proof, while the order may still be by updatedAt, that no never-active contact sorts
    among active ones: the listing of the active contacts alone ends where the window's listing
    showed its first never-active one. An inbox sorted by updatedAt places a never-active
    contact by its last change, on a page the tail never reads, and the listing's length
    cannot show it once a contact seen was deleted during the read. Asked only of a listing no
    contact can enter any more: in one still open, every contact created between two answers
    would look like one.

    Else the order is taken to be by updatedAt (`by_update` reads this window and the run's
    later ones; an answer out of that order rules it out again) and SortChangedError. Activity
    between the tail's last page and this one looks the same: it costs a window read by page
    number, never a record. It can also cancel the difference (a never-active contact becoming
    active as one sorted among active ones is counted): the window then misses that one until
    its day is read again, unless another window of the run showed the order first.
    """
    size = _page_size(read, active)
    page = max(1, -(-tail.active // size))
    due = tail.active - (page - 1) * size
    items = (yield from read.ask(active, page)).items
    if len(items) == due and not (due == size and (yield from read.ask(active, page + 1)).items):
        return
    read.stats.add("never_active_among_active")
    read.learned.learn_by_update()
    raise SortChangedError(items)


def _page_size(read: Reader, query: Query) -> int:
    """The page size of the query's kind, its longest answer standing in until confirmed."""
    return max(1, read.learned.likely_size(query.shape))


def _tail_page(
    read: Reader, query: Query, page: int, *, doubt: bool = True
) -> Generator[list[object], None, Page]:
    """A page of the tail: its never-active contacts together (else SortChangedError), and
    evidence on whether the order may be by updatedAt, which places a never-active contact by
    its own updatedAt, among active ones, on pages the tail does not read. Until an answer
    rules that order out, the tail's result is checked (`_actives_as_listed`); a page whose
    updatedAt values, never-active contacts' included, are not descending rules it out, once
    asked again (a record of the next page served on this one misplaces one, once)."""
    answer = yield from read.ask(query, page, doubt=doubt)
    together(answer.items)
    if not read.learned.not_by_update and not _updated_in_order(answer.items):
        again = yield from read.ask(query, page, doubt=doubt)
        answer = Page(again.items, answer.new_ids | again.new_ids)
        together(answer.items)
        if not _updated_in_order(answer.items):
            read.learned.learn_not_by_update()
    return answer


def _updated_in_order(items: list[object]) -> bool:
    updated = [v for v in (value(r, UPDATED_AT) for r in items) if v is not None]
    return updated == sorted(updated, reverse=True)
