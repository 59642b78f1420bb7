"""Generated accounts: when contacts were created and last seen, and single records.

Deterministic for (seed, anchor, contacts, days): the same arguments give the same account.
"""

from __future__ import annotations

import numpy as np

from etl_contacts.sandbox.index import NEVER
from etl_contacts.sandbox.render import renderer
from etl_contacts.sandbox.traits import Traits

MS_PER_DAY = 86_400_000


def generate_times(
    n: int, days: int, anchor_ms: int, seed: int, bulk_share: float, never_share: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """createdAt and lastSeenAt (ms) of n contacts over `days` days before the anchor.

    Sorted by createdAt, so the index is the creation order. A share of the contacts arrive in
    bulk imports: a few hundred with one createdAt to the millisecond. A quarter were never seen
    again (lastSeenAt = createdAt); the others' last activity leans towards their creation.
    Exactly `never_share` of them (imported, never active) have no lastSeenAt at all: NEVER.
    Those are drawn last, so the other times are the same with or without them.
    """
    rng = np.random.default_rng(seed)
    start = anchor_ms - days * MS_PER_DAY
    created = rng.integers(start, anchor_ms, size=n, dtype=np.int64)
    n_bulk = int(n * bulk_share)
    position = 0
    while position < n_bulk:
        size = int(rng.integers(100, 400))
        created[position : min(position + size, n_bulk)] = rng.integers(start, anchor_ms)
        position += size
    created.sort()
    returned = rng.random(n) >= 0.25
    seen_offset = (rng.random(n) ** 3 * (anchor_ms - created)).astype(np.int64)
    last_seen = np.minimum(created + np.where(returned, seen_offset, 0), anchor_ms - 1)
    if never_share:
        last_seen[rng.choice(n, size=round(n * never_share), replace=False)] = NEVER
    return created, last_seen


def render(
    seed: int, index: int, created_ms: int, last_seen_ms: int, updated_ms: int, status: int
) -> dict[str, object]:
    """One contact's record, computed alone (tests use it as a realistic record)."""
    rows = Traits.generate(seed, index, index + 1)
    indexes, created, last_seen, updated = (
        np.array([v], dtype=np.int64) for v in (index, created_ms, last_seen_ms, updated_ms)
    )
    statuses = np.array([status])
    return renderer(seed).records(rows, indexes, created, last_seen, updated, statuses)[0]
