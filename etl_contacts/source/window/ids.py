"""The `_id`s a read handed over, kept small while its window waits for the run's end.

A window whose read stays doubtful (a doubted empty answer stood before the run saw the server
answer empty falsely) is settled only when the run ends, and read again then if the run saw one:
its ids must outlive the read. On a calm load that was 16 windows of 91. As a frozenset of
strings, a window of 11,000 contacts held 1.3 MB until the end; an ObjectId (24 hex digits, what
the platform gives) packed in 12 bytes holds 132 kB. The command's main process at 1,000,000
contacts peaked at 305 MB so, 330 MB before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

WIDTH = 12


class PackedIds:
    """A set of ids: ObjectIds as 12 bytes each in one sorted block, any other id as itself."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        others: set[str] = set()
        packed: list[bytes] = []
        for record_id in ids:
            key = _object_id(record_id)
            if key is None:
                others.add(record_id)
            else:
                packed.append(key)
        self._packed = b"".join(sorted(packed))
        self._others = frozenset(others)

    def __len__(self) -> int:
        return len(self._packed) // WIDTH + len(self._others)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str):
            return False
        key = _object_id(record_id)
        if key is None:
            return record_id in self._others
        count = len(self._packed) // WIDTH
        at = bisect_left(range(count), key, key=self._at)
        return at < count and self._at(at) == key

    def _at(self, index: int) -> bytes:
        return self._packed[index * WIDTH : (index + 1) * WIDTH]


def _object_id(record_id: str) -> bytes | None:
    """The 12 bytes of an ObjectId (24 lowercase hex digits, nothing else), else None."""
    if len(record_id) != 2 * WIDTH:
        return None
    try:
        key = bytes.fromhex(record_id)
    except ValueError:
        return None
    return key if key.hex() == record_id else None
