"""The indexed account: sort orders, date bounds, pages, activity and what the truth says."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypedDict

import orjson
import pytest

from etl_contacts.sandbox import SandboxConfig
from etl_contacts.sandbox.config import Sort
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.timestamps import format_ms


class Record(TypedDict):
    """The fields of a contact's JSON these tests read: all strings, as no contact here is one
    never active (whose lastSeenAt is null or missing)."""

    _id: str
    createdAt: str
    lastSeenAt: str
    updatedAt: str


ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
BASE = SandboxConfig(contacts=1500, days=10, seed=8, anchor=ANCHOR, bulk_import_share=0.3)


def pages(store: ContactStore, body: dict[str, object]) -> list[list[Record]]:
    query, _ = parse_body(body)
    result, page = [], 1
    while blobs := store.page(query, page).records:
        result.append([orjson.loads(b) for b in blobs])
        page += 1
    return result


def everything(store: ContactStore, body: dict[str, object] | None = None) -> list[Record]:
    return [r for page in pages(store, body or {}) for r in page]


def truth(store: ContactStore) -> list[Record]:
    return [orjson.loads(b) for b in store.snapshot().contacts]


@pytest.mark.parametrize("sort", ["lastSeenAt", "createdAt", "_id"])
def test_sort_orders_newest_first_with_ties_by_id(sort: Sort) -> None:
    with closing(ContactStore(replace(BASE, sort=sort, page_size=7))) as store:
        records = everything(store)
        window = everything(store, {"createdAt": {"startAt": format_ms(0)}})
        assert len(records) == len(window) == 1500
        if sort == "_id":
            assert [r["_id"] for r in records] == sorted(r["_id"] for r in records)
        else:
            keys = [(r[sort], r["_id"]) for r in records]
            assert keys == sorted(keys, key=lambda k: (_negate(k[0]), k[1]))
            assert len({r[sort] for r in records}) < len(records), "ties must exist to be tested"
        assert window == records


def _negate(timestamp: object) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in str(timestamp))


@pytest.mark.parametrize("inclusive", [False, True])
def test_start_is_inclusive_and_the_end_as_configured(inclusive: bool) -> None:
    with closing(ContactStore(replace(BASE, ends_at_inclusive=inclusive))) as store:
        records = truth(store)
        created = sorted(r["createdAt"] for r in records)
        start = created[200]
        end = max(set(created), key=created.count)  # a bulk import: hundreds at the end bound
        got = {
            r["_id"] for r in everything(store, {"createdAt": {"startAt": start, "endsAt": end}})
        }
        before_end = (lambda t: t <= end) if inclusive else (lambda t: t < end)
        expected = {
            r["_id"] for r in records if start <= r["createdAt"] and before_end(r["createdAt"])
        }
        assert got == expected and any(r["createdAt"] == start for r in records)
        seen = sorted(r["lastSeenAt"] for r in records)[700]
        got_seen = everything(store, {"lastSeenAt": {"startAt": "", "endsAt": seen}})
        assert {r["_id"] for r in got_seen} == {
            r["_id"]
            for r in records
            if (r["lastSeenAt"] <= seen if inclusive else r["lastSeenAt"] < seen)
        }


def test_both_ranges_together_and_empty_ranges() -> None:
    with closing(ContactStore(BASE)) as store:
        records = truth(store)
        low, high = sorted(r["createdAt"] for r in records)[300], format_ms(10**13)
        seen = sorted(r["lastSeenAt"] for r in records)[900]
        body: dict[str, object] = {
            "createdAt": {"startAt": low, "endsAt": high},
            "lastSeenAt": {"startAt": seen},
        }
        expected = {r["_id"] for r in records if r["createdAt"] >= low and r["lastSeenAt"] >= seen}
        assert expected and {r["_id"] for r in everything(store, body)} == expected
        assert everything(store, {"createdAt": {"startAt": high, "endsAt": low}}) == []


def test_pages_are_full_until_the_last_and_past_it_empty() -> None:
    with closing(ContactStore(replace(BASE, page_size=40))) as store:
        sizes = [len(page) for page in pages(store, {})]
        assert sizes == [40] * 37 + [20]
        assert store.page(parse_body({})[0], 999).records == []


def test_duplicate_comes_from_the_neighbouring_page() -> None:
    with closing(ContactStore(replace(BASE, page_size=10))) as store:
        query, _ = parse_body({})
        first, second = store.page(query, 1), store.page(query, 2, duplicate=True)
        assert second.duplicate == first.records[-1]
        assert store.page(query, 1, duplicate=True).duplicate == second.records[0]


def test_activity_moves_creates_and_deletes_and_the_truth_follows() -> None:
    config = replace(BASE, activity_rate=1.0, create_rate=1.0, delete_rate=0.5)
    with closing(ContactStore(config)) as store:
        before = {r["_id"]: r for r in truth(store)}
        for _ in range(40):
            store.act()
        after = {r["_id"]: r for r in truth(store)}
        snapshot = store.snapshot()
        newest = everything(store)[:5]
    anchor = format_ms(int(ANCHOR.timestamp() * 1000))
    deleted = {d["_id"] for d in snapshot.deleted}
    assert (
        deleted and not deleted & set(after) and set(before) - set(after) == deleted & set(before)
    )
    created = (set(after) | deleted) - set(before)
    assert len(created) == 40 and all(after[i]["createdAt"] > anchor for i in created - deleted)
    moved = [i for i in before if i in after and after[i]["lastSeenAt"] != before[i]["lastSeenAt"]]
    assert moved and all(after[i]["lastSeenAt"] == after[i]["updatedAt"] > anchor for i in moved)
    assert newest[0]["lastSeenAt"] == format_ms(snapshot.now_ms), "the latest change is page 1"


def test_rates_above_one_bring_several_changes_per_request() -> None:
    with closing(ContactStore(replace(BASE, create_rate=3.0))) as store:
        for _ in range(10):
            store.act()
        assert len(truth(store)) == 1530


def test_activity_picks_the_same_contacts_for_the_same_seed() -> None:
    config = replace(BASE, activity_rate=1.0, delete_rate=1.0)
    runs = []
    for _ in range(2):
        with closing(ContactStore(config)) as store:
            for _ in range(20):
                store.act()
            runs.append([d["_id"] for d in store.snapshot().deleted])
    assert runs[0] == runs[1] and len(runs[0]) == 20


def test_every_contact_is_encoded_in_the_background() -> None:
    with closing(ContactStore(replace(BASE, contacts=3000))) as store:
        store._ready.wait(30)
        assert store.status() == {"contacts": 3000, "rendered": 3000, "ready": True}
