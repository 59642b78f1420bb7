"""Fetch one window completely while the data changes under us, whatever the server does.

Page numbers skip records when the data moves: a contact that becomes active jumps to page 1 and
shifts every record behind it, a deletion shifts them the other way. So pages are numbered only
where nothing else can reach the records, and every strategy states what it guarantees:

- `_keyset` (answers sorted by createdAt, either direction): ask for page 1 only, then the same
  query narrowed to end with the second of the last timestamp seen (inclusive: the answer may
  have cut that second). Cursors move by whole seconds, which every server reads exactly.
  Every answer is an atomic snapshot of the top of what is left, and createdAt never changes, so
  nothing is missed whatever happens during the read.
- `_by_activity` (sorted by lastSeenAt, newest first: what an inbox does): keyset on lastSeenAt.
  A record is then missed only by moving above the cursor, that is by becoming active after the
  read began; its new lastSeenAt is at least the server's time when the read began, bounded
  below by the newest lastSeenAt of the first answer and by the `Date` header (both on the
  server's clock, so no margin for clock skew is needed). Catch-up passes over
  `lastSeenAt >= that bound` repeat until one finds nothing new. Contacts never active (no
  lastSeenAt) are excluded by any lastSeenAt range: they sort together at one end, and are read
  there by page number.
- `_split` (any other order): a window whose page 1 is full is cut in two at the median
  createdAt of that page (a sample of the window) and each part asked again; a part whose page 1
  is not full was answered whole, in one atomic response.
- `_slice`: one second holding more than a page (a bulk import) is paged by number, and paged
  again until a pass finds nothing new, which undoes shifts from deletions during a pass.

A listing ends on an empty page (the API's documented end): a page shorter than the learned page
size is only a hint, proven by asking the next page (`_ends`), since the page size may change.
A strategy that cannot finish raises `NotConvergedError`: a window is never reported complete on
a guess. Records outside the window are dropped client-side, duplicates by `_id`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from statistics import median_low
from typing import Literal

import orjson

from etl_contacts.source.errors import (
    FilterIgnoredError,
    NotConvergedError,
    RangesNotCombinedError,
)
from etl_contacts.source.learned import Learned, Order
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, WINDOW_FIELDS, Window, WindowField
from etl_contacts.source.query import (
    EARLIEST_MS,
    GRANULE_MS,
    LATEST_MS,
    Query,
    Span,
    ceil_granule,
    floor_granule,
)
from etl_contacts.source.stats import ExtractStats
from etl_contacts.timestamps import parse_ms, to_ms

# Passes of a catch-up or of a slice that may still find new records before the strategy gives
# up: each pass reads only what changed during the previous one, so on any real account a pass
# finds nothing within two or three; sixteen means the data changes faster than it can be read.
MAX_PASSES = 16
BY_ACTIVITY = Order(LAST_SEEN_AT, descending=True)
UPDATED_AT = "updatedAt"

Fetch = Callable[[dict[str, object], int], list[object]]
Place = Literal["record", "outside", "junk"]
Answer = Generator[list[object], None, list[object]]
"""Yields the new records of one response, returns the response's whole page."""

logger = logging.getLogger(__name__)


class SortChangedError(Exception):
    """An answer was not in the order the strategy assumed: fall back to splitting."""


