"""One second holding more than a page (a bulk import): no narrower range tells its records
apart, so it is paged by number, and paged again until a pass finds nothing new."""

from __future__ import annotations

import time

from etl_contacts.source.errors import NotConvergedError
from etl_contacts.source.models import WindowField
from etl_contacts.source.query import GRANULE_MS, Query, Span
from etl_contacts.source.window.reader import MAX_PASSES, Reader, Reading

# How far a server that does not say its time may be behind ours, at most: a clock a day off
# would misdate every record it writes.
UNKNOWN_CLOCK_MARGIN_MS = 86_400_000


def read_second(read: Reader, query: Query, key: WindowField, second: int) -> Reading:
    """Every record whose `key` lies in the whole second from `second`, by page number, until a
    pass adds none (a deletion during a pass shifts records onto pages already read). A past
    second is paged twice at least: a keyset hands its page 1 before slicing it, so a first pass
    may add none while a deletion shifted a record onto that page behind it.

    A pass reads to an empty page, except when the second is past on the server's clock: it then
    gains no record (createdAt and lastSeenAt only ever leave it), records only move toward page
    1, and a record a deletion moved past the reader lies on a page before the one it was read
    after. Later passes then stop at the first pass's last page, or the page before it when that
    last page was shorter than page 1 (not full: nothing was behind it to move). A server that
    never says its time (no `Date` header) has its seconds taken for past a day after ours.
    """
    exact = query.narrow(key, Span(second, second + GRANULE_MS))
    now = read.learned.server_now_at_least()
    if now is None:
        now = int(time.time() * 1000) - UNKNOWN_CLOCK_MARGIN_MS
    past = second + GRANULE_MS <= now
    pages: int | None = None
    for done in range(MAX_PASSES):
        new = 0
        lengths: list[int] = []
        while pages is None or len(lengths) < pages:
            answer = yield from read.ask(exact, len(lengths) + 1)
            if not answer.items:
                break
            lengths.append(len(answer.items))
            new += answer.new
        if past and pages is None:
            last_short = len(lengths) > 1 and lengths[-1] < lengths[0]
            pages = len(lengths) - last_short
        if not new and (done or not past):
            return
    raise NotConvergedError(
        f"{read.window}: the records of one second kept shifting for {MAX_PASSES} passes"
    )
