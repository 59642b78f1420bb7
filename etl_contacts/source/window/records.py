"""What a strategy reads off a record: its dates, whether it was ever active, its identity."""

from __future__ import annotations

import orjson

from etl_contacts.source.errors import SortChangedError
from etl_contacts.source.learned import Order
from etl_contacts.source.models import LAST_SEEN_AT
from etl_contacts.timestamps import parse_ms


def value(item: object, name: str) -> int | None:
    return parse_ms(item.get(name)) if isinstance(item, dict) else None


def never_active(item: object) -> bool:
    """A contact with no lastSeenAt (null or absent), which no lastSeenAt range returns."""
    return isinstance(item, dict) and item.get(LAST_SEEN_AT) is None


def together(items: list[object]) -> None:
    """Never-active contacts sort together at one end of an order by lastSeenAt; found between
    active ones, the order is another (by updatedAt, say): raises SortChangedError."""
    flags = [never_active(r) for r in items if isinstance(r, dict)]
    if flags != sorted(flags) and flags != sorted(flags, reverse=True):
        raise SortChangedError(items)


def ordered(items: list[object], order: Order) -> list[int]:
    """The page's values of the sort field, in order; raises SortChangedError when they are
    not sorted."""
    values = [v for v in (value(r, order.field) for r in items) if v is not None]
    if values != sorted(values, reverse=order.descending):
        raise SortChangedError(items)
    return values


def by_id(items: list[object], descending: bool) -> bool:
    """Whether the page's records are in `_id` order too: MongoDB's ObjectIds begin with their
    creation second, so a listing sorted by `_id` looks sorted by createdAt, until it reaches
    contacts whose ids were minted later than their createdAt (an import)."""
    ids = [str(r["_id"]) for r in items if isinstance(r, dict) and isinstance(r.get("_id"), str)]
    return ids == sorted(ids, reverse=descending)


def newest(items: list[object]) -> int | None:
    values = [v for v in (value(r, LAST_SEEN_AT) for r in items) if v is not None]
    return max(values, default=None)


def earliest(*moments: int | None) -> int | None:
    known = [m for m in moments if m is not None]
    return min(known, default=None)


def fingerprint(item: object) -> bytes:
    """Identity of a record without a usable `_id`, so it is handed over once per window."""
    try:
        return orjson.dumps(item, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: still one identity
        return repr(item).encode()