class WindowFetcher:
    """Yields the new records of one window, batch by batch (one batch per response)."""

    def __init__(self, fetch: Fetch, window: Window, learned: Learned, stats: ExtractStats) -> None:
        self._fetch = fetch
        self.window = window
        self._learned = learned
        self._stats = stats
        self._field: WindowField = window.field
        self._own = Query({window.field: Span(to_ms(window.start), to_ms(window.end))})
        self._excluded = [Span(to_ms(low), to_ms(high)) for low, high in window.created_outside]
        self._ids: set[str] = set()
        self._junk: set[bytes] = set()
        self._active_seen = 0

    def batches(self) -> Iterator[list[object]]:
        if not self._excluded:
            yield from self._read(self._own)
            return
        if self._learned.ranges_combined is not False:
            try:
                for part in _gaps(self._excluded):
                    yield from self._read(self._own.narrow(CREATED_AT, part))
                return
            except RangesNotCombinedError:
                self._not_combined()
        yield from self._read(self._own)

    def _read(self, query: Query) -> Iterator[list[object]]:
        """One query of the window, by the strategy the server's order allows.

        A strategy that narrows by a second field needs the server to AND two ranges; when it
        does not, the window is split by its own field instead.
        """
        clock = self._learned.server_now_at_least()
        first = yield from self._ask(query, 1)
        if (yield from self._ends(query, 1, first)):
            return
        order = self._learned.order or self._detect(first)
        if order is None and any(_never_active(r) for r in first) and self._may_combine(query):
            clock = self._learned.server_now_at_least()
            active = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS))
            try:
                probe = yield from self._ask(active, 1)
            except RangesNotCombinedError:
                self._not_combined()
                probe = []
            order = self._detect(probe)
        try:
            if order is not None and order.field == CREATED_AT and self._may_narrow(query, order):
                self._stats.add("strategy_keyset_created")
                yield from self._keyset(query, order, first)
            elif order == BY_ACTIVITY and self._may_narrow(query, order):
                self._stats.add("strategy_by_activity")
                yield from self._by_activity(query, first, clock)
            else:
                self._stats.add("strategy_split")
                yield from self._split(query, first)
        except SortChangedError:
            self._stats.add("strategy_split_after_order_changed")
            yield from self._split(query, None)
        except RangesNotCombinedError:
            if query.ranges > 1:
                raise
            self._not_combined()
            self._stats.add("strategy_split_ranges_not_combined")
            yield from self._split(query, None)

    def _may_combine(self, query: Query) -> bool:
        """Whether a second date range may be added to this single-range query."""
        return query.ranges == 1 and self._learned.ranges_combined is not False

    def _may_narrow(self, query: Query, order: Order) -> bool:
        """Narrowing by the sort field adds a range unless the query already has one there."""
        return query.span(order.field).bounded or self._learned.ranges_combined is not False

    def _not_combined(self) -> None:
        if self._learned.learn_ranges_combined(False):
            logger.warning(
                "the server does not AND a lastSeenAt range with a createdAt range: each "
                "window is read by its own range alone, and filtered here"
            )

    def _keyset(
        self, query: Query, order: Order, first: list[object] | None, *, tail_read: bool = False
    ) -> Iterator[list[object]]:
        """Every record of `query` with a value of `order.field`, by narrowing the range.

        The cursor moves by whole seconds (what every server reads exactly) and keeps the
        second of the last record seen, whose other records the answer may have cut; an answer
        that lies within one second is paged by number (`_slice`), then left behind. A page
        that looks like the last ends the keyset on proof (`_ends`), unless `tail_read`: the
        caller then reads the listing's last pages by number, to an empty page, which holds
        whatever a page mistaken for the last left out.
        """
        key, descending = order
        cursor, items = query, first
        cut: tuple[Query, int, int] | None = None  # the previous answer: query, length, second
        while True:
            if items is None:
                items = yield from self._ask(cursor, 1)
            values = self._ordered(items, order)
            inside = [v for v in values if cursor.span(key).contains(v)]
            if cut is not None and any(
                (v < cut[2]) if descending else (v >= cut[2] + GRANULE_MS) for v in inside
            ):
                yield from self._was_full(*cut[:2])
            if not items or (
                self._learned.is_short(len(items))
                and (tail_read or (yield from self._ends(cursor, 1, items)))
            ):
                return
            if not inside:  # a full page of what the bounds' widening let in: no order helps
                yield from self._split(cursor, items)
                return
            second = floor_granule(self._resume_at(inside[-1], items, order))
            if floor_granule(inside[0]) == second:
                yield from self._slice(cursor, key, second)
                after = Span(hi=second) if descending else Span(lo=second + GRANULE_MS)
                cut = None
            else:
                after = Span(hi=second + GRANULE_MS) if descending else Span(lo=second)
                cut = (cursor, len(items), second)
            narrower = cursor.narrow(key, after)
            if narrower.span(key) == cursor.span(key):  # no progress: no order helps
                yield from self._split(cursor, items)
                return
            cursor = narrower
            if cursor.empty:
                return
            items = None

    def _was_full(self, query: Query, length: int) -> Iterator[list[object]]:
        """An answer of `length` records left some out: it was a full page. Shorter than the
        page size, it lost one on its way (a record hidden from one answer is not missing from
        the next), and it is asked again before the keyset leaves it behind for good."""
        size = self._learned.page_size
        self._learned.confirm_full(length)
        if size is not None and length < size:
            self._stats.add("pages_asked_again")
            yield from self._ask(query, 1)

    def _resume_at(self, last: int, items: list[object], order: Order) -> int:
        """Where the next answer of a keyset must begin so that nothing is skipped.

        An inbox sorted by updatedAt looks sorted by lastSeenAt (updatedAt is never earlier),
        and what follows its page has an updatedAt, so a lastSeenAt, at most the page's lowest
        updatedAt: until an answer has shown the order is not by updatedAt, resume there.
        """
        if order != BY_ACTIVITY or self._learned.not_by_update:
            return last
        updated = [v for v in (_value(r, UPDATED_AT) for r in items if not _never_active(r)) if v]
        if updated != sorted(updated, reverse=True):
            self._learned.learn_not_by_update()
            return last
        return max(last, min(updated, default=last))

    def _by_activity(
        self, query: Query, first: list[object], clock: int | None
    ) -> Iterator[list[object]]:
        """Keyset on lastSeenAt, the never-active contacts by page number, then catch-up."""
        _together(first)
        if query.span(LAST_SEEN_AT).bounded:
            yield from self._keyset(query, BY_ACTIVITY, first)
            yield from self._catch_up(query, _earliest(clock, _newest(first)))
            return
        active = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS))
        if first and _never_active(first[0]):
            if not all(_never_active(r) for r in first):  # both kinds on one page: proof
                self._learned.learn_nulls_first()
            yield from self._passes(self._never_active_first, query)
            clock = self._learned.server_now_at_least()
            first = yield from self._ask(active, 1)
            since = _earliest(clock, _newest(first))
            if not (yield from self._ends(active, 1, first)):
                yield from self._keyset(active, BY_ACTIVITY, first)
        else:
            since = _earliest(clock, _newest(first))
            nulls_last = not self._learned.nulls_first
            yield from self._keyset(active, BY_ACTIVITY, first, tail_read=nulls_last)
            if nulls_last:
                # one pass: sorted last, they shift only when one is deleted (a contact becoming
                # active leaves from behind them), and a second pass would cost 4 % more
                # requests on every backfill to catch that; the proof of deletions recovers a
                # stored one, the next verification of the day a new one
                listed = yield from self._never_active_last(query)
                yield from self._catch_up(query, since)
                # the listing held more than the window has seen, contacts that became active
                # included: never-active ones sort among active ones too (an order by updatedAt
                # puts them where their last change was), on pages the tail did not read
                if listed > len(self._ids) and self._closed(query):
                    raise SortChangedError
                return
        yield from self._catch_up(query, since)

    def _catch_up(self, query: Query, since: int | None) -> Iterator[list[object]]:
        """Records that became active during the read, until a pass finds none.

        Without any bound on the server's time (no `Date` header, no lastSeenAt seen) a pass
        reads every active record of the window again: slow, never wrong.
        """
        for _ in range(MAX_PASSES):
            floor = since if since is not None else query.span(LAST_SEEN_AT).lo
            recent = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS if floor is None else floor))
            if recent.empty:
                return
            before = len(self._ids)
            clock = self._learned.server_now_at_least()
            first = yield from self._ask(recent, 1)
            if not (yield from self._ends(recent, 1, first)):
                yield from self._keyset(recent, BY_ACTIVITY, first)
            if len(self._ids) == before:
                return
            since = _earliest(clock, _newest(first)) if first else since
        raise NotConvergedError(
            f"{self.window}: still finding newly active records after {MAX_PASSES} catch-up passes"
        )

    def _passes(
        self, read: Callable[[Query], Iterator[list[object]]], query: Query
    ) -> Iterator[list[object]]:
        """Page-numbered reading, repeated until a pass finds nothing new: a never-active
        contact sorted first that becomes active (or is deleted) on a page already read shifts
        the next page's first one onto it, and the next pass finds it."""
        for _ in range(MAX_PASSES):
            before = len(self._ids)
            yield from read(query)
            if len(self._ids) == before:
                return
        raise NotConvergedError(
            f"{self.window}: the never-active contacts kept shifting for {MAX_PASSES} passes"
        )

    def _never_active_first(self, query: Query) -> Iterator[list[object]]:
        """Pages from 1 while they hold only never-active contacts (sorted first)."""
        page = 1
        while True:
            items = yield from self._ask(query, page)
            _together(items)
            if not items or not all(_never_active(r) for r in items):
                return
            page += 1

    def _never_active_last(self, query: Query) -> Generator[list[object], None, int]:
        """Pages from where the never-active contacts begin (sorted last) to the end; returns
        how many records the listing holds, by the last page's number and length.

        They begin after the active ones, whose number we know from the keyset; start a page
        early, and earlier still while the first page read begins with a never-active one.
        """
        size = max(1, self._learned.page_size or self._learned.longest_page)
        page = max(1, self._active_seen // size)
        while True:
            items = yield from self._ask(query, page)
            _together(items)
            if page == 1 or (items and not _never_active(items[0])):
                break
            page -= 1  # past the end, or inside the never-active ones: start earlier
        listed = (page - 1) * size + len(items)
        while items:
            page += 1
            items = yield from self._ask(query, page)
            _together(items)
            if items:
                listed = (page - 1) * size + len(items)
        return listed

    def _closed(self, query: Query) -> bool:
        """Whether no contact can be created in the query's createdAt range any more: its end
        is past. In a range still open, a listing grows while it is read."""
        end = query.span(CREATED_AT).hi
        now = self._learned.server_now_at_least() or int(time.time() * 1000)
        return end is not None and end <= now

    def _split(self, query: Query, first: list[object] | None) -> Iterator[list[object]]:
        """Cut by the window's own field, at a whole second near the median of the full page's
        sample, until pages are short. (On lastSeenAt a record can only leave a past window,
        never enter it.)"""
        key = self._field
        span = query.span(key)
        lo = EARLIEST_MS if span.lo is None else span.lo
        hi = LATEST_MS if span.hi is None else span.hi
        items = first if first is not None else (yield from self._ask(query, 1))
        full = yield from self._full(items, query)
        if not full:
            return
        cut = _cut(items, key, lo, hi)
        if cut is None:  # within one second: no narrower query reads differently
            yield from self._slice(query, key, floor_granule(lo))
            return
        yield from self._split(query.narrow(key, Span(hi=cut)), None)
        yield from self._split(query.narrow(key, Span(lo=cut)), None)

    def _full(self, items: list[object], query: Query) -> Generator[list[object], None, bool]:
        """Whether page 1 left records out; probes page 2 until the page size is known."""
        if self._learned.page_size is not None:
            return not (yield from self._ends(query, 1, items))
        if not items:
            return False
        if (yield from self._ask(query, 2)):
            self._learned.confirm_full(len(items))
            return True
        # page 2 empty says page 1 held everything, unless a record left page 1 between the
        # two answers and pulled one from page 2 onto it: page 1 again shows whether it did
        before = len(self._ids)
        yield from self._ask(query, 1)
        return len(self._ids) > before

    def _slice(self, query: Query, key: WindowField, second: int) -> Iterator[list[object]]:
        """Every record whose `key` lies in the whole second from `second`, by page number,
        until a pass adds none (a deletion during a pass shifts records onto read pages).

        A pass reads to an empty page, except when the second is past on the server's clock:
        it then gains no record (createdAt and lastSeenAt only ever leave it), records only
        move toward page 1, and a record a deletion moved past the reader lies on a page before
        the one it was read after. Later passes then stop at the first pass's last page, or
        the page before it when that last page was shorter than page 1 (not full: nothing was
        behind it to move).
        """
        exact = query.narrow(key, Span(second, second + GRANULE_MS))
        now = self._learned.server_now_at_least()
        past = now is not None and second + GRANULE_MS <= now
        pages: int | None = None
        for _ in range(MAX_PASSES):
            before = len(self._ids)
            page, lengths = 1, []
            while pages is None or page <= pages:
                items = yield from self._ask(exact, page)
                if not items:
                    break
                lengths.append(len(items))
                page += 1
            if past and pages is None:
                last_short = len(lengths) > 1 and lengths[-1] < lengths[0]
                pages = len(lengths) - last_short
            if len(self._ids) == before:
                return
        raise NotConvergedError(
            f"{self.window}: the records of one second kept shifting for {MAX_PASSES} passes"
        )

    def _ends(
        self, query: Query, page: int, items: list[object]
    ) -> Generator[list[object], None, bool]:
        """Whether this answer is the last page of `query`: an empty one is; one shorter than
        the learned page size is once the next page is empty (the documented end of a
        listing). The page size may change during a run: records on that next page say it did,
        and it is learned again."""
        if not items:
            return True
        if not self._learned.is_short(len(items)):
            return False
        if not (yield from self._ask(query, page + 1)):
            return True
        self._learned.forget_page_size()
        logger.warning(
            "a page of %d records was followed by more: the server's page size changed, and "
            "is learned again",
            len(items),
        )
        return False

    def _ask(self, query: Query, page: int) -> Answer:
        """One request; yields what is new to this window, returns the page as answered."""
        items = self._fetch(query.body(), page)
        self._stats.add("pages")
        self._learned.saw_page(len(items))
        self._check_ranges(query, items)
        fresh: list[object] = []
        for item in items:
            place, record_id = self._place(query, item)
            if place == "outside":
                continue
            if place == "junk":
                fingerprint = _fingerprint(item)
                if fingerprint in self._junk:
                    continue
                self._junk.add(fingerprint)
            elif record_id in self._ids:
                self._stats.add("duplicates_dropped")
                continue
            else:
                self._ids.add(record_id)
                self._active_seen += not _never_active(item)
            fresh.append(item)
        if fresh:
            self._stats.add("records", len(fresh))
            yield fresh
        return items

    def _place(self, query: Query, item: object) -> tuple[Place, str]:
        """Whether a record belongs to this window (with its `_id`), lies outside it, or cannot
        be placed (no usable `_id`, an unreadable date): then it is handed over once, to be
        quarantined, never dropped."""
        if not isinstance(item, dict) or not isinstance(item.get("_id"), str):
            return "junk", ""
        if item.get(CREATED_AT) is None:
            return "junk", ""
        for name in {*query.spans, CREATED_AT}:
            if item.get(name) is not None and parse_ms(item.get(name)) is None:
                return "junk", ""
        created = parse_ms(item.get(CREATED_AT))
        if not query.admits(item) or not self._own.admits(item):
            return "outside", ""
        if created is not None and any(span.contains(created) for span in self._excluded):
            return "outside", ""
        return "record", item["_id"]

    def _check_ranges(self, query: Query, items: list[object]) -> None:
        """Every record must lie in every range as sent (whole seconds around it)."""
        bounded = [(name, span) for name, span in query.spans.items() if span.bounded]
        for item in items:
            if not isinstance(item, dict):
                continue
            for name, span in bounded:
                millis = parse_ms(item.get(name))
                if millis is None and name == LAST_SEEN_AT and _never_active(item):
                    millis = EARLIEST_MS - 2  # no range matches a contact never active
                if millis is None:
                    continue
                if span.beyond(millis):
                    if len(bounded) > 1:
                        raise RangesNotCombinedError(f"{name} {millis} outside the range asked")
                    raise FilterIgnoredError(
                        f"the server answered a {name} range with a record outside it: the "
                        "API does not filter by date as documented, and no window can be read"
                    )
        if self._excluded and len(bounded) > 1 and items:
            self._learned.learn_ranges_combined(True)

    def _ordered(self, items: list[object], order: Order) -> list[int]:
        """The page's values of the sort field, in order; raises when they are not sorted."""
        values = [v for v in (_value(r, order.field) for r in items) if v is not None]
        if values != sorted(values, reverse=order.descending):
            raise SortChangedError
        return values

    def _detect(self, items: list[object]) -> Order | None:
        """The order of this page, when it shows exactly one (three distinct values at least).

        Only contacts that were active count: never-active ones sort together at one end, in an
        order of their own (often creation), which says nothing of the server's sort.
        """
        active = [r for r in items if isinstance(r, dict) and not _never_active(r)]
        candidates: list[Order] = []
        for name in WINDOW_FIELDS:
            values = [v for v in (_value(r, name) for r in active) if v is not None]
            if len(set(values)) >= 3:
                candidates.extend(
                    Order(name, descending)
                    for descending in (True, False)
                    if values == sorted(values, reverse=descending)
                )
        if len(candidates) != 1:
            return None
        self._learned.learn_order(candidates[0])
        return candidates[0]


def _value(item: object, name: str) -> int | None:
    return parse_ms(item.get(name)) if isinstance(item, dict) else None


def _never_active(item: object) -> bool:
    """A contact with no lastSeenAt (null or absent), which no lastSeenAt range returns."""
    return isinstance(item, dict) and item.get(LAST_SEEN_AT) is None


def _together(items: list[object]) -> None:
    """Never-active contacts sort together at one end of an order by lastSeenAt; found between
    active ones, the order is another (by updatedAt, say): raises SortChangedError."""
    flags = [_never_active(r) for r in items if isinstance(r, dict)]
    if flags != sorted(flags) and flags != sorted(flags, reverse=True):
        raise SortChangedError


def _newest(items: list[object]) -> int | None:
    values = [v for v in (_value(r, LAST_SEEN_AT) for r in items) if v is not None]
    return max(values, default=None)


def _earliest(*moments: int | None) -> int | None:
    known = [m for m in moments if m is not None]
    return min(known, default=None)


def _cut(items: list[object], key: str, lo: int, hi: int) -> int | None:
    """A whole second strictly inside [lo, hi) to split at, near the median value of a full
    page (else the middle); None when [lo, hi) lies within one second."""
    first, last = floor_granule(lo) + GRANULE_MS, ceil_granule(hi) - GRANULE_MS
    if first > last:
        return None
    inside = sorted(v for v in (_value(r, key) for r in items) if v is not None and lo < v < hi)
    middle = median_low(inside) if inside else (lo + hi) // 2
    return min(max(floor_granule(middle), first), last)


def _gaps(excluded: list[Span]) -> list[Span]:
    """The createdAt ranges around and between the excluded ones."""
    ranges = sorted(
        (EARLIEST_MS if s.lo is None else s.lo, LATEST_MS if s.hi is None else s.hi)
        for s in excluded
    )
    gaps, cursor = [], None  # cursor: where the current gap starts (None: the beginning)
    for low, high in ranges:
        if (cursor is None and low > EARLIEST_MS) or (cursor is not None and low > cursor):
            gaps.append(Span(cursor, low))
        cursor = high if cursor is None else max(cursor, high)
    if cursor is None or cursor < LATEST_MS:
        gaps.append(Span(cursor, None))
    return gaps


def _fingerprint(item: object) -> bytes:
    """Identity of a record without a usable `_id`, so it is handed over once per window."""
    try:
        return orjson.dumps(item, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: still one identity
        return repr(item).encode()
