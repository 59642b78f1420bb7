"""What the client learns about the server from its answers, shared by every window of a run.

Nothing here is configuration: page size, sort order and whether `endsAt` is inclusive are
observed. Each fact is learned only from evidence that cannot mislead: a page is known to have
been full when a narrower query found records it had left out, and the page size is the smallest
such page (a malformed record injected into a page can only make a page look longer).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

CONFIRMATIONS = 3


@dataclass
class Learned:
    ends_inclusive: bool | None = None
    sort_field: str | None = None
    _full_pages: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def page_size(self) -> int | None:
        """The server's page size, once confirmed by enough full pages."""
        with self._lock:
            if len(self._full_pages) >= CONFIRMATIONS:
                return min(self._full_pages)
        return None

    def confirm_full(self, length: int) -> None:
        with self._lock:
            if length > 0 and len(self._full_pages) < 100:
                self._full_pages.append(length)

    def learn_ends_inclusive(self) -> None:
        with self._lock:
            self.ends_inclusive = True

    def learn_sort(self, field_name: str) -> None:
        with self._lock:
            if self.sort_field is None:
                self.sort_field = field_name

    def is_short(self, length: int) -> bool:
        """True only when the page certainly holds everything the query matched."""
        size = self.page_size
        return length == 0 or (size is not None and length < size)
