"""What a run knows of its own windows: how far they are complete, and what it already has."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from etl_contacts.source import RecordsBatch, Window
from etl_contacts.timestamps import parse_ms, to_ms

# Clocks of ours and the server's may disagree by this much: a record touched this close to the
# run's start is not trusted to be the same copy the run's createdAt window received.
CLOCK_MARGIN = timedelta(minutes=10)


class GapFree:
    """Per stream, how far the run's windows are complete without a gap from the first.

    Windows finish out of order (several are fetched at once); a watermark must never claim a
    window that is still loading, so it follows only the gap-free prefix. The lastSeenAt
    watermark also waits for the createdAt one: `Repeats` leaves to the createdAt windows the
    records both streams would hand over, and those have createdAt <= lastSeenAt.
    """

    def __init__(self, windows: Sequence[Window]) -> None:
        self._order = {
            stream: sorted((w for w in windows if w.field == stream), key=lambda w: w.start)
            for stream in {w.field for w in windows}
        }
        self._next = dict.fromkeys(self._order, 0)
        self._done: set[Window] = set()
        self._reported: dict[str, datetime] = {}

    def complete(self, window: Window) -> dict[str, datetime]:
        """The streams whose watermark this completion moves, and to where."""
        self._done.add(window)
        order, position = self._order[window.field], self._next[window.field]
        while position < len(order) and order[position] in self._done:
            position += 1
        self._next[window.field] = position
        moved = {}
        for stream in self._order:
            mark = self._watermark(stream)
            if mark is not None and mark != self._reported.get(stream):
                moved[stream] = self._reported[stream] = mark
        return moved

    def _prefix_end(self, stream: str) -> datetime | None:
        position = self._next.get(stream, 0)
        return self._order[stream][position - 1].end if position else None

    def _watermark(self, stream: str) -> datetime | None:
        mark = self._prefix_end(stream)
        if stream == "lastSeenAt" and "createdAt" in self._order and mark is not None:
            created = self._prefix_end("createdAt")
            mark = None if created is None else min(mark, created)
        return mark


class Repeats:
    """lastSeenAt records that are copies of what this run's createdAt windows hand over.

    A backfill receives most contacts twice: through the day they were created and the day they
    were last seen. The second copy costs a transform and an upsert that finds nothing new. It is
    a copy when its createdAt lies in one of the run's createdAt windows and it was last touched
    (updatedAt, lastSeenAt) before the run began: both copies were then served after the last
    change. Anything touched since may be newer than the createdAt copy, and is loaded.
    """

    def __init__(self, windows: Sequence[Window], started: datetime) -> None:
        spans = sorted((to_ms(w.start), to_ms(w.end)) for w in windows if w.field == "createdAt")
        self._starts = [lo for lo, _ in spans]
        self._ends = [hi for _, hi in spans]
        self._quiet_before = to_ms(started - CLOCK_MARGIN)

    def fresh(self, batch: RecordsBatch) -> list[object]:
        """The records of a batch that are not such copies."""
        if batch.window.field != "lastSeenAt" or not self._starts:
            return batch.records
        return [r for r in batch.records if not self._is_copy(r)]

    def _is_copy(self, record: object) -> bool:
        if not isinstance(record, dict):
            return False
        created, updated, seen = (
            parse_ms(record.get(key)) for key in ("createdAt", "updatedAt", "lastSeenAt")
        )
        if created is None or updated is None or seen is None:
            return False
        if max(updated, seen) >= self._quiet_before:
            return False
        position = bisect_right(self._starts, created) - 1
        return position >= 0 and created < self._ends[position]
