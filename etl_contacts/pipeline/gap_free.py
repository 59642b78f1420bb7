"""How far a run's windows are complete, for the watermarks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from etl_contacts.source import CREATED_AT, LAST_SEEN_AT, Window


class GapFree:
    """Per stream, how far the run's windows are complete without a gap from the first.

    Windows finish out of order (several are fetched at once); a watermark must never claim a
    window that is still loading, so it follows only the gap-free prefix. The lastSeenAt
    watermark also waits for the createdAt one: the run's lastSeenAt window leaves to the
    createdAt windows the contacts created in the run's days.
    """

    def __init__(self, windows: Sequence[Window]) -> None:
        self._order: dict[str, list[Window]] = {
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
        moved: dict[str, datetime] = {}
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
        if stream == LAST_SEEN_AT and CREATED_AT in self._order and mark is not None:
            created = self._prefix_end(CREATED_AT)
            mark = None if created is None else min(mark, created)
        return mark
