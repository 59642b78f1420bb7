"""Contacts ordered by a timestamp, for date ranges and sort orders without sorting.

Each index lists contacts by (value ascending, index descending), so a slice read backwards is
newest first with ties by `_id` ascending (ids follow the index). A contact that becomes active,
or is created, gets the newest timestamp of all and simply goes to the end. A contact never
active has NEVER for lastSeenAt: first in the index (so last when read backwards, as MongoDB
sorts a missing or null value descending), and in no range, as MongoDB's $gte/$lt match no null.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Bounds = tuple[int | None, int | None]
UNBOUNDED: Bounds = (None, None)
NEVER = -(1 << 62)  # below every real time, and still an int64 once negated for a sort


class TimeIndex:
    """Contacts ordered by one timestamp (ascending, ties by index descending)."""

    def __init__(self, values: np.ndarray) -> None:
        self.order = np.lexsort((-np.arange(len(values)), values))
        self.values = values[self.order]

    def span(self, bounds: Bounds, ends_inclusive: bool) -> tuple[int, int]:
        """Where the values within the bounds lie: after every NEVER, whatever the bounds."""
        low, high = bounds
        low = NEVER + 1 if low is None else max(low, NEVER + 1)
        start = int(np.searchsorted(self.values, low, side="left"))
        side: Literal["left", "right"] = "right" if ends_inclusive else "left"
        stop = len(self.values) if high is None else int(np.searchsorted(self.values, high, side))
        return start, max(start, stop)

    def move_to_end(self, index: int, old: int | None, new: int) -> None:
        """Contact `index` now has the newest value `new` (it had `old`, or is new)."""
        if old is not None:
            self._remove(index, old)
        self.order = np.append(self.order, index)
        self.values = np.append(self.values, new)

    def move(self, index: int, old: int, new: int) -> None:
        """Contact `index` now has `new` instead of `old`, anywhere in the order (a data fix)."""
        self._remove(index, old)
        start = int(np.searchsorted(self.values, new, side="left"))
        stop = int(np.searchsorted(self.values, new, side="right"))
        position = start + int(np.count_nonzero(self.order[start:stop] > index))
        self.order = np.insert(self.order, position, index)
        self.values = np.insert(self.values, position, new)

    def _remove(self, index: int, old: int) -> None:
        start = int(np.searchsorted(self.values, old, side="left"))
        stop = int(np.searchsorted(self.values, old, side="right"))
        position = start + int(np.flatnonzero(self.order[start:stop] == index)[0])
        self.order = np.delete(self.order, position)
        self.values = np.delete(self.values, position)


def within(values: np.ndarray, bounds: Bounds, ends_inclusive: bool) -> np.ndarray:
    """Which values lie in the bounds: the check of a range that is not the index's own."""
    low, high = bounds
    mask = values != NEVER
    if low is not None:
        mask &= values >= low
    if high is not None:
        mask &= (values <= high) if ends_inclusive else (values < high)
    return mask
