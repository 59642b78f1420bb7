"""Which strategy reads a window: the one the server's order allows (`by_update` when a page
shows the most recently changed first, from page 1 or from an answer out of the order assumed),
and `split` when an answer contradicts every order or the server does not AND two date
ranges."""

from __future__ import annotations

from collections.abc import Iterator

from etl_contacts.source.errors import RangesNotCombinedError, SortChangedError
from etl_contacts.source.learned import Learned, Order
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, WINDOW_FIELDS, Window
from etl_contacts.source.query import EARLIEST_MS, LATEST_MS, Query, Span
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window.activity import by_activity
from etl_contacts.source.window.ids import PackedIds
from etl_contacts.source.window.keyset import BY_ACTIVITY, UPDATED_AT, keyset, reached
from etl_contacts.source.window.reader import Fetch, Reader, Reading
from etl_contacts.source.window.records import never_active, ordered, together, value
from etl_contacts.source.window.split import split
from etl_contacts.source.window.update import by_update
from etl_contacts.timestamps import to_ms


class WindowFetcher:
    """Yields the new records of one window, batch by batch (one batch per response)."""

    def __init__(
        self,
        fetch: Fetch,
        window: Window,
        learned: Learned,
        stats: ExtractStats,
        listed: Fetch | None = None,
    ) -> None:
        self._read = Reader(fetch, window, learned, stats, listed)

    @property
    def unproven(self) -> bool:
        """An empty answer of this read could not be doubted yet: see `Reader.unproven`."""
        return self._read.unproven

    @property
    def handed(self) -> PackedIds:
        """The `_id`s of the records this read handed over."""
        return self._read.handed

    @property
    def doubtful(self) -> bool:
        """An empty answer of this read stood on too few asks: see `Reader.doubtful`."""
        return self._read.doubtful

    def batches(self) -> Iterator[list[object]]:
        read = self._read
        since = read.window.active_since
        if since is not None and read.learned.ranges_combined is not False:
            try:
                yield from self._query(read.own.narrow(LAST_SEEN_AT, Span(lo=to_ms(since))))
                return
            except RangesNotCombinedError:
                read.not_combined()
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
        does not, the window is split by its own field instead. A strategy that meets an answer
        out of its order hands the query to `by_update` when that answer lists the most recently
        changed first, else to `split`; what it handed over already is not handed again.
        """
        read = self._read
        clock = read.learned.server_now_at_least()
        tally = read.tally
        first = (yield from read.ask(query, 1)).items
        if (yield from read.ends(query, 1, first)):
            return
        order = read.learned.order or _detect(read.learned, first)
        if order is None and any(never_active(r) for r in first) and read.may_combine(query):
            clock = read.learned.server_now_at_least()
            active = query.narrow(LAST_SEEN_AT, Span(lo=EARLIEST_MS))
            try:
                probe = (yield from read.ask(active, 1, doubt=False)).items
            except RangesNotCombinedError:
                read.not_combined()
                probe = []
            order = _detect(read.learned, probe)
        updated = read.learned.by_update or (
            order in (None, BY_ACTIVITY) and _shows_update_order(read.learned, first)
        )
        try:
            yield from self._by_order(query, order, first, clock, updated, tally)
            return
        except SortChangedError as error:
            changed = error
        if not updated and (
            read.learned.by_update or _shows_update_order(read.learned, changed.items)
        ):
            read.stats.add("strategy_by_update_after_order_changed")
            updated = True
            try:
                yield from by_update(read, query, None)
                return
            except SortChangedError:
                pass
        if updated:  # out of the order by updatedAt twice in a row: evidence against it
            read.learned.learn_by_update(False)
        read.stats.add("strategy_split_after_order_changed")
        yield from split(read, query, None)

    def _by_order(
        self,
        query: Query,
        order: Order | None,
        first: list[object],
        clock: int | None,
        updated: bool,
        tally: int,
    ) -> Reading:
        """`tally`: what the window's reader had been listed before this query."""
        read = self._read
        try:
            if updated:
                read.stats.add("strategy_by_update")
                yield from by_update(read, query, first)
            elif (
                order is not None
                and order.field == CREATED_AT
                and not read.learned.by_id
                and read.may_narrow(query, order)
            ):
                read.stats.add("strategy_keyset_created")
                proof = not read.learned.not_by_id and read.closed(query)
                narrowed = yield from keyset(
                    read, query, order, first, end="reached" if proof else "asked"
                )
                if narrowed and proof:
                    read.stats.add("keyset_reach_proofs")
                    yield from reached(read, query, read.tally - tally)
            elif order == BY_ACTIVITY and read.may_narrow(query, order):
                read.stats.add("strategy_by_activity")
                yield from by_activity(read, query, first, clock)
            else:
                read.stats.add("strategy_split")
                yield from split(read, query, first)
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


def _shows_update_order(learned: Learned, items: list[object]) -> bool:
    """Whether an answer out of the order assumed is sorted by updatedAt, newest first (three
    distinct values at least, every record dated), and by nothing an inbox sorted by activity
    shows: then it is learned for the run.

    An inbox sorted by updatedAt looks sorted by lastSeenAt (updatedAt is never earlier) until
    a page places a never-active contact among active ones, or an agent's change puts a contact
    above more recently active ones. A page that still looks sorted by lastSeenAt, or by
    createdAt, is no evidence: taken for it, one answer would cost later windows of the run a
    pass of pages before they fall back.
    """
    records: list[object] = [r for r in items if isinstance(r, dict)]
    values = [v for v in (value(r, UPDATED_AT) for r in records) if v is not None]
    if learned.not_by_update or len(values) < len(records) or len(set(values)) < 3:
        return False
    if values != sorted(values, reverse=True) or _by_activity(records) or _by_creation(records):
        return False
    learned.learn_by_update()
    return True


def _by_creation(records: list[object]) -> bool:
    """Sorted by createdAt either way: what a page of contacts never changed since created
    looks like under an order by createdAt (or `_id`) too."""
    created = [v for v in (value(r, CREATED_AT) for r in records) if v is not None]
    return created in (sorted(created), sorted(created, reverse=True))


def _by_activity(records: list[object]) -> bool:
    try:
        together(records)
        ordered(records, BY_ACTIVITY)
    except SortChangedError:
        return False
    return True


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
