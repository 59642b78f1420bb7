"""The API client against a sandbox that answers 429 with `Retry-After`, over real HTTP.

Counts come from both ends: the client's `ExtractStats` and the sandbox's truth (requests
served, faults injected). The waits are the ones tenacity asked to sleep: its sleep goes through
`tenacity.nap`'s `time` module, swapped here for a recorder, so no test sleeps and no
assertion is on wall time. The sandbox's faults are seeded: the same requests get the same
faults on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import tenacity.nap

from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig
from etl_contacts.source.errors import TransientError
from etl_contacts.source.http import ApiClient
from etl_contacts.source.stats import ExtractStats

TOKEN = "7a7e11a17e57a7e11a17e57a"
RETRY_AFTER = 5
BASE = SandboxConfig(
    contacts=200,
    days=3,
    seed=429,
    token=TOKEN,
    anchor=datetime(2024, 6, 1, tzinfo=UTC),
    retry_after_seconds=RETRY_AFTER,
)
PAGES = 10  # 200 contacts, 20 a page
TINY_BACKOFF = 0.001  # the client's own backoff, far below any Retry-After


@dataclass
class Waits:
    """The sleeps tenacity asked for, in order."""

    seconds: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Waits:
    recorded = Waits()
    monkeypatch.setattr(tenacity.nap, "time", recorded)
    return recorded


@dataclass
class Outcome:
    """What one pass over the pages got, counted, and what the sandbox saw."""

    records: list[object]
    stats: ExtractStats
    truth: dict[str, Any]  # as `SandboxServer.truth()` gives it: each value as JSON has it


def _fetch_all(server_config: SandboxConfig, *, backoff_max: float) -> Outcome:
    """Every page of the sandbox, one request after another (so the seed picks the faults)."""
    with SandboxServer(server_config) as server:
        stats = ExtractStats()
        api = ApiClient(
            ClientConfig(
                base_url=server.base_url,
                token=TOKEN,
                max_concurrency=1,
                backoff_initial=TINY_BACKOFF,
                backoff_max=backoff_max,
            ),
            stats,
        )
        records: list[object] = []
        try:
            for page in range(1, PAGES + 1):
                records.extend(api.fetch({}, page).items)
        finally:
            api.close()
            truth = server.truth()
    return Outcome(records, stats, truth)


def _ids(records: list[object]) -> set[str]:
    return {record["_id"] for record in records if isinstance(record, dict)}


def test_every_429_is_retried_after_the_wait_the_server_asked_for(waits: Waits) -> None:
    """One request in three rate limited: every page still arrives, each 429 costs exactly one
    more request, and each retry waits what Retry-After said (seconds or an HTTP date)."""
    config = replace(BASE, faults={"429": 0.35})
    outcome = _fetch_all(config, backoff_max=30.0)
    limited = outcome.truth["faults"]["429"]
    assert limited >= 3, "the seed gives this many 429s"
    assert len(outcome.records) == BASE.contacts
    assert _ids(outcome.records) == _ids(outcome.truth["contacts"])
    assert outcome.stats.get("retry_429") == limited
    assert outcome.stats.get("requests") == PAGES + limited == outcome.truth["requests"]
    assert len(waits.seconds) == limited
    # "5" waits 5 s; a date 5 s ahead, in whole seconds, waits a little less; the client's own
    # backoff would have waited at most TINY_BACKOFF * 2**8
    in_seconds = [w for w in waits.seconds if w == RETRY_AFTER]
    as_dates = [w for w in waits.seconds if w != RETRY_AFTER]
    assert in_seconds and as_dates, waits.seconds
    assert all(RETRY_AFTER - 1.5 < w < RETRY_AFTER for w in as_dates), as_dates


def test_a_retry_after_longer_than_backoff_max_is_capped(waits: Waits) -> None:
    """A server asking for more than `backoff_max` gets `backoff_max`: the budget stays ours."""
    config = replace(BASE, faults={"429": 0.35})
    outcome = _fetch_all(config, backoff_max=2.0)
    limited = outcome.truth["faults"]["429"]
    assert len(outcome.records) == BASE.contacts
    assert outcome.stats.get("retry_429") == limited >= 3
    assert waits.seconds == [2.0] * limited


def test_server_errors_without_retry_after_back_off_on_the_clients_schedule(
    waits: Waits,
) -> None:
    """A 503 says nothing about when: the wait is the client's exponential backoff."""
    config = replace(BASE, faults={"503": 0.35})
    outcome = _fetch_all(config, backoff_max=30.0)
    failed = outcome.truth["faults"]["503"]
    assert len(outcome.records) == BASE.contacts
    assert outcome.stats.get("retry_503") == failed >= 3
    assert outcome.stats.get("requests") == PAGES + failed == outcome.truth["requests"]
    assert len(waits.seconds) == failed
    assert all(0 <= w <= TINY_BACKOFF * 2**8 for w in waits.seconds), waits.seconds


def test_a_server_that_keeps_rate_limiting_fails_after_max_attempts(waits: Waits) -> None:
    """Every answer a 429: three attempts, two waits, then the error, naming the cause."""
    config = replace(BASE, faults={"429": 1.0})
    with SandboxServer(config) as server:
        stats = ExtractStats()
        api = ApiClient(ClientConfig(base_url=server.base_url, token=TOKEN, max_attempts=3), stats)
        with pytest.raises(TransientError) as raised:
            api.fetch({}, 1)
        api.close()
        truth = server.truth()
    assert raised.value.cause == "429"
    assert stats.get("requests") == 3 == truth["requests"]
    assert stats.get("retry_429") == 2
    assert truth["faults"] == {"429": 3}
    assert len(waits.seconds) == 2
