"""What the client learns about the server from its answers, shared by every window of a run.

Nothing here is configuration: page size, sort order, where records without `lastSeenAt` sort,
how far the server's clock is from ours, and whether it ANDs two
date ranges are observed. Each fact is learned only from evidence that cannot mislead: a page is
known to have been full when a narrower query found records it had left out, and the page size
is the most common length of the latest such pages (a malformed or duplicated record injected
into a page makes it look longer, one hidden from it shorter, and the size may change). It is
learned per kind of query (`Shape`: the date ranges it sends), since a server may answer each
from the index it picks, each with its own page size: no kind's size stands in for another's
(the longest answer of any does, for a kind that has none yet, where the next page proves the
end anyway).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from etl_contacts.source.models import WindowField

CONFIRMATIONS = 3
RECENT_FULL_PAGES = 50
Shape = frozenset[str]
"""A kind of query: the fields it sends a date range of."""


class Order(NamedTuple):
    """The field answers are sorted by, and in which direction."""

    field: WindowField
    descending: bool


@dataclass
class _Pages:
    """The full pages confirmed lately, and the longest answer, of one kind of query or all."""

    full: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_FULL_PAGES))
    longest: int = 0

    def size(self) -> int | None:
        if len(self.full) < CONFIRMATIONS:
            return None
        seen = Counter(self.full)
        return max(seen, key=lambda length: (seen[length], length))  # most often, then longest


@dataclass
class Learned:
    order: Order | None = None
    not_by_update: bool = False
    """An answer was sorted by lastSeenAt and not by updatedAt: the server does not sort by
    updatedAt (which is never earlier than lastSeenAt, so its order often looks like it)."""
    _by_update: bool = False
    not_by_id: bool = False
    """An answer sorted by createdAt was not sorted by `_id`: the server sorts by createdAt."""
    by_id: bool = False
    """Listings held records a createdAt keyset never reached, twice (once may be a record a
    fault put in one answer): sorted by `_id`, in an order that is not creation's (ids minted
    at import), no keyset can read them."""
    _missed_by_keyset: int = 0
    nulls_first: bool = False
    """Never-active contacts were seen listed before active ones (MongoDB lists them last)."""
    ranges_combined: bool | None = None
    """Whether a lastSeenAt range and a createdAt range in one body are ANDed (None: untested)."""
    false_empties: bool = False
    """An answer said success with no records where the same request asked again listed some,
    in a listing no contact can enter any more (a replica serving an empty copy, behind a load
    balancer: any answer may be one)."""
    _listed_at: float | None = None
    _clock_offset_ms: int | None = None
    _all: _Pages = field(default_factory=_Pages)
    _shapes: dict[Shape, _Pages] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def page_size(self) -> int | None:
        """The server's page size, once confirmed by enough full pages of any kind of query."""
        with self._lock:
            return self._all.size()

    def size_of(self, shape: Shape) -> int | None:
        """The page size of this kind of query, once confirmed by enough of its full pages."""
        with self._lock:
            own = self._shapes.get(shape)
            return own.size() if own else None

    def longest_of(self, shape: Shape) -> int:
        """The longest answer to this kind of query, else (none yet) to any."""
        with self._lock:
            own = self._shapes.get(shape)
            return own.longest if own and own.longest else self._all.longest

    def likely_size(self, shape: Shape) -> int:
        """This kind of query's confirmed page size, its longest answer standing in until then
        (0 before any answer): for a reader that proves the end by the next page anyway."""
        return self.size_of(shape) or self.longest_of(shape)

    def saw_page(self, length: int, shape: Shape) -> None:
        with self._lock:
            own = self._shapes.setdefault(shape, _Pages())
            own.longest = max(own.longest, length)
            self._all.longest = max(self._all.longest, length)

    @property
    def listed(self) -> bool:
        """An answer of this run listed records: the account has some, and the server serves
        them (an empty answer where records were due is then an outage until proven otherwise)."""
        return self.listed_since(float("-inf"))

    def listed_since(self, moment: float) -> bool:
        """Whether an answer received after `moment` (epoch seconds) listed records: the server
        served then."""
        with self._lock:
            return self._listed_at is not None and self._listed_at > moment

    def saw_listing(self, received_at: float) -> None:
        with self._lock:
            self._listed_at = max(self._listed_at or received_at, received_at)

    def learn_false_empties(self) -> bool:
        """Whether this is news (said once a run)."""
        with self._lock:
            news, self.false_empties = not self.false_empties, True
        return news

    def confirm_full(self, length: int, shape: Shape) -> None:
        with self._lock:
            if length > 0:
                self._shapes.setdefault(shape, _Pages()).full.append(length)
                self._all.full.append(length)

    def forget_page_size(self, shape: Shape) -> None:
        """A page of this kind shorter than its page size was not the last: the size changed."""
        with self._lock:
            self._shapes.setdefault(shape, _Pages()).full.clear()
            self._all.full.clear()

    def learn_order(self, order: Order) -> None:
        with self._lock:
            if self.order is None:
                self.order = order

    def learn_not_by_update(self) -> None:
        with self._lock:
            self.not_by_update = True

    @property
    def by_update(self) -> bool:
        """An answer out of the order assumed was sorted by updatedAt, newest first, and none has
        shown otherwise: the inbox lists the most recently changed contacts first."""
        with self._lock:
            return self._by_update and not self.not_by_update

    def learn_by_update(self, by_update: bool = True) -> None:
        """Learned from one answer, forgotten on one that contradicts it (until the next shows
        it again): unlike `not_by_update`, nothing else relies on it."""
        with self._lock:
            self._by_update = by_update

    def learn_not_by_id(self) -> None:
        with self._lock:
            self.not_by_id = True

    def learn_by_id(self) -> None:
        with self._lock:
            self._missed_by_keyset += 1
            self.by_id = self._missed_by_keyset >= 2

    def learn_nulls_first(self) -> None:
        with self._lock:
            self.nulls_first = True

    def learn_ranges_combined(self, combined: bool) -> bool:
        """Once seen not combined, never again taken for combined; whether this changed it."""
        with self._lock:
            if self.ranges_combined is False or self.ranges_combined == combined:
                return False
            self.ranges_combined = combined
            return True

    def is_short(self, length: int, shape: Shape) -> bool:
        """True when the page looks like the last one: shorter than this kind of query's
        confirmed page size.

        Only a look: the page size may change during a run, so a reader asks the next page
        before it ends a listing on it. A page one record short of full is not even taken for
        short: that is what a full page looks like when a record was lost on its way.
        """
        size = self.size_of(shape)
        return length == 0 or (size is not None and length < size - 1)

    def looks_short(self, length: int, shape: Shape) -> bool:
        """`is_short`, with the longest page seen standing in for a size not yet confirmed: for a
        reader that proves the end by asking the next page anyway (a run's first windows would
        otherwise read on past their last page, to an empty one). Never enough on its own: a
        record injected into one answer makes the longest page longer than the size."""
        size = self.likely_size(shape)
        return length == 0 or (size > 0 and length < size - 1)

    def describe(self) -> dict[str, str]:
        """What the run found the server to do, as the run's metadata shows it: evidence of this
        run only (the next run learns it again)."""
        order = self.order
        combined = {None: "not tested", True: "yes", False: "no"}[self.ranges_combined]
        if self.by_update:
            sort = "updatedAt descending"
        elif self.by_id:
            sort = "_id, not in creation order"
        elif order is None:
            sort = "not seen (no page showed one)"
        else:
            sort = f"{order.field} {'descending' if order.descending else 'ascending'}"
        return {
            "sort": sort,
            "sorted_by_updated_at": "yes"
            if self.by_update
            else "no"
            if self.not_by_update
            else "not ruled out",
            "never_active": "listed first" if self.nulls_first else "not seen first",
            "page_size": self._describe_page_size(),
            "ranges_combined": combined,
            "empty_answers": "some were false" if self.false_empties else "none proven false",
        }

    def _describe_page_size(self) -> str:
        """One size, or each kind of query's where they differ."""
        with self._lock:
            sizes = {shape: pages.size() for shape, pages in self._shapes.items()}
        confirmed = {shape: size for shape, size in sizes.items() if size is not None}
        if len(set(confirmed.values())) < 2:
            every = self.page_size
            return "not confirmed" if every is None else str(every)
        return "; ".join(
            f"{size} with {' and '.join(sorted(shape)) or 'no date range'}"
            for shape, size in sorted(confirmed.items(), key=lambda item: sorted(item[0]))
        )

    def observe_clock(self, server_time: float | None, received_at: float) -> None:
        """The server's time (a `Date` header, epoch seconds) as read at our `received_at`.

        The header is the server's time truncated to the second, taken before we read it, so
        `server_time - received_at` is at most the true offset: the largest such value is the
        best lower bound, and lower is the safe side for every use of it.
        """
        if server_time is None:
            return
        offset = int((server_time - received_at) * 1000)
        with self._lock:
            if self._clock_offset_ms is None or offset > self._clock_offset_ms:
                self._clock_offset_ms = offset

    def server_now_at_least(self) -> int | None:
        """A time (ms) the server's clock has certainly reached, if it has ever said its time."""
        with self._lock:
            offset = self._clock_offset_ms
        return None if offset is None else int(time.time() * 1000) + offset
