"""The sandbox over real HTTP: the documented endpoint, its errors, keep-alive and the truth."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson
import pytest
import requests

from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer, preset
from etl_contacts.sandbox.server import WRONG_TOKEN
from etl_contacts.timestamps import format_ms, parse_ms

HEADERS = {"Authorization": f"Bearer {DEMO_TOKEN}", "authtype": "Key"}
BASE = SandboxConfig(contacts=300, days=10, seed=4, anchor=datetime(2024, 6, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(BASE) as server:
        yield server


def post(
    server: SandboxServer, body: object, *, headers: dict[str, str] = HEADERS
) -> requests.Response:
    return requests.post(f"{server.base_url}/inbox/users", json=body, headers=headers, timeout=5)


def everything(server: SandboxServer, body: dict[str, object]) -> list[dict[str, object]]:
    records, page = [], 1
    with requests.Session() as session:
        while data := session.post(
            f"{server.base_url}/inbox/users", json={**body, "page": page}, headers=HEADERS
        ).json()["data"]:
            records.extend(data)
            page += 1
    return records


def test_auth_errors_are_the_documented_ones() -> None:
    with SandboxServer(BASE) as server:
        missing = post(server, {}, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
        wrong = post(server, {}, headers={"Authorization": "Bearer nope", "authtype": "Key"})
        counts = server.truth()
    assert missing.status_code == 401 and missing.json()["success"] is False
    assert missing.headers["Content-Type"].startswith("application/json")
    assert wrong.status_code == 400
    assert wrong.json() == {"success": False, "message": WRONG_TOKEN, "code": 400}
    assert (counts["requests"], counts["refused"]) == (0, 2)


def test_another_token_is_accepted_when_configured() -> None:
    with SandboxServer(replace(BASE, token="ab" * 12)) as server:
        assert post(server, {}).status_code == 400
        ok = post(server, {}, headers={"Authorization": f"Bearer {'ab' * 12}", "authtype": "Key"})
        assert ok.status_code == 200


def test_the_envelope_and_its_pages(sandbox: SandboxServer) -> None:
    response = post(sandbox, {"page": 1})
    body = response.json()
    assert list(body) == ["success", "message", "data", "code"]
    assert (body["success"], body["message"], body["code"]) == (True, "", 200)
    assert len(body["data"]) == 20 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    assert post(sandbox, {"page": 999}).json()["data"] == []
    records = everything(sandbox, {})
    assert [r["_id"] for r in records] == [r["_id"] for r in _newest_first(sandbox)]


def _newest_first(server: SandboxServer) -> list[dict[str, object]]:
    contacts = server.truth()["contacts"]
    by_id = sorted(contacts, key=lambda r: r["_id"])
    return sorted(by_id, key=lambda r: r["lastSeenAt"], reverse=True)


def test_bodies_it_cannot_understand_are_422_and_other_paths_404(sandbox: SandboxServer) -> None:
    for body in ({"page": 0}, {"tags": "vip"}, [1, 2]):
        response = post(sandbox, body)
        assert response.status_code == 422 and response.json()["success"] is False
    garbage = requests.post(
        f"{sandbox.base_url}/inbox/users", data=b"{not json", headers=HEADERS, timeout=5
    )
    assert garbage.status_code == 422
    assert requests.get(f"{sandbox.base_url}/inbox/users", timeout=5).status_code == 404


def test_one_connection_serves_many_requests(sandbox: SandboxServer) -> None:
    host, port = sandbox.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {**HEADERS, "Content-Type": "application/json"}
    conn.request("POST", "/inbox/users", b'{"page": 1}', headers)
    first = conn.getresponse().read()
    sock = conn.sock
    for page in (2, 3, 1):
        conn.request("POST", "/inbox/users", orjson.dumps({"page": page}), headers)
        body = conn.getresponse().read()
    assert conn.sock is sock and body == first
    conn.close()


def test_connection_close_is_honoured(sandbox: SandboxServer) -> None:
    host, port = sandbox.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        token = DEMO_TOKEN.encode()
        sock.sendall(
            b"POST /inbox/users HTTP/1.0\r\nauthtype: Key\r\nAuthorization: Bearer "
            + token
            + b"\r\nContent-Length: 2\r\n\r\n{}"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert len(orjson.loads(body)["data"]) == 20


def test_the_truth_endpoint_and_the_method_agree(sandbox: SandboxServer) -> None:
    over_http = requests.get(f"{sandbox.base_url}/_sandbox/truth", timeout=5).json()
    direct = sandbox.truth()
    for key in ("contacts", "deleted", "malformed", "faults"):
        assert over_http[key] == direct[key]
    assert len(direct["contacts"]) == 300 and direct["deleted"] == direct["malformed"] == []
    assert direct["config"]["seed"] == 4 and DEMO_TOKEN not in str(direct)
    status = requests.get(f"{sandbox.base_url}/_sandbox/status", timeout=5).json()
    assert status["contacts"] == 300 and 0 < status["rendered"] <= 300


def test_the_same_seed_serves_the_same_contacts() -> None:
    with SandboxServer(BASE) as one, SandboxServer(BASE) as two:
        assert post(one, {"page": 3}).content == post(two, {"page": 3}).content
        assert one.truth()["contacts"] == two.truth()["contacts"]
    with SandboxServer(replace(BASE, seed=5)) as other:
        assert other.truth()["contacts"] != one.truth()["contacts"]


def test_a_busy_account_changes_between_requests_and_the_truth_follows() -> None:
    with SandboxServer(preset("busy", BASE)) as server:
        before = {r["_id"]: r["lastSeenAt"] for r in server.truth()["contacts"]}
        with requests.Session() as session:
            for page in range(1, 61):
                session.post(f"{server.base_url}/inbox/users", json={"page": page}, headers=HEADERS)
        truth = server.truth()
    after = {r["_id"]: r["lastSeenAt"] for r in truth["contacts"]}
    deleted = {d["_id"] for d in truth["deleted"]}
    assert truth["requests"] == 60 and deleted and not deleted & set(after)
    assert set(after) - set(before), "contacts were created"
    assert any(after[i] > before[i] for i in set(before) & set(after)), "contacts became active"


def test_touch_makes_that_many_distinct_contacts_active_now() -> None:
    with SandboxServer(BASE) as sandbox:
        before = format_ms(int(time.time() * 1000))
        touched = requests.post(
            f"{sandbox.base_url}/_sandbox/touch", data=b'{"contacts": 30}', timeout=5
        )
        refused = requests.post(f"{sandbox.base_url}/_sandbox/touch", data=b"{}", timeout=5)
        contacts = sandbox.truth()["contacts"]
    assert touched.json() == {"touched": 30}
    assert refused.status_code == 422
    assert sum(c["lastSeenAt"] >= before for c in contacts) == 30


def test_the_date_header_and_the_stamps_are_by_the_servers_clock(sandbox: SandboxServer) -> None:
    offset_ms = -7_200_000  # two hours behind ours
    with SandboxServer(replace(BASE, clock_offset_ms=offset_ms)) as skewed:
        ours = time.time()
        answers = [
            post(skewed, {}),
            post(skewed, {}, headers={}),  # an error has a Date too
            requests.post(f"{skewed.base_url}/_sandbox/touch", data=b'{"contacts": 1}', timeout=5),
        ]
        anchor = format_ms(int(BASE.anchor_time.timestamp() * 1000))
        touched = [c for c in skewed.truth()["contacts"] if c["lastSeenAt"] > anchor]
    ours_plain = time.time()
    plain = post(sandbox, {})
    # the header is the server's time to the second, truncated: up to a second behind
    skews = [_date(answer) - (ours + offset_ms / 1000) for answer in answers]
    assert [a.status_code for a in answers] == [200, 401, 200]
    assert all(-1 < skew < 1 for skew in skews), skews
    assert -1 < _date(plain) - ours_plain < 1
    assert len(touched) == 1
    seen = parse_ms(touched[0]["lastSeenAt"])
    assert seen is not None and abs(seen - (ours * 1000 + offset_ms)) < 1000


def _date(response: requests.Response) -> float:
    return parsedate_to_datetime(response.headers["Date"]).timestamp()


def test_simulated_days_agent_changes_and_deletions_through_the_control_endpoints() -> None:
    def control(server: SandboxServer, path: str, body: object) -> requests.Response:
        return requests.post(f"{server.base_url}/_sandbox/{path}", json=body, timeout=5)

    first_day = {"startAt": "2024-06-01T00:00:00.000Z", "endsAt": "2024-06-02T00:00:00.000Z"}
    with SandboxServer(BASE) as sandbox:
        day = control(sandbox, "day", {"touch": 5, "change": 4, "create": 3, "delete": 2})
        changed = control(sandbox, "change", {"contacts": 4})
        deleted = control(sandbox, "delete", {"contacts": 2})
        created = everything(sandbox, {"createdAt": first_day})
        truth = sandbox.truth()
        refused = [control(sandbox, "day", {"touch": -1}), control(sandbox, "change", {})]
        second = control(sandbox, "day", {})
    with SandboxServer(BASE) as told:  # its Date headers told the wall clock, past the anchor
        requests.get(f"{told.base_url}/_sandbox/status", timeout=5)
        too_late = control(told, "day", {"touch": 1})
    assert day.json() == {"now": "2024-06-02T00:00:00.000Z"}
    assert -1 < _date(day) - datetime(2024, 6, 2, tzinfo=UTC).timestamp() < 1
    assert changed.json() == {"changed": 4} and deleted.json() == {"deleted": 2}
    assert len(created) == 3 and all(c["lastSeenAt"] == c["createdAt"] for c in created)
    times = sorted(d["deletedAt"] for d in truth["deleted"])
    assert len(times) == 4 and first_day["startAt"] <= times[0] < times[1] < first_day["endsAt"]
    assert first_day["endsAt"] < times[2] < times[3] <= truth["now"] < "2024-06-02T00:01"
    assert [r.status_code for r in refused] == [422, 422]
    assert second.json() == {"now": "2024-06-03T00:00:00.000Z"}
    assert too_late.status_code == 422 and "clock_offset_ms" in too_late.json()["message"]


def test_a_hidden_record_leaves_its_page_one_short_and_is_reported(
    sandbox: SandboxServer,
) -> None:
    full = post(sandbox, {"page": 2}).json()["data"]
    with SandboxServer(replace(BASE, faults={"hide": 1.0})) as server:
        short = post(server, {"page": 2}).json()["data"]
        past = post(server, {"page": 99}).json()["data"]
        truth = server.truth()
    (hidden,) = truth["hidden"]
    assert len(full) == 20 and hidden in {r["_id"] for r in full}
    assert short == [r for r in full if r["_id"] != hidden], "the others where they were"
    assert past == [] and truth["faults"] == {"hide": 1}, "an empty page hides nothing"
    assert len(truth["contacts"]) == 300 and truth["requests"] == 2


def test_contacts_never_active_are_served_with_lastseenat_null_or_without_it() -> None:
    with SandboxServer(replace(BASE, never_active_share=0.5)) as server:
        served = everything(server, {})
        ranged = everything(server, {"lastSeenAt": {"startAt": "2000-01-01T00:00:00.000Z"}})
        contacts = server.truth()["contacts"]
    never = [r for r in served if r.get("lastSeenAt") is None]
    assert len(served) == len(contacts) == 300 and len(never) == 150
    assert any("lastSeenAt" not in r for r in never) and any("lastSeenAt" in r for r in never)
    assert served[-150:] == never, "last in the lastSeenAt sort, as MongoDB puts null"
    assert len(ranged) == 150 and not any(r.get("lastSeenAt") is None for r in ranged)
