"""The sandbox's means to test deletes: contacts named by id or by a share of a day, a data fix
that moves createdAt (and keeps the `_id`), and answers that say success with no records."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime

import orjson
import pytest
import requests

from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.timestamps import format_ms, parse_ms

ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
DAY_MS = 86_400_000
BASE = SandboxConfig(contacts=300, days=5, seed=9, anchor=ANCHOR, never_active_share=0.1)


def _records(store: ContactStore) -> dict[str, dict[str, object]]:
    return {str(r["_id"]): r for r in (orjson.loads(b) for b in store.snapshot().contacts)}


def _ms(value: object) -> int:
    millis = parse_ms(value)
    assert millis is not None, value
    return millis


def test_contacts_named_by_id_are_the_ones_acted_on() -> None:
    with closing(ContactStore(BASE)) as store:
        before = _records(store)
        chosen = sorted(before)[10:14]
        assert store.act_on("delete", {"ids": [*chosen, "not an id"]}) == 4
        after = _records(store)
        assert set(before) - set(after) == set(chosen)
        assert {d["_id"] for d in store.snapshot().deleted} == set(chosen)
        assert store.act_on("delete", {"ids": chosen}) == 0, "deleted ones are not live"


def test_a_share_of_a_day_is_deleted_and_nothing_else() -> None:
    with closing(ContactStore(BASE)) as store:
        before = _records(store)
        day = format_ms(min(_ms(r["createdAt"]) for r in before.values()))[:10]
        of_day = {i for i, r in before.items() if str(r["createdAt"]).startswith(day)}
        deleted = store.act_on("delete", {"created_on": day, "share": 1 / 3})
        gone = set(before) - set(_records(store))
        assert 0 < deleted == len(gone) and gone <= of_day
        assert deleted == -(-len(of_day) // 3), "a third, rounded up"


def test_a_data_fix_moves_created_at_and_keeps_the_id_and_last_seen_at() -> None:
    with closing(ContactStore(BASE)) as store:
        before = _records(store)
        chosen = sorted(before)[:3]
        assert store.act_on("move_created", {"ids": chosen, "by_ms": -2 * DAY_MS}) == 3
        after = _records(store)
        assert set(after) == set(before), "the same ids"
        for contact in chosen:
            old, new = before[contact], after[contact]
            assert _ms(new["createdAt"]) == _ms(old["createdAt"]) - 2 * DAY_MS
            assert new.get("lastSeenAt") == old.get("lastSeenAt")
            assert _ms(new["updatedAt"]) > _ms(old["updatedAt"])
        # the createdAt index follows: a range on the new day finds them, the old one does not
        moved = _ms(after[chosen[0]]["createdAt"])
        query = {"createdAt": {"startAt": format_ms(moved), "endsAt": format_ms(moved + 1)}}
        found = {str(orjson.loads(b)["_id"]) for b in store.page(parse_body(query)[0], 1).records}
        assert chosen[0] in found
        old_ms = _ms(before[chosen[0]]["createdAt"])
        query = {"createdAt": {"startAt": format_ms(old_ms), "endsAt": format_ms(old_ms + 1)}}
        found = {str(orjson.loads(b)["_id"]) for b in store.page(parse_body(query)[0], 1).records}
        assert chosen[0] not in found


@pytest.mark.parametrize(
    "spec",
    [{"ids": "x"}, {"created_on": "someday"}, {"created_on": "2024-05-30", "share": 2}, {}],
)
def test_a_wrong_selection_is_refused(spec: dict[str, object]) -> None:
    with closing(ContactStore(BASE)) as store, pytest.raises(ValueError, match=r"."):
        store.act_on("delete", spec)


def test_an_outage_answers_success_without_records_for_so_many_requests() -> None:
    with SandboxServer(BASE) as sandbox:
        url = f"{sandbox.base_url}/inbox/users"
        headers = {"Authorization": f"Bearer {BASE.token}", "authtype": "Key"}
        body = orjson.dumps({"page": 1})

        def answer() -> list[object]:
            response = requests.post(url, data=body, headers=headers, timeout=10)
            assert response.status_code == 200
            data = response.json()
            assert data["success"] is True
            return list(data["data"])

        assert answer(), "records before the outage"
        requests.post(f"{sandbox.base_url}/_sandbox/outage", data=b'{"requests": 2}', timeout=10)
        assert [answer(), answer()] == [[], []]
        assert answer(), "records again after it"
        assert sandbox.truth()["empty_answers"] == 2
        refused = requests.post(f"{sandbox.base_url}/_sandbox/outage", data=b"[1]", timeout=10)
        assert refused.status_code == 422


def test_an_outage_by_time_ends_by_itself() -> None:
    with SandboxServer(BASE) as sandbox:
        requests.post(f"{sandbox.base_url}/_sandbox/outage", data=b'{"seconds": 3600}', timeout=10)
        url = f"{sandbox.base_url}/inbox/users"
        headers = {"Authorization": f"Bearer {BASE.token}", "authtype": "Key"}
        response = requests.post(url, data=b'{"page": 1}', headers=headers, timeout=10)
        assert response.json()["data"] == []
        requests.post(f"{sandbox.base_url}/_sandbox/outage", data=b'{"seconds": 0}', timeout=10)
        response = requests.post(url, data=b'{"page": 1}', headers=headers, timeout=10)
        assert response.json()["data"]
