"""The sandbox's server zoo switches: bounds read to the second, an exclusive start, orders by
updatedAt and backwards."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from etl_contacts.sandbox import SandboxConfig
from etl_contacts.sandbox.config import TWO_RANGES, Sort, TwoRanges
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.timestamps import format_ms, parse_ms

BASE = SandboxConfig(
    contacts=400,
    days=5,
    seed=4,
    anchor=datetime(2024, 6, 1, tzinfo=UTC),
    page_size=1_000,
    agent_change_rate=0.0,
)


def _answer(store: ContactStore, body: dict[str, object]) -> list[dict[str, object]]:
    return [orjson.loads(b) for b in store.page(parse_body(body)[0], 1).records]


def _ms(record: dict[str, object], field: str) -> int:
    millis = parse_ms(record.get(field))
    assert millis is not None, record
    return millis


def _window(lo: int, hi: int) -> dict[str, object]:
    return {"createdAt": {"startAt": format_ms(lo), "endsAt": format_ms(hi)}}


def test_bounds_read_to_the_second_drop_their_milliseconds() -> None:
    with closing(ContactStore(BASE)) as store:
        created = sorted(_ms(r, "createdAt") for r in _answer(store, {}))
    lo = next(c for c in created if c % 1000 > 100)  # a record late in its second
    hi = lo + 5_000
    for precision in (1, 1000):
        config = replace(BASE, bound_precision_ms=precision)
        with closing(ContactStore(config)) as store:
            got = sorted(_ms(r, "createdAt") for r in _answer(store, _window(lo, hi)))
        first, last = lo - lo % precision, hi - hi % precision
        assert got == [c for c in created if first <= c < last], precision


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_start_may_be_exclusive(exclusive: bool) -> None:
    config = replace(BASE, starts_at_exclusive=exclusive)
    with closing(ContactStore(config)) as store:
        created = sorted(_ms(r, "createdAt") for r in _answer(store, {}))
        lo = created[10]
        got = {_ms(r, "createdAt") for r in _answer(store, _window(lo, created[-1]))}
    assert (lo in got) is not exclusive


@pytest.mark.parametrize("field", ["createdAt", "lastSeenAt"])
def test_each_end_of_each_field_is_read_its_own_way(field: str) -> None:
    """A start exclusive and an end inclusive for one date field only: the other field's range
    keeps a start that includes and an end that excludes."""
    config = replace(BASE, starts_at_exclusive=(field,), ends_at_inclusive=(field,))
    with closing(ContactStore(config)) as store:
        records = _answer(store, {})
        for name in ("createdAt", "lastSeenAt"):
            times = sorted(t for t in (_ms(r, name) for r in records) if t is not None)
            lo, hi = times[10], times[-10]
            body: dict[str, object] = {name: {"startAt": format_ms(lo), "endsAt": format_ms(hi)}}
            got = {_ms(r, name) for r in _answer(store, body)}
            assert (lo in got, hi in got) == ((False, True) if name == field else (True, False))


def test_an_end_names_date_fields_only() -> None:
    with pytest.raises(ValueError, match="per date field"):
        replace(BASE, ends_at_inclusive=("updatedAt",))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("sort", ["updatedAt", "createdAt", "_id"])
def test_the_order_is_by_its_field_in_its_direction(sort: Sort, reverse: bool) -> None:
    config = replace(BASE, sort=sort, reverse_sort=reverse, agent_change_rate=1.0)
    with closing(ContactStore(config)) as store:
        for _ in range(50):
            store.act()  # agents change contacts: updatedAt leaves lastSeenAt behind
        records = _answer(store, {})
    keys = [str(r["_id"]) if sort == "_id" else _ms(r, sort) for r in records]
    newest_first = sort != "_id"
    assert keys == sorted(keys, reverse=newest_first != reverse)


@pytest.mark.parametrize("two_ranges", TWO_RANGES)
def test_two_ranges_in_one_body_are_read_as_the_server_reads_them(two_ranges: TwoRanges) -> None:
    with closing(ContactStore(replace(BASE, two_ranges=two_ranges))) as store:
        records = _answer(store, {})
        created = sorted(_ms(r, "createdAt") for r in records)
        seen = sorted(_ms(r, "lastSeenAt") for r in records if r.get("lastSeenAt"))
        c_lo, c_hi, s_lo, s_hi = created[100], created[300], seen[50], seen[250]
        body = {
            **_window(c_lo, c_hi),
            "lastSeenAt": {"startAt": format_ms(s_lo), "endsAt": format_ms(s_hi)},
        }
        got = {str(r["_id"]) for r in _answer(store, body)}

    def match(record: dict[str, object], name: str, lo: int, hi: int) -> bool:
        return record.get(name) is not None and lo <= _ms(record, name) < hi

    by_created = {str(r["_id"]) for r in records if match(r, "createdAt", c_lo, c_hi)}
    by_seen = {str(r["_id"]) for r in records if match(r, "lastSeenAt", s_lo, s_hi)}
    expected = {
        "and": by_created & by_seen,
        "or": by_created | by_seen,
        "createdAt": by_created,
        "lastSeenAt": by_seen,
    }[two_ranges]
    assert by_created & by_seen and by_created - by_seen and by_seen - by_created
    assert got == expected
