"""Date-range queries as the fetcher reasons about them, and as the API receives them.

Inside, every range is half-open in integer milliseconds, `[lo, hi)`, either end open (None);
"up to and including b" is `hi = b + 1`. Only `wire()` knows the API's uncertainties: whether it
reads a bound to the millisecond or only to the second, and whether each end is inclusive. It
sends `startAt` a millisecond before `lo` (dropping its milliseconds only widens it further) and
`endsAt` as `hi` rounded up to a whole second (which dropping milliseconds cannot narrow), so
either kind of end, read either way, includes all of `[lo, hi)`. Records outside the range are
dropped here. The fetcher's cursors move by whole seconds for the same reason (`GRANULE_MS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from etl_contacts.source.models import WindowField
from etl_contacts.timestamps import format_ms, parse_ms

GRANULE_MS = 1_000
"""The finest bound every server reads exactly: a second."""


def floor_granule(millis: int) -> int:
    return millis - millis % GRANULE_MS


def ceil_granule(millis: int) -> int:
    return -floor_granule(-millis)


# Stand-ins for an open end where a split needs numbers: before the first contact of any account
# and after the last one this code will see.
EARLIEST_MS = 0
LATEST_MS = 7_258_118_400_000  # 2200-01-01


@dataclass(frozen=True)
class Span:
    """`[lo, hi)` in milliseconds; None leaves that end open."""

    lo: int | None = None
    hi: int | None = None

    @property
    def bounded(self) -> bool:
        return self.lo is not None or self.hi is not None

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo >= self.hi

    def contains(self, millis: int) -> bool:
        return (self.lo is None or millis >= self.lo) and (self.hi is None or millis < self.hi)

    def beyond(self, millis: int) -> bool:
        """Outside even what was sent, read to the second: the server ignored this range."""
        return (self.lo is not None and millis < floor_granule(self._start())) or (
            self.hi is not None and millis > ceil_granule(self.hi)
        )

    def meet(self, other: Span) -> Span:
        lows = [v for v in (self.lo, other.lo) if v is not None]
        highs = [v for v in (self.hi, other.hi) if v is not None]
        return Span(max(lows) if lows else None, min(highs) if highs else None)

    def wire(self) -> dict[str, str]:
        """Bounds that any server reads as a superset of `[lo, hi)`."""
        start = "" if self.lo is None else format_ms(self._start())
        end = "" if self.hi is None else format_ms(ceil_granule(self.hi))
        return {"startAt": start, "endsAt": end}

    def _start(self) -> int:
        """`startAt` as sent: a millisecond before the second `lo` lies in, which a server that
        truncates to the second, rounds to it, or reads every millisecond and either kind of
        start, all read as no later than `lo` (`lo - 1` rounds past `lo` in its second's later
        half). Not covered: a server that rounds and takes the start as exclusive drops a record
        at a whole second `lo` exactly; sending earlier still re-lists the second before, which
        fills a keyset's pages with a bulk import it already read."""
        assert self.lo is not None
        return floor_granule(self.lo) - 1


@dataclass(frozen=True)
class Query:
    """Records whose every ranged field lies in its span (an AND of the ranges)."""

    spans: Mapping[WindowField, Span] = field(default_factory=dict)

    def span(self, name: WindowField) -> Span:
        return self.spans.get(name, Span())

    def narrow(self, name: WindowField, span: Span) -> Query:
        return Query({**self.spans, name: self.span(name).meet(span)})

    @property
    def empty(self) -> bool:
        return any(span.empty for span in self.spans.values())

    @property
    def ranges(self) -> int:
        return len(self.shape)

    @property
    def shape(self) -> frozenset[str]:
        """The kind of query, as the server may tell it: the fields it sends a range of."""
        return frozenset(name for name, span in self.spans.items() if span.bounded)

    def admits(self, item: dict[str, object]) -> bool:
        for name, span in self.spans.items():
            if span.bounded:
                millis = parse_ms(item.get(name))
                if millis is None or not span.contains(millis):
                    return False
        return True

    def body(self) -> dict[str, object]:
        return {name: span.wire() for name, span in self.spans.items() if span.bounded}
