"""Quirks the real API may have: contacts never active, where a descending sort puts them, a
server clock that is not ours, and a record silently left out of its page."""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

import orjson
import pytest

from etl_contacts.sandbox import SandboxConfig
from etl_contacts.sandbox.config import Sort
from etl_contacts.sandbox.faults import FaultPlan
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.timestamps import format_ms, parse_ms, to_ms


class Record(TypedDict):
    """The fields of a contact's JSON these tests read; a contact never active has lastSeenAt
    null or no such key."""

    _id: str
    createdAt: str
    updatedAt: str
    lastSeenAt: NotRequired[str | None]


ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
BASE = SandboxConfig(
    contacts=1000, days=10, seed=6, anchor=ANCHOR, page_size=37, never_active_share=0.2
)
SINCE_ANCHOR = {"startAt": format_ms(to_ms(ANCHOR))}


def everything(store: ContactStore, body: dict[str, object] | None = None) -> list[Record]:
    query, _ = parse_body(body or {})
    records: list[Record] = []
    page = 1
    while blobs := store.page(query, page).records:
        records.extend(orjson.loads(b) for b in blobs)
        page += 1
    return records


def truth(store: ContactStore) -> list[Record]:
    return [orjson.loads(b) for b in store.snapshot().contacts]


def never_active(record: Record) -> bool:
    return record.get("lastSeenAt") is None


def last_seen(record: Record) -> str:
    """lastSeenAt of a contact that has been active."""
    seen = record.get("lastSeenAt")
    assert seen is not None, record
    return seen


def ids(records: list[Record]) -> list[str]:
    return [r["_id"] for r in records]


def ms(timestamp: str) -> int:
    millis = parse_ms(timestamp)
    assert millis is not None, timestamp
    return millis


def test_the_configured_share_is_never_active_some_null_some_without_the_key() -> None:
    with (
        closing(ContactStore(BASE)) as store,
        closing(ContactStore(replace(BASE, never_active_share=0.0))) as usual,
    ):
        records, usual_records = truth(store), truth(usual)
    never = [r for r in records if never_active(r)]
    absent = [r for r in never if "lastSeenAt" not in r]
    assert len(records) == 1000 and len(never) == 200
    assert 60 < len(absent) < 140, "about half have no key, the others null"
    assert all(r["updatedAt"] == r["createdAt"] for r in never)
    assert not any(never_active(r) for r in usual_records)
    active = {r["_id"]: r["lastSeenAt"] for r in records if not never_active(r)}
    assert ids(records) == ids(usual_records), "the same contacts, created at the same times"
    assert all(active[r["_id"]] == r["lastSeenAt"] for r in usual_records if r["_id"] in active)


@pytest.mark.parametrize(
    "bounds",
    [
        {"startAt": "2000-01-01T00:00:00.000Z"},
        {"endsAt": "2100-01-01T00:00:00.000Z"},
        {"startAt": -(2**63) + 1, "endsAt": 2**62},
    ],
)
def test_a_lastseenat_range_never_matches_contacts_never_active(bounds: dict[str, object]) -> None:
    with closing(ContactStore(BASE)) as store:
        records = truth(store)
        median = sorted(r["createdAt"] for r in records)[500]
        ranged = everything(store, {"lastSeenAt": bounds})
        # the createdAt range is the narrower: lastSeenAt is checked outside its index
        both = everything(store, {"lastSeenAt": bounds, "createdAt": {"startAt": median}})
        created = everything(store, {"createdAt": {"startAt": "2000-01-01"}})
    assert len(ranged) == 800 and not any(never_active(r) for r in ranged)
    assert set(ids(both)) == {
        r["_id"] for r in records if r["createdAt"] >= median and not never_active(r)
    }
    assert len(created) == 1000 and sum(never_active(r) for r in created) == 200


