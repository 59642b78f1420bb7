"""Every fault kind over real HTTP, as a client sees it, and what the truth counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
import requests

from etl_contacts.sandbox import DEMO_TOKEN, FAULT_KINDS, SandboxConfig, SandboxServer, preset

HEADERS = {"Authorization": f"Bearer {DEMO_TOKEN}", "authtype": "Key"}
BASE = SandboxConfig(contacts=200, days=5, seed=7, anchor=datetime(2024, 6, 1, tzinfo=UTC))
Response = tuple[int, dict[str, str], bytes]  # status, headers, body
Outcome = Response | str
Timeout = float | tuple[float, float]
# Every answer but a slow one comes long before PATIENT, however busy the machine. A slow answer
# comes after SLOW seconds, five times IMPATIENT's read timeout: nothing can arrive before it.
PATIENT = 60.0
SLOW = 5.0
IMPATIENT = (PATIENT, 1.0)  # (connect, read)


def ask(session: requests.Session, server: SandboxServer, page: int, timeout: Timeout) -> Outcome:
    """The response, or the name of the exception the client got instead."""
    try:
        response = session.post(
            f"{server.base_url}/inbox/users", json={"page": page}, headers=HEADERS, timeout=timeout
        )
        return response.status_code, dict(response.headers), response.content
    except requests.RequestException as exc:
        return type(exc).__name__


def _response(outcome: Outcome) -> Response:
    assert not isinstance(outcome, str), outcome
    return outcome


def _page(outcome: Outcome) -> list[object]:
    return orjson.loads(_response(outcome)[2])["data"]


def _id(record: object) -> object:
    assert isinstance(record, dict), record
    return record["_id"]


EXPECTED: dict[str, Callable[[Outcome], bool]] = {
    "429": lambda o: isinstance(o, tuple) and o[0] == 429 and o[1]["Retry-After"] != "",
    "500": lambda o: o[0] == 500 and orjson.loads(o[2])["success"] is False,
    "502": lambda o: o[0] == 502,
    "503": lambda o: o[0] == 503,
    "504": lambda o: o[0] == 504,
    "reset": lambda o: o == "ConnectionError",
    "slow": lambda o: o == "ReadTimeout",
    "truncated": lambda o: o in ("ChunkedEncodingError", "ConnectionError"),
    "html": lambda o: (
        isinstance(o, tuple)
        and o[0] == 200
        and o[1]["Content-Type"] == "text/html"
        and o[2].startswith(b"<")
    ),
    "malformed": lambda o: len(_page(o)) == 21,
    "duplicate": lambda o: len(_page(o)) == 21,
}


@pytest.mark.parametrize("fault", FAULT_KINDS)
def test_each_fault_kind_as_the_client_sees_it(fault: str) -> None:
    with SandboxServer(replace(BASE, faults={fault: 1.0}, slow_seconds=SLOW)) as server:
        outcome = ask(requests.Session(), server, 2, timeout=IMPATIENT)
        truth = server.truth()
    assert EXPECTED[fault](outcome), outcome
    assert truth["faults"] == {fault: 1}
    assert truth["requests"] == 1
    assert len(truth["contacts"]) == 200
    assert len(truth["malformed"]) == (fault == "malformed")


def test_a_reset_is_a_tcp_reset() -> None:
    server = SandboxServer(replace(BASE, faults={"reset": 1.0}))
    with server, pytest.raises(requests.ConnectionError, match="reset by peer"):
        requests.post(f"{server.base_url}/inbox/users", json={}, headers=HEADERS, timeout=PATIENT)


def test_a_slow_answer_does_come_for_a_patient_client() -> None:
    with SandboxServer(replace(BASE, faults={"slow": 1.0}, slow_seconds=0.5)) as server:
        started = time.monotonic()
        outcome = ask(requests.Session(), server, 1, timeout=PATIENT)
        waited = time.monotonic() - started
        truth = server.truth()
    assert truth["faults"] == {"slow": 1}
    assert len(_page(outcome)) == 20
    assert waited >= 0.5, "the answer came no sooner than the sandbox's slowness"


def test_retry_after_comes_as_seconds_and_as_an_http_date() -> None:
    config = replace(BASE, faults={"429": 1.0}, retry_after_seconds=2)
    with SandboxServer(config) as server, requests.Session() as session:
        values = {_response(ask(session, server, 1, PATIENT))[1]["Retry-After"] for _ in range(12)}
    assert "2" in values
    assert any(value.endswith(" GMT") for value in values)


def test_malformed_records_are_extra_and_listed_in_the_truth_not_the_contacts() -> None:
    with SandboxServer(replace(BASE, faults={"malformed": 1.0})) as server:
        session = requests.Session()
        served = [item for page in (1, 2, 3) for item in _page(ask(session, server, page, PATIENT))]
        truth = server.truth()
    good = {r["_id"] for r in truth["contacts"]}
    extra = [item for item in served if not (isinstance(item, dict) and item.get("_id") in good)]
    assert len(served) == 63
    assert len(extra) == 3
    assert extra == truth["malformed"]


def test_a_duplicate_is_the_same_record_on_two_pages() -> None:
    config = replace(BASE, faults={"duplicate": 1.0})
    with SandboxServer(config) as server, requests.Session() as session:
        first, second = (_page(ask(session, server, page, PATIENT)) for page in (1, 2))
    ids = [_id(r) for r in first + second]
    assert len(ids) - len(set(ids)) == 2, "page 1 repeats page 2's first, page 2 page 1's last"


def test_latency_is_added_to_every_request() -> None:
    with SandboxServer(replace(BASE, latency_ms=60)) as server, requests.Session() as session:
        started = time.monotonic()
        for page in (1, 2, 3):
            assert len(_page(ask(session, server, page, PATIENT))) == 20
    # a lower bound only: a busy machine adds time, never takes it away
    assert time.monotonic() - started >= 0.18


def test_the_same_seed_injects_the_same_faults_on_the_same_requests() -> None:
    config = replace(BASE, faults=dict.fromkeys(FAULT_KINDS, 0.05), slow_seconds=SLOW)
    runs = []
    for _ in range(2):
        with SandboxServer(config) as server, requests.Session() as session:
            runs.append([_kind(ask(session, server, 1 + n % 5, IMPATIENT)) for n in range(60)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 4
    assert "ReadTimeout" in runs[0], "a slow answer was met, and timed out"


def _kind(outcome: Outcome) -> object:
    return outcome if isinstance(outcome, str) else (outcome[0], len(outcome[2]))


def _served(outcome: Outcome) -> bool:
    return not isinstance(outcome, str) and outcome[0] == 200 and outcome[2][:1] == b"{"


def test_a_client_with_eight_attempts_completes_against_the_hostile_preset() -> None:
    config = replace(preset("hostile", BASE), slow_seconds=SLOW)
    attempts = []
    with SandboxServer(config) as server, requests.Session() as session:
        for n in range(250):
            for attempt in range(1, 9):
                outcome = ask(session, server, 1 + n % 10, timeout=IMPATIENT)
                if _served(outcome):
                    break
                time.sleep(0.001 * attempt)  # the client's backoff
            attempts.append(attempt)
            assert _served(outcome), f"request {n} failed 8 times: {outcome!r:.200}"
        truth = server.truth()
    assert set(truth["faults"]) == set(FAULT_KINDS), "every kind of fault was met"
    assert max(attempts) > 1
