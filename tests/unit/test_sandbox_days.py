"""Truth over time: agents' changes, deletions of any age, and simulated days after the anchor.

A sync that runs nightly must be tested over many nights; these are the sandbox's means to
that, checked against its own truth: what an agent changes (updatedAt, never lastSeenAt), and
days whose every event lies inside them, after everything before.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from sandbox_json import details

from etl_contacts.sandbox import SandboxConfig
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.sandbox.vocabulary import STATUSES
from etl_contacts.timestamps import format_ms, parse_ms, to_ms

Record = dict[str, object]
ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
ANCHOR_MS = to_ms(ANCHOR)
DAY_MS = 86_400_000
BASE = SandboxConfig(contacts=400, days=10, seed=5, anchor=ANCHOR, never_active_share=0.25)
DAY = {"touch": 30, "change": 20, "create": 10, "delete": 5}
AGENT_FIELDS = {"_agentAssigned", "tags", "attributes", "lastMessageBy"}


def records(store: ContactStore) -> dict[str, Record]:
    blobs = store.snapshot().contacts
    return {str(r["_id"]): r for r in (orjson.loads(b) for b in blobs)}


def found(store: ContactStore, body: dict[str, object]) -> set[str]:
    query, ids, page = parse_body(body)[0], set(), 1
    while blobs := store.page(query, page).records:
        ids |= {str(orjson.loads(b)["_id"]) for b in blobs}
        page += 1
    return ids


def tags(record: Record) -> list[object]:
    shown = details(record).get("tags")
    return shown if isinstance(shown, list) else []


def differences(old: Record, new: Record) -> set[str]:
    """Names of the fields that differ (null and missing differ too), userDetails' by theirs."""
    flat = [{**r, **details(r)} for r in (old, new)]
    names = (set(flat[0]) | set(flat[1])) - {"profile"}
    return {name for name in names if flat[0].get(name, "-") != flat[1].get(name, "-")}


def ms(timestamp: object) -> int:
    millis = parse_ms(timestamp)
    assert millis is not None, timestamp
    return millis


def seen(record: Record) -> object:
    """lastSeenAt, telling null from a missing key."""
    return record.get("lastSeenAt", "missing")


def test_an_agent_change_moves_updated_at_and_what_agents_set_but_never_last_seen_at() -> None:
    with closing(ContactStore(BASE)) as store:
        before = records(store)
        assert store.change(150) == 150
        after = records(store)
        changed = {i: differences(before[i], after[i]) for i in after if after[i] != before[i]}
        assert len(changed) == 150
        assert all(
            {"status", "updatedAt"} <= d <= {"status", "updatedAt"} | AGENT_FIELDS
            for d in changed.values()
        )
        assert all(ms(after[i]["updatedAt"]) > ms(before[i]["updatedAt"]) for i in changed)
        assert all(seen(after[i]) == seen(before[i]) for i in changed)
        assert {seen(before[i]) for i in changed} >= {None, "missing"}, "never-active changed too"
        assert set().union(*changed.values()) == {"status", "updatedAt"} | AGENT_FIELDS
        # filters see what the records now show
        for status in STATUSES:
            expected = {i for i, r in after.items() if r["status"] == status}
            assert found(store, {"status": [status]}) == expected
        agent = next(
            str(after[i]["_agentAssigned"]) for i in changed if "_agentAssigned" in changed[i]
        )
        assert found(store, {"_agentAssigned": [agent]}) == {
            i for i, r in after.items() if r.get("_agentAssigned") == agent
        }
        tagged = {i for i, r in after.items() if "vip" in tags(r)}
        assert found(store, {"tags": ["vip"]}) == tagged
        replied = {i for i, r in after.items() if r.get("lastMessageBy") == "agent"}
        assert found(store, {"lastMessageBy": ["agent"]}) == replied


def test_agent_changes_come_at_their_rate_per_request() -> None:
    with closing(ContactStore(replace(BASE, agent_change_rate=3))) as store:
        before = records(store)
        for _ in range(4):
            store.act()
        after = records(store)
        changed = [i for i in after if after[i] != before[i]]
        assert 1 <= len(changed) <= 12
        assert all(seen(after[i]) == seen(before[i]) for i in changed)


def test_each_day_holds_its_events_after_everything_before() -> None:
    with closing(ContactStore(BASE)) as store:
        before, deleted = records(store), 0
        latest = max(ms(r["updatedAt"]) for r in before.values())
        for number in (1, 2, 3):
            end = store.advance_day(DAY)
            assert end == ANCHOR_MS + number * DAY_MS == store.snapshot().now_ms
            assert store.now_ms() >= end
            after, gone = records(store), store.snapshot().deleted[deleted:]
            kept = [i for i in after if i in before]
            touched = [i for i in kept if seen(after[i]) != seen(before[i])]
            changed = [i for i in kept if i not in touched and after[i] != before[i]]
            created = [i for i in after if i not in before]
            assert (len(touched), len(changed), len(created), len(gone)) == (30, 20, 10, 5)
            assert all(after[i]["lastSeenAt"] == after[i]["updatedAt"] for i in touched + created)
            assert all(after[i]["createdAt"] == after[i]["lastSeenAt"] for i in created)
            assert all(d["_id"] in before and d["_id"] not in after for d in gone)
            stamps = [after[i]["updatedAt"] for i in touched + changed + created]
            times = sorted(ms(t) for t in [*stamps, *(d["deletedAt"] for d in gone)])
            assert len(set(times)) == 65
            assert end - DAY_MS <= times[0] and latest < times[0] and times[-1] < end
            before, deleted, latest = after, deleted + 5, times[-1]


