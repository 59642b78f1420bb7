"""The read of one window: what it has handed over, and the one way its strategies ask.

Every request goes through `Reader.ask`, which hands over what is new to the window (once per
`_id`, unless one answer holds two differing copies: both go on, for the transform to keep the
newer; a record that cannot be placed once per content, to be quarantined), drops what lies
outside it, checks that the server applied every range, and returns the page as answered with
how many of its records were new to the window. A pass reports what it found from those counts
(`Page.new`, or `handed` over a strategy's batches), never by watching the reader's state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Literal

from etl_contacts.source.errors import FilterIgnoredError, RangesNotCombinedError
from etl_contacts.source.learned import Learned, Order, Shape
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, Reply, Window
from etl_contacts.source.query import EARLIEST_MS, Query, Span
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window.ids import PackedIds
from etl_contacts.source.window.records import fingerprint, never_active
from etl_contacts.timestamps import parse_ms, to_ms

# Passes of a catch-up or of a slice that may still find new records before the strategy gives
# up: each pass reads only what changed during the previous one, so on any real account a pass
# finds nothing within two or three; sixteen means the data changes faster than it can be read.
MAX_PASSES = 16

REASKS = 4
"""Further asks of a doubted empty answer, while empty, once the server has answered empty
falsely in this run: a replica serving an empty copy behind a load balancer makes any answer
empty by chance (at 20 %, five more asks let 3 false empties in 10,000 through). None before
that: a window whose empty answer stood then is read again at the end if the run sees a false
one (`doubtful`), so a server that never answers falsely pays nothing more."""
Fetch = Callable[[dict[str, object], int], Reply]
"""One page of a query's filters, as the server answered it."""
Place = Literal["record", "outside", "junk"]
Reading = Iterator[list[object]]
"""The batches a strategy hands over: the new records of each answer."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[object]
    """The page as answered, records outside the window and repeated ones included."""
    new_ids: frozenset[str]
    """The `_id`s of its records the window had not seen before."""

    @property
    def new(self) -> int:
        """How many of its records the window had not seen before."""
        return len(self.new_ids)


Ask = Generator[list[object], None, Page]


def handed(reading: Reading) -> Generator[list[object], None, int]:
    """Passes a strategy's batches on and returns how many records they held: what one pass
    found that the window had not seen."""
    count = 0
    for batch in reading:
        count += len(batch)
        yield batch
    return count


class Reader:
    """The state of one window's read, shared by the strategies that read it."""

    def __init__(
        self,
        fetch: Fetch,
        window: Window,
        learned: Learned,
        stats: ExtractStats,
        listed: Fetch | None = None,
    ) -> None:
        """`listed`: the same request as `fetch`, retried while its answer lists nothing (with
        the client's backoff, until its retries run out). Given it, an empty answer where records
        were due is doubted (`_doubt`); without it (a probe that proves absence its own way),
        every empty answer is taken as it comes."""
        self._fetch = fetch
        self._listed = listed
        self.window = window
        self.learned = learned
        self.stats = stats
        self.own = Query({window.field: Span(to_ms(window.start), to_ms(window.end))})
        self.excluded = [Span(to_ms(low), to_ms(high)) for low, high in window.created_outside]
        self._ids: set[str] = set()
        self._junk: set[bytes] = set()
        self._outside: set[str] = set()  # records the server listed that lie outside the window
        self.active_seen = 0
        """Records handed over that have a lastSeenAt: where never-active ones begin when they
        are sorted last."""
        self.unproven = False
        """An empty answer was doubted, but nothing had listed records yet to prove the server
        serves: the window is read again once the run has listed some (an outage from the run's
        first request), or taken as read when none ever does (the account lists nothing)."""
        self.doubtful = False
        """A doubted empty answer stood before the run had seen the server answer empty falsely,
        on fewer asks than it would take after: the window is read again if the run sees one."""
        # the answer before: its query's body and kind, its length
        self._last: tuple[dict[str, object], Shape, int] | None = None
        self._shown = False  # an answer of this window held records: its own listing holds some

    @property
    def seen(self) -> int:
        """Distinct records (by `_id`) the window has handed over."""
        return len(self._ids)

    @property
    def handed(self) -> PackedIds:
        """The `_id`s of the records the window has handed over."""
        return PackedIds(self._ids)

    @property
    def tally(self) -> int:
        """Distinct records the server listed to this window: handed over, outside it (bounds
        read wider than asked), or unplaceable."""
        return len(self._ids | self._outside) + len(self._junk)

    def ask(self, query: Query, page: int, *, doubt: bool = True) -> Ask:
        """One request; yields what is new to this window, returns the page as answered.
        `doubt=False` where an empty answer loses nothing: a page asked to find where a listing
        ends, a pass for records that became active during the read until the server has
        answered empty falsely (the next night's read of the day's activity has them)."""
        body = query.body()
        reply = self._fetch(body, page)
        if not reply.items and doubt and self._due(body, page):
            reply = self._doubt(body, page, reply.received_at, closed=self.closed(query))
        self.learned.observe_clock(reply.server_time, reply.received_at)
        items = reply.items
        self.stats.add("pages")
        self.learned.saw_page(len(items), query.shape)
        self._last = (body, query.shape, len(items))
        if items:
            self._shown = True
            self.learned.saw_listing(reply.received_at)
        self._check_ranges(query, items)
        fresh: list[object] = []
        new_ids: list[str] = []
        firsts: dict[str, object] = {}  # this answer's records new to the window, by `_id`
        for item in items:
            place, record_id = self._place(query, item)
            if place == "outside":
                self._outside.add(record_id)
                continue
            if place == "junk":
                mark = fingerprint(item)
                if mark in self._junk:
                    continue
                self._junk.add(mark)
            elif record_id in self._ids:
                if firsts.get(record_id, item) == item:  # a copy of one handed over
                    self.stats.add("duplicates_dropped")
                    continue
            else:
                self._ids.add(record_id)
                self.active_seen += not never_active(item)
                new_ids.append(record_id)
                firsts[record_id] = item
            fresh.append(item)
        if fresh:
            self.stats.add("records", len(fresh))
            yield fresh
        return Page(items, frozenset(new_ids))

    def _due(self, body: dict[str, object], page: int) -> bool:
        """Whether records were due where an answer came empty: it is a query's first (a
        window's, a part's, a pass's), its page 1 (asked again, or after a later page), or the
        answer before it, of the same query, was a full page. (After a short page of it, an
        empty later page is the end the short page announced, until the run has seen the server
        answer empty falsely: a page that looks short by the size learned is full at a size
        that shrank since, and only a doubt then tells the end from a false one.) A server may
        say success with no records for a while (a lagging replica, an index rebuild), and
        taken for the end, that empty answer would end the query there, silently: on a first
        load nothing stored would show the loss."""
        if self._listed is None:
            return False
        if page == 1 or self._last is None or self._last[0] != body:
            return True
        return self.learned.false_empties or not self.learned.looks_short(
            self._last[2], self._last[1]
        )

    def _doubt(self, body: dict[str, object], page: int, empty_at: float, *, closed: bool) -> Reply:
        """An empty answer proven across time, or replaced: a listing known to hold records is
        answered with records (waited for while it lists none), then the same request is asked
        again (and up to `REASKS` more times while empty, once the server has answered empty
        falsely in this run), and the last answer stands.

        The listing is page 1 of the window's own query, once an answer of the window held
        records, unless that is the request doubted: every query of a window lists a part of
        it, and only the whole window emptying empties its page 1 (a later page, or a narrowed
        query's, empties whenever a deletion or activity moves its few records: asked as the
        proof, it failed the window). Else, or when that page comes back empty too (the window
        deleted whole, or the outage), the account's own (no date range), asked until it lists
        records: one an empty account answers empty, which proves nothing until the run has
        listed records elsewhere (`unproven`). An answer with records that another window
        received since the empty one proves the server served as well."""
        assert self._listed is not None
        self.stats.add("empty_answers_doubted")
        own = self.own.body()
        control = self._fetch(own, 1) if self._shown and (own, 1) != (body, page) else None
        if control is not None and control.items:
            self.learned.saw_listing(control.received_at)
        elif not self.learned.listed_since(empty_at):
            control = self._fetch({}, 1)
            if not control.items and not self.learned.listed:
                self.unproven = True
                return Reply([], None, time.time())
            if not control.items:
                control = self._listed({}, 1)
            self.learned.saw_listing(control.received_at)
        seen_false = self.learned.false_empties
        again = self._fetch(body, page)
        for _ in range(REASKS if seen_false else 0):
            if again.items:
                break
            again = self._fetch(body, page)
        self.doubtful |= not again.items and not seen_false
        if again.items:
            self.stats.add("empty_answers_refuted")
            news = False
            if closed:  # no contact can enter the listing any more: the empty answer was false
                self.stats.add("empty_answers_false")
                news = self.learned.learn_false_empties()
            (logger.warning if news else logger.info)(
                "the server answered %s empty, then with %d records: an outage of empty answers "
                "(a lagging replica?) was read through",
                self.window,
                len(again.items),
            )
        return again

    def ends(
        self, query: Query, page: int, items: list[object]
    ) -> Generator[list[object], None, bool]:
        """Whether this answer is the last page of `query`: an empty one is; one shorter than
        the learned page size is once the next page is empty (the documented end of a
        listing). The page size may change during a run: records on that next page say it did,
        and it is learned again (unless it was not confirmed yet: the longest page seen stood
        in for it)."""
        if not items:
            return True
        if not self.learned.looks_short(len(items), query.shape):
            return False
        if not (yield from self.ask(query, page + 1)).items:
            return True
        if self.learned.size_of(query.shape) is None:
            return False
        self.learned.forget_page_size(query.shape)
        logger.warning(
            "a page of %d records was followed by more: the server's page size changed, and "
            "is learned again",
            len(items),
        )
        return False

    def closed(self, query: Query) -> bool:
        """Whether no contact can enter the query's listing any more (a data fix that moves a
        createdAt aside). With a lastSeenAt range, a contact enters by becoming active (or being
        created active) in it, so its end decides: once past, activity only takes contacts out.
        Without one, a contact enters by being created in the createdAt range: its end decides.
        A listing still open grows while it is read."""
        now = self.learned.server_now_at_least() or int(time.time() * 1000)
        end = query.span(LAST_SEEN_AT if LAST_SEEN_AT in query.spans else CREATED_AT).hi
        return end is not None and end <= now

    def may_combine(self, query: Query) -> bool:
        """Whether a second date range may be added to this single-range query."""
        return query.ranges == 1 and self.learned.ranges_combined is not False

    def may_narrow(self, query: Query, order: Order) -> bool:
        """Narrowing by the sort field adds a range unless the query already has one there."""
        return query.span(order.field).bounded or self.learned.ranges_combined is not False

    def not_combined(self) -> None:
        if self.learned.learn_ranges_combined(False):
            logger.warning(
                "the server does not AND a lastSeenAt range with a createdAt range: each "
                "window is read by its own range alone, and filtered here"
            )

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
        if not query.admits(item) or not self.own.admits(item):
            return "outside", item["_id"]
        if created is not None and any(span.contains(created) for span in self.excluded):
            return "outside", item["_id"]
        return "record", item["_id"]

    def _check_ranges(self, query: Query, items: list[object]) -> None:
        """Every record must lie in every range as sent (whole seconds around it): a record
        outside one of two ranges says the server does not AND them (RangesNotCombinedError,
        the caller reads one range alone); outside the only one, that it ignores date ranges."""
        bounded = [(name, span) for name, span in query.spans.items() if span.bounded]
        for item in items:
            if not isinstance(item, dict):
                continue
            for name, span in bounded:
                millis = parse_ms(item.get(name))
                if millis is None and name == LAST_SEEN_AT and never_active(item):
                    millis = EARLIEST_MS - 1  # before every range: none matches it
                if millis is None:
                    continue
                if span.beyond(millis):
                    if len(bounded) > 1:
                        raise RangesNotCombinedError(f"{name} {millis} outside the range asked")
                    raise FilterIgnoredError(
                        f"the server answered a {name} range with a record outside it: the "
                        "API does not filter by date as documented, and no window can be read"
                    )
        if self.excluded and len(bounded) > 1 and items:
            self.learned.learn_ranges_combined(True)
