"""Pseudo-random numbers per contact that depend only on (seed, stream, index).

Unlike one generator advancing through all contacts, a counter-based hash lets one contact (a
single record, a contact created while serving) be computed alone and agree with the bulk
computation of all of them, in vectorized numpy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
# Streams: independent sequences of draws, one per purpose, so adding a draw to one purpose
# leaves every other purpose's values as they were.
TRAITS, LOOKS, ATTRIBUTES, STATUS = 1, 2, 3, 4


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 that scrambles every bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix_int(value: int) -> int:
    return int(_mix(np.array([value & MASK64], dtype=np.uint64))[0])


class Draws:
    """Pseudo-random numbers per contact: a pure function of (seed, stream, index)."""

    def __init__(self, seed: int, stream: int, indexes: np.ndarray) -> None:
        self._key = _mix_int(seed * GOLDEN + stream)
        self._spread = indexes.astype(np.uint64) * np.uint64(GOLDEN)
        self._words = 0

    def bits(self, count: int) -> np.ndarray:
        """`count` (at most 64) random bits per contact, from a fresh word."""
        self._words += 1
        word = _mix(self._spread + np.uint64(_mix_int(self._key + self._words)))
        return word >> np.uint64(64 - count)

    def uniform(self) -> np.ndarray:
        return self.bits(32).astype(np.float64) / 2.0**32

    def below(self, limit: int | np.ndarray) -> np.ndarray:
        return (self.uniform() * limit).astype(np.int64)

    def chance(self, probability: float) -> np.ndarray:
        return self.uniform() < probability

    def pick(self, weights: tuple[float, ...]) -> np.ndarray:
        bounds = np.cumsum(weights) / sum(weights)
        return np.minimum(np.searchsorted(bounds, self.uniform(), side="right"), len(weights) - 1)


@lru_cache(maxsize=64)
def salt(seed: int) -> int:
    """40 bits that tell one seed's ids from another's."""
    return _mix_int(seed) >> 24
