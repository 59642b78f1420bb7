"""Contacts ordered by a timestamp, for date ranges and sort orders without sorting.

Each index lists contacts by (value ascending, index descending), so a slice read backwards is
newest first with ties by `_id` ascending (ids follow the index). A contact that becomes active,
or is created, gets the newest timestamp of all and simply goes to the end.
"""

from __future__ import annotations

import numpy as np

Bounds = tuple[int | None, int | None]
UNBOUNDED: Bounds = (None, None)


class TimeIndex:
    """Contacts ordered by one timestamp (ascending, ties by index descending)."""

    def __init__(self, values: np.ndarray) -> None:
        self.order = np.lexsort((-np.arange(len(values)), values))
        self.values = values[self.order]

    def span(self, bounds: Bounds, ends_inclusive: bool) -> tuple[int, int]:
        low, high = bounds
        start = 0 if low is None else int(np.searchsorted(self.values, low, side="left"))
        side = "right" if ends_inclusive else "left"
        stop = len(self.values) if high is None else int(np.searchsorted(self.values, high, side))
        return start, max(start, stop)

    def move_to_end(self, index: int, old: int | None, new: int) -> None:
        """Contact `index` now has the newest value `new` (it had `old`, or is new)."""
        if old is not None:
            start, stop = self.span((old, old), ends_inclusive=True)
            position = start + int(np.flatnonzero(self.order[start:stop] == index)[0])
            self.order = np.delete(self.order, position)
            self.values = np.delete(self.values, position)
        self.order = np.append(self.order, index)
        self.values = np.append(self.values, new)


def within(values: np.ndarray, bounds: Bounds, ends_inclusive: bool) -> np.ndarray:
    """Which values lie in the bounds: the check of a range that is not the index's own."""
    low, high = bounds
    mask = np.ones(len(values), dtype=bool)
    if low is not None:
        mask &= values >= low
    if high is not None:
        mask &= (values <= high) if ends_inclusive else (values < high)
    return mask