def test_the_same_days_give_the_same_truth() -> None:
    truths = []
    for _ in range(2):
        with closing(ContactStore(BASE)) as store:
            store.advance_day(DAY)
            store.advance_day({"change": 7, "delete": 2})
            snapshot = store.snapshot()
            truths.append((snapshot.contacts, snapshot.deleted))
    assert truths[0] == truths[1]


def test_deletions_of_any_age_are_in_the_truth() -> None:
    with closing(ContactStore(BASE)) as store:
        before = records(store)
        end = store.advance_day({"delete": 10})
        assert store.delete(40) == 40  # now: after the day
        snapshot = store.snapshot()
        after = records(store)
        ids = [d["_id"] for d in snapshot.deleted]
        assert len(set(ids)) == 50 and set(ids) <= set(before) and not set(ids) & set(after)
        ages = sorted(str(before[i]["createdAt"]) for i in ids)
        assert ages[0] < format_ms(ANCHOR_MS - 7 * DAY_MS) < ages[-1]
        times = [ms(d["deletedAt"]) for d in snapshot.deleted]
        assert times == sorted(times) and end - DAY_MS <= times[0] and times[9] < end <= times[10]
        assert store.delete(10_000) == len(after) and not records(store)


def test_date_windows_of_a_day_find_what_it_created_and_touched_not_what_agents_changed() -> None:
    with closing(ContactStore(BASE)) as store:
        before = records(store)
        end = store.advance_day(DAY)
        after = records(store)
        window = {"startAt": format_ms(end - DAY_MS), "endsAt": format_ms(end)}
        created = {i for i in after if i not in before}
        active = {i for i in after if seen(after[i]) != seen(before.get(i, {}))}
        changed = {i for i in after if i in before and after[i] != before[i]} - active
        assert len(created) == 10 and len(active) == 40 and len(changed) == 20
        assert found(store, {"createdAt": window}) == created
        assert found(store, {"lastSeenAt": window}) == active
        assert not found(store, {"lastSeenAt": {"startAt": format_ms(ANCHOR_MS)}}) & changed


def test_after_a_day_the_server_clock_runs_on_from_its_end() -> None:
    with closing(ContactStore(BASE)) as store:
        end = store.advance_day({})
        assert end / 1000 <= store.server_time() < end / 1000 + 5
        store.touch(1)
        touched = max(ms(r["updatedAt"]) for r in records(store).values())
        assert end < touched < end + 5000
        next_end = store.advance_day({"touch": 3})
        assert next_end == end + DAY_MS
        stamps = [ms(r["updatedAt"]) for r in records(store).values()]
        assert sum(touched < t < next_end for t in stamps) == 3


@pytest.mark.parametrize(
    ("activity", "message"),
    [
        ({"touch": 1, "visit": 1}, "unknown events"),
        ({"touch": -1}, "whole number"),
        ({"create": 1.5}, "whole number"),
        ({"delete": True}, "whole number"),
        ([("touch", 1)], "object of counts"),
        ({"touch": 300, "delete": 101}, "401 contacts; 400 are alive"),
    ],
)
def test_a_day_that_cannot_be_is_refused(activity: object, message: str) -> None:
    with closing(ContactStore(BASE)) as store:
        with pytest.raises(ValueError, match=message):
            store.advance_day(activity)  # type: ignore[arg-type]
        assert store.advance_day({}) == ANCHOR_MS + DAY_MS, "a refused day is no day"


def test_a_day_before_a_time_already_told_is_refused_and_a_clock_at_the_anchor_allows_it() -> None:
    with closing(ContactStore(BASE)) as store:
        store.server_time()  # as a response's Date header: the wall clock, years after the anchor
        with pytest.raises(ValueError, match="clock_offset_ms"):
            store.advance_day({"touch": 1})
    offset = ANCHOR_MS - int(datetime.now(UTC).timestamp() * 1000)
    with closing(ContactStore(replace(BASE, clock_offset_ms=offset))) as store:
        told = store.server_time() * 1000
        store.advance_day({"touch": 1})
        stamps = [ms(r["updatedAt"]) for r in records(store).values()]
        assert [t for t in stamps if t >= ANCHOR_MS] == [t for t in stamps if t > told] != []
