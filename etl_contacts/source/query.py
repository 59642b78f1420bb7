"""Date-range queries as the fetcher reasons about them, and as the API receives them.

Inside, every range is half-open in integer milliseconds, `[lo, hi)`, either end open (None);
"up to and including b" is `hi = b + 1`. Only `body()` knows the wire's uncertainties: until the
server has shown that a bound matches a record equal to it, `startAt` is sent a millisecond early
and `endsAt` as `hi`, which is right either way; records outside a range are dropped here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from etl_contacts.source.models import WindowField
from etl_contacts.timestamps import format_ms, parse_ms

# Stand-ins for an open end where a split needs numbers: before the first contact of any account
# and after the last one this code will see.
EARLIEST_MS = 0
LATEST_MS = 7_258_118_400_000  # 2200-01-01


@dataclass(frozen=True)
class Inclusive:
    """Whether the server has shown that `startAt` / `endsAt` match a record equal to them."""

    starts: bool = False
    ends: bool = False


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
        """Outside even the slack the wire allows: the server ignored this range."""
        return (self.lo is not None and millis < self.lo - 1) or (
            self.hi is not None and millis > self.hi
        )

    def meet(self, other: Span) -> Span:
        lows = [v for v in (self.lo, other.lo) if v is not None]
        highs = [v for v in (self.hi, other.hi) if v is not None]
        return Span(max(lows) if lows else None, min(highs) if highs else None)

    def wire(self, bounds: Inclusive) -> dict[str, str]:
        start = "" if self.lo is None else format_ms(self.lo if bounds.starts else self.lo - 1)
        if self.hi is None:
            return {"startAt": start, "endsAt": ""}
        return {"startAt": start, "endsAt": format_ms(self.hi - 1 if bounds.ends else self.hi)}


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
        return sum(span.bounded for span in self.spans.values())

    def admits(self, item: dict[str, object]) -> bool:
        for name, span in self.spans.items():
            if span.bounded:
                millis = parse_ms(item.get(name))
                if millis is None or not span.contains(millis):
                    return False
        return True

    def body(self, bounds: Inclusive) -> dict[str, object]:
        return {name: span.wire(bounds) for name, span in self.spans.items() if span.bounded}