@pytest.mark.parametrize("nulls_first", [False, True])
@pytest.mark.parametrize("body", [{}, {"createdAt": {"startAt": "2000-01-01"}}])
def test_a_lastseenat_sort_puts_contacts_never_active_where_configured(
    nulls_first: bool, body: dict[str, object]
) -> None:
    with closing(ContactStore(replace(BASE, nulls_first=nulls_first))) as store:
        records = everything(store, body)
    never = [r for r in records if never_active(r)]
    active = [r for r in records if not never_active(r)]
    newest_first = sorted(sorted(active, key=lambda r: r["_id"]), key=last_seen, reverse=True)
    assert len(never) == 200 and active == newest_first
    assert ids(never) == sorted(ids(never)), "in _id order"
    assert records == (never + active if nulls_first else active + never)


@pytest.mark.parametrize("sort", ["createdAt", "_id"])
def test_other_sorts_keep_contacts_never_active_in_their_place(sort: Sort) -> None:
    config = replace(BASE, sort=sort)
    with (
        closing(ContactStore(config)) as last,
        closing(ContactStore(replace(config, nulls_first=True))) as first,
    ):
        records = everything(last)
        assert everything(first) == records
    assert ids(records) == (sorted(ids(records)) if sort == "_id" else ids(records))
    assert 0 < sum(never_active(r) for r in records[:200]) < 200, "spread, not grouped"


def test_a_contact_never_active_that_becomes_active_is_like_any_other() -> None:
    with closing(
        ContactStore(replace(BASE, contacts=300, never_active_share=1.0, nulls_first=True))
    ) as store:
        assert everything(store, {"lastSeenAt": {"startAt": "2000-01-01"}}) == []
        store.touch(1)
        records = everything(store)
        ranged = everything(store, {"lastSeenAt": SINCE_ANCHOR})
    touched = [r for r in records if not never_active(r)]
    assert ranged == touched == records[-1:], "nulls first: the others come before it"
    assert touched[0]["lastSeenAt"] == touched[0]["updatedAt"] > SINCE_ANCHOR["startAt"]
    assert ids(records[:-1]) == sorted(ids(records[:-1]))


@pytest.mark.parametrize("offset_ms", [-3_600_000, 90_000_000])
def test_activity_is_stamped_by_the_server_clock(offset_ms: int) -> None:
    config = replace(BASE, clock_offset_ms=offset_ms, activity_rate=2, create_rate=1, delete_rate=1)
    with closing(ContactStore(config)) as store:
        before = truth(store)
        ours = time.time() * 1000 + offset_ms
        for _ in range(5):
            store.act()
        snapshot = store.snapshot()
    after = [orjson.loads(b) for b in snapshot.contacts]
    old = {(r["_id"], r.get("lastSeenAt"), r["createdAt"]) for r in before}
    changed = [r for r in after if (r["_id"], r.get("lastSeenAt"), r["createdAt"]) not in old]
    stamps = [last_seen(r) for r in changed] + [d["deletedAt"] for d in snapshot.deleted]
    assert len(changed) >= 5 and len(snapshot.deleted) == 5
    assert all(abs(ms(s) - ours) < 1000 for s in stamps), (ours, stamps)
    assert abs(snapshot.now_ms - ours) < 1000
    untouched = [r for r in before if r["_id"] in {a["_id"] for a in after} - set(ids(changed))]
    assert untouched and all(r["createdAt"] < SINCE_ANCHOR["startAt"] for r in untouched)


def test_hide_leaves_one_record_out_of_its_place_and_reports_which() -> None:
    page = [orjson.dumps({"_id": f"{i:024x}", "n": i}) for i in range(20)]
    plan = FaultPlan(SandboxConfig(seed=3, faults={"hide": 1.0}))
    served = [plan.hide(page) for _ in range(30)]
    report = plan.report()
    hidden = report["hidden"]
    assert isinstance(hidden, list), report
    shorter = [shown for shown in served if len(shown) == len(page) - 1]
    assert report["faults"] == {"hide": len(shorter)} and len(hidden) == len(shorter)
    for shown, missing in zip(shorter, hidden, strict=True):
        assert shown == [b for b in page if orjson.loads(b)["_id"] != missing]
    assert len(set(hidden)) == len(hidden) > 10, "each record is hidden from one answer only"
    assert all(shown == page for shown in served if shown not in shorter)
    again = FaultPlan(SandboxConfig(seed=3, faults={"hide": 1.0}))
    assert [again.hide(page) for _ in range(30)] == served
