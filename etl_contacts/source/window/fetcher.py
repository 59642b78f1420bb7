"""Which strategy reads a window: the one the server's order allows, and `split` when an answer
contradicts that order or the server does not AND two date ranges."""

from __future__ import annotations

from collections.abc import Iterator

from etl_contacts.source.errors import RangesNotCombinedError, SortChangedError
from etl_contacts.source.learned import Learned, Order
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, WINDOW_FIELDS, Window
from etl_contacts.source.query import EARLIEST_MS, LATEST_MS, Query, Span
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window.activity import by_activity
from etl_contacts.source.window.keyset import BY_ACTIVITY, keyset
from etl_contacts.source.window.reader import Fetch, Reader, Reading
from etl_contacts.source.window.records import never_active, value
from etl_contacts.source.window.split import split


class WindowFetcher:
    """Yields the new records of one window, batch by batch (one batch per response)."""

    def __init__(self, fetch: Fetch, window: Window, learned: Learned, stats: ExtractStats) -> None:
        self._read = Reader(fetch, window, learned, stats)

    def batches(self) -> Iterator[list[object]]:
        read = self._read
        if not read.excluded:
            yield from self._query(read.own)
            return
        if read.learned.ranges_combined is not False:
            try:
                for part in _gaps(read.excluded):
                    yield from self._query(read.own.narrow(CREATED_AT, part))
                return
            except RangesNotCombinedError:
                read.not_combined()
        yield from self._query(read.own)

    def _query(self, query: Query) -> Reading:
        """One query of the window, by the strategy the server's order allows.

        A strategy that narrows by a second field needs the server to AND two ranges; when it
        does not, the window is split by its own field instead.
        """
        read = self._read
        clock = read.learned.server_now_at_least()
        first = (yield from read.ask(query, 1)).items
        if (yield from read.ends(query, 1, first)):
            return
        order = read.learned.order or _detect(read.learned, first)
        if order is None and any(never_active(r) for r in first) and read.may_combine(query):
            clock = read.learned.server_now_at_least()
            active = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS))
            try:
                probe = (yield from read.ask(active, 1)).items
            except RangesNotCombinedError:
                read.not_combined()
                probe = []
            order = _detect(read.learned, probe)
        try:
            if order is not None and order.field == CREATED_AT and read.may_narrow(query, order):
                read.stats.add("strategy_keyset_created")
                yield from keyset(read, query, order, first)
            elif order == BY_ACTIVITY and read.may_narrow(query, order):
                read.stats.add("strategy_by_activity")
                yield from by_activity(read, query, first, clock)
            else:
                read.stats.add("strategy_split")
                yield from split(read, query, first)
        except SortChangedError:
            read.stats.add("strategy_split_after_order_changed")
            yield from split(read, query, None)
        except RangesNotCombinedError:
            if query.ranges > 1:
                raise
            read.not_combined()
            read.stats.add("strategy_split_ranges_not_combined")
            yield from split(read, query, None)


def _detect(learned: Learned, items: list[object]) -> Order | None:
    """The order of this page, when it shows exactly one (three distinct values at least).

    Only contacts that were active count: never-active ones sort together at one end, in an
    order of their own (often creation), which says nothing of the server's sort.
    """
    active = [r for r in items if isinstance(r, dict) and not never_active(r)]
    candidates: list[Order] = []
    for name in WINDOW_FIELDS:
        values = [v for v in (value(r, name) for r in active) if v is not None]
        if len(set(values)) >= 3:
            candidates.extend(
                Order(name, descending)
                for descending in (True, False)
                if values == sorted(values, reverse=descending)
            )
    if len(candidates) != 1:
        return None
    learned.learn_order(candidates[0])
    return candidates[0]


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
