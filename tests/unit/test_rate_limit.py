"""The client's pacing and its reading of `Retry-After`, on a clock the test owns.

`RateLimiter` reads `time.monotonic` and sleeps with `time.sleep` through the `time` module
of `etl_contacts.source.http`; the tests swap that module for a manual clock (the standard
library, not our code), so every assertion is on the waits asked for, never on wall time.
"""

from __future__ import annotations

import threading
from email.utils import formatdate

import pytest

from etl_contacts.source import http
from etl_contacts.source.errors import TransientError
from etl_contacts.source.http import RateLimiter, classify, retry_after_seconds


class ManualClock:
    """`time.monotonic` and `time.sleep` for one test: sleeping is recorded and, unless frozen,
    moves the clock by exactly the time asked for."""

    def __init__(self, start: float = 1_000.0, *, frozen: bool = False) -> None:
        self.now = start
        self.frozen = frozen
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if not self.frozen:
                self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    manual = ManualClock()
    monkeypatch.setattr(http, "time", manual)
    return manual


def test_requests_start_one_interval_apart(clock: ManualClock) -> None:
    """Four per second: the first goes at once, each next one a quarter second later."""
    limiter = RateLimiter(per_second=4)
    for _ in range(5):
        limiter.wait()
    assert clock.sleeps == pytest.approx([0.25] * 4)
    assert clock.now == pytest.approx(1_001.0)


def test_time_spent_between_requests_is_not_waited_again(clock: ManualClock) -> None:
    """A caller that took 0.1 s to handle a response waits only the rest of the interval."""
    limiter = RateLimiter(per_second=4)
    limiter.wait()
    for _ in range(3):
        clock.advance(0.1)
        limiter.wait()
    assert clock.sleeps == pytest.approx([0.15] * 3)


def test_an_idle_limiter_saves_up_no_burst(clock: ManualClock) -> None:
    """Spacing, not a token bucket: after ten idle seconds the second request still waits."""
    limiter = RateLimiter(per_second=4)
    limiter.wait()
    clock.advance(10)
    limiter.wait()
    limiter.wait()
    assert clock.sleeps == pytest.approx([0.25])


def test_threads_share_one_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is the client's, not each worker's: 8 threads x 5 requests at 10 per second
    get 40 distinct start slots, 0.1 s apart (the clock stands still while they queue)."""
    frozen = ManualClock(frozen=True)
    monkeypatch.setattr(http, "time", frozen)
    limiter = RateLimiter(per_second=10)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(5):
            limiter.wait()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(frozen.sleeps) == pytest.approx([k / 10 for k in range(1, 40)])


@pytest.mark.parametrize("per_second", [None, 0])
def test_no_limit_never_waits(clock: ManualClock, per_second: float | None) -> None:
    """The default (`requests_per_second` unset) sends as fast as the workers go."""
    limiter = RateLimiter(per_second=per_second)
    for _ in range(100):
        limiter.wait()
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=0.0) == seconds


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    """An HTTP date is a moment: the wait is from `now` to it, and nothing once it has passed."""
    moment = 1_700_000_000.0
    header = formatdate(moment, usegmt=True)
    assert retry_after_seconds(header, now=moment - 30) == 30.0
    assert retry_after_seconds(header, now=moment + 5) == 0.0


@pytest.mark.parametrize("header", ["-5", "1.5"])
def test_retry_after_that_is_neither_form_is_ignored(header: str) -> None:
    """RFC 9110 allows a non-negative integer or a date only: the backoff applies instead."""
    assert retry_after_seconds(header, now=0.0) is None


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [(429, "3", 3.0), (429, None, None), (503, "11", 11.0), (502, None, None)],
)
def test_rate_limits_and_server_errors_are_retried_with_the_servers_wait(
    status: int, header: str | None, wait: float | None
) -> None:
    """429 and 5xx are transient; the wait the server asked for travels with the error."""
    with pytest.raises(TransientError) as raised:
        classify(status, "application/json", b'{"message": "slow down"}', header, secret="k")
    assert raised.value.cause == str(status)
    assert raised.value.retry_after == wait
