"""`extract` through empty answers that come before anything has listed records: the store behind
the client's two calls, without HTTP, answering chosen requests empty."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pytest
from window_server import BASE, HISTORY, Filters, Server, server, truth

from etl_contacts.source.errors import ExtractionFailed, TransientError
from etl_contacts.source.models import ClientConfig, RecordsBatch, Reply, Window, WindowDone
from etl_contacts.source.stats import ExtractStats

ATTEMPTS = 8
# the module, which the package's `extract` (the function) hides from a plain import
extract_module = importlib.import_module("etl_contacts.source.extract")


@dataclass
class EmptyAtTimes:
    """Stands in for `ApiClient`: request N (from 1) answers empty when `empty(N)`."""

    api: Server
    empty: Callable[[int], bool]
    asked: int = 0

    def __call__(self, _config: ClientConfig, _stats: ExtractStats) -> EmptyAtTimes:
        return self

    def fetch(self, filters: Filters, page: int) -> Reply:
        self.asked += 1
        reply = self.api.fetch(filters, page)
        return Reply([], reply.server_time, reply.received_at) if self.empty(self.asked) else reply

    def fetch_listed(self, filters: Filters, page: int) -> Reply:
        for _ in range(ATTEMPTS):
            if (reply := self.fetch(filters, page)).items:
                return reply
        raise TransientError("empty", "retries ran out")

    def close(self) -> None:
        pass


def _extract(
    monkeypatch: pytest.MonkeyPatch, client: EmptyAtTimes, windows: Sequence[Window] = (HISTORY,)
) -> tuple[set[str], int]:
    monkeypatch.setattr(extract_module, "ApiClient", client)
    config = ClientConfig(base_url="http://unused", token="x", max_concurrency=1)
    events = list(extract_module.extract(config, windows))
    ids = {
        str(r["_id"])
        for e in events
        if isinstance(e, RecordsBatch)
        for r in e.records
        if isinstance(r, dict)
    }
    return ids, sum(isinstance(e, WindowDone) for e in events)


def test_a_window_read_again_once_the_account_lists_records_is_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window's first answer and the account's listing come empty (1, 2): nothing proves
    the server serves, and the window waits. The account then lists records (3), and the window
    is read again, though its first answer and the control come empty once more (4, 5): the run
    has seen records now, so the control is waited for."""
    with server(replace(BASE, sort="createdAt")) as api:
        ids, done = _extract(monkeypatch, EmptyAtTimes(api, lambda n: n in (1, 2, 4, 5)))
        assert (ids, done) == (truth(api.store, HISTORY), 1)


def test_an_outage_from_the_first_request_past_the_retries_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every answer empty, the account's listing too, through the client's retries: an outage
    and an account without contacts look alike, and taken for the latter a first load would
    store nothing. The run fails, saying so."""
    with server(BASE) as api, pytest.raises(ExtractionFailed, match="run again later"):
        _extract(monkeypatch, EmptyAtTimes(api, lambda _n: True))


def test_a_window_whose_empty_answer_stood_before_any_was_proven_false_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first half's first answer comes empty, and so do both asks after the control (1, 3,
    4): nothing in the run has shown the server answers falsely, and the empty answer stands.
    The second half's first answer comes empty (5) and, asked again, lists records: the server
    does answer falsely, and the first half is read again at the end."""
    middle = HISTORY.start + (HISTORY.end - HISTORY.start) / 2
    halves = (replace(HISTORY, end=middle), replace(HISTORY, start=middle))
    with server(replace(BASE, sort="createdAt")) as api:
        client = EmptyAtTimes(api, lambda n: n in (1, 3, 4, 5))
        ids, done = _extract(monkeypatch, client, halves)
        assert (ids, done) == (truth(api.store, HISTORY), 2)
