"""The sandbox over real HTTP: the documented API, filters, orders, bounds, faults, truth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest
import requests

from etl_contacts.sandbox import DEMO_TOKEN, FAULT_KINDS, SandboxConfig, SandboxServer, preset
from etl_contacts.sandbox.server import WRONG_TOKEN

HEADERS = {"Authorization": f"Bearer {DEMO_TOKEN}", "authtype": "Key"}
BASE = SandboxConfig(contacts=300, days=10, seed=4)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(BASE) as server:
        yield server


def post(server: SandboxServer, body: dict[str, object], **kwargs: object) -> requests.Response:
    options: dict[str, object] = {"headers": HEADERS, "timeout": 5, **kwargs}
    return requests.post(f"{server.base_url}/inbox/users", json=body, **options)  # type: ignore[arg-type]


def everything(server: SandboxServer, body: dict[str, object]) -> list[dict[str, object]]:
    records, page = [], 1
    while data := post(server, {**body, "page": page}).json()["data"]:
        records.extend(data)
        page += 1
    return records


def test_auth_errors_are_the_documented_ones(sandbox: SandboxServer) -> None:
    missing = post(sandbox, {}, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert missing.status_code == 401
    wrong = post(sandbox, {}, headers={"Authorization": "Bearer nope", "authtype": "Key"})
    assert wrong.status_code == 400
    assert wrong.json() == {"success": False, "message": WRONG_TOKEN, "code": 400}


def test_the_envelope_and_pages(sandbox: SandboxServer) -> None:
    body = post(sandbox, {"page": 1}).json()
    assert (body["success"], body["message"], body["code"]) == (True, "", 200)
    assert len(body["data"]) == 20
    assert post(sandbox, {"page": 999}).json()["data"] == []
    assert len(everything(sandbox, {})) == 300


def test_the_same_seed_gives_the_same_contacts() -> None:
    anchored = replace(BASE, anchor=SandboxConfig().anchor_time)
    with SandboxServer(anchored) as one, SandboxServer(anchored) as two:
        assert one.truth()["contacts"] == two.truth()["contacts"]
    with SandboxServer(replace(anchored, seed=5)) as other:
        assert other.truth()["contacts"] != one.truth()["contacts"]


def _details(record: dict[str, object]) -> dict[str, object]:
    return record["profile"]["userDetails"]  # type: ignore[index,return-value]


FILTERS = {
    "tags": (["vip"], lambda r: "vip" in (_details(r).get("tags") or [])),
    "status": (["OPEN", "CLOSED"], lambda r: r["status"] in ("OPEN", "CLOSED")),
    "isOnline": (True, lambda r: r.get("isOnline") is True),
    "userInteracted": (True, lambda r: r.get("userInteracted") is True),
    "isLiveChatActive": (True, lambda r: r.get("isLiveChatActive") is True),
    "hasOrdered": ({"status": True, "lastAt": ""}, lambda r: r["hasOrdered"]["status"] is True),
    "lastMessageBy": (["bot"], lambda r: r.get("lastMessageBy") == "bot"),
    "searchText": ("ana", lambda r: "ana" in str(_details(r).get("userProvidedName")).lower()
                   or "ana" in str(_details(r)["contact"].get("email")).lower()),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_selects_exactly_its_contacts(sandbox: SandboxServer, name: str) -> None:
    value, wanted = FILTERS[name]
    truth = sandbox.truth()["contacts"]
    expected = {r["_id"] for r in truth if wanted(r)}
    got = {r["_id"] for r in everything(sandbox, {name: value})}
    assert expected and got == expected
    assert {
        r["_id"] for r in everything(sandbox, {name: [] if isinstance(value, list) else ""})
    } == {r["_id"] for r in truth} or name in (
        "isOnline",
        "userInteracted",
        "isLiveChatActive",
        "hasOrdered",
    )


def test_ids_filters_match_agents_segments_and_bots(sandbox: SandboxServer) -> None:
    truth = sandbox.truth()["contacts"]
    agent = next(r["_agentAssigned"] for r in truth if r.get("_agentAssigned"))
    got = everything(sandbox, {"_agentAssigned": [agent]})
    assert got and all(r["_agentAssigned"] == agent for r in got)
    segment = next(r["segments"][0] for r in truth if r.get("segments"))
    assert {r["_id"] for r in everything(sandbox, {"segments": [segment]})} == {
        r["_id"] for r in truth if segment in (r.get("segments") or [])
    }
    bot = next(r["_bot"] for r in truth if r["channel"] == "whatsapp")
    assert {r["_id"] for r in everything(sandbox, {"_botWhatsapp": [bot]})} == {
        r["_id"] for r in truth if r["_bot"] == bot and r["channel"] == "whatsapp"
    }
    assert everything(sandbox, {"_botWebsite": [bot]}) == []


@pytest.mark.parametrize("inclusive", [False, True])
def test_date_ranges_and_the_end_bound(inclusive: bool) -> None:
    with SandboxServer(replace(BASE, ends_at_inclusive=inclusive)) as server:
        truth = server.truth()["contacts"]
        pivot = sorted(r["createdAt"] for r in truth)[100]
        start = sorted(r["createdAt"] for r in truth)[50]
        got = everything(server, {"createdAt": {"startAt": start, "endsAt": pivot}})
        expected = {
            r["_id"]
            for r in truth
            if start <= r["createdAt"]
            and (r["createdAt"] <= pivot if inclusive else r["createdAt"] < pivot)
        }
        assert {r["_id"] for r in got} == expected
        seen = sorted(r["lastSeenAt"] for r in truth)[200]
        assert {
            r["_id"] for r in everything(server, {"lastSeenAt": {"startAt": seen, "endsAt": ""}})
        } == {r["_id"] for r in truth if r["lastSeenAt"] >= seen}


@pytest.mark.parametrize("sort", ["lastSeenAt", "createdAt", "_id"])
def test_sort_orders(sort: str) -> None:
    with SandboxServer(replace(BASE, sort=sort, page_size=7)) as server:  # type: ignore[arg-type]
        records = everything(server, {})
    keys = [r[sort] for r in records]
    assert keys == (sorted(keys) if sort == "_id" else sorted(keys, reverse=True))
    assert len(records) == 300


def test_bulk_imports_share_one_millisecond() -> None:
    with SandboxServer(replace(BASE, contacts=2000, bulk_import_share=0.2)) as server:
        created = [r["createdAt"] for r in server.truth()["contacts"]]
    assert max(created.count(c) for c in set(created)) >= 100


def test_activity_moves_creates_and_deletes_and_truth_follows() -> None:
    config = replace(BASE, activity_rate=1.0, create_rate=1.0, delete_rate=0.5)
    with SandboxServer(config) as server:
        before = {r["_id"]: r for r in server.truth()["contacts"]}
        for page in range(1, 21):
            post(server, {"page": page})
        truth = server.truth()
    after = {r["_id"]: r for r in truth["contacts"]}
    assert truth["deleted"] and all(d["_id"] not in after for d in truth["deleted"])
    assert len(set(after) - set(before)) == 20
    moved = [i for i in before if i in after and after[i]["lastSeenAt"] > before[i]["lastSeenAt"]]
    assert moved


@pytest.mark.parametrize("fault", FAULT_KINDS)
def test_each_fault_kind_is_injected_and_counted(fault: str) -> None:
    config = replace(BASE, faults={fault: 1.0}, slow_seconds=0.3)
    with SandboxServer(config) as server:
        session = requests.Session()
        outcome: object
        try:
            response = session.post(
                f"{server.base_url}/inbox/users", json={"page": 2}, headers=HEADERS, timeout=0.2
            )
            outcome = (response.status_code, response.headers.get("Content-Type"), response.content)
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        truth = server.truth()
    assert truth["faults"] == {fault: 1}
    expectations = {
        "429": lambda o: o[0] == 429,
        "500": lambda o: o[0] == 500,
        "502": lambda o: o[0] == 502,
        "503": lambda o: o[0] == 503,
        "504": lambda o: o[0] == 504,
        "reset": lambda o: o == "ConnectionError",
        "slow": lambda o: o in ("ReadTimeout", "ConnectionError"),
        "truncated": lambda o: o in ("ChunkedEncodingError", "ConnectionError"),
        "html": lambda o: o[0] == 200 and "html" in o[1],
        "malformed": lambda o: len(truth["malformed"]) == 1,
        "duplicate": lambda o: o[0] == 200 and len(orjson.loads(o[2])["data"]) == 21,
    }
    assert expectations[fault](outcome), outcome


def test_presets() -> None:
    assert preset("calm").faults == {} and preset("calm").activity_rate == 0
    assert preset("busy").activity_rate > 0 and not preset("busy").faults
    assert set(preset("hostile").faults) == set(FAULT_KINDS)


def test_truth_over_http(sandbox: SandboxServer) -> None:
    body = requests.get(f"{sandbox.base_url}/_sandbox/truth", timeout=5).json()
    assert len(body["contacts"]) == 300
    assert set(body) >= {"contacts", "deleted", "malformed", "faults", "requests"}
    status = requests.get(f"{sandbox.base_url}/_sandbox/status", timeout=5).json()
    assert status["contacts"] == 300 and 0 < status["rendered"] <= 300
