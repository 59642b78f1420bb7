"""Fetch many windows at once on worker threads, handing batches to one consumer.

Windows are independent, so up to `max_concurrency` are fetched in parallel; the consumer (the
transform and the load) runs on the caller's thread, overlapping with the fetching. The queue
between them is bounded, so a slow warehouse slows the fetching instead of filling memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from etl_contacts.source.errors import AuthError, ExtractionFailed, SourceError
from etl_contacts.source.http import ApiClient
from etl_contacts.source.learned import Learned
from etl_contacts.source.models import (
    ClientConfig,
    Event,
    RecordsBatch,
    Reply,
    Window,
    WindowDone,
)
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window import Fetch, WindowFetcher

# Records waiting for the consumer, at most: enough to keep fetching while the consumer loads a
# batch of thousands (with 20-record pages, a bound of 2,500 records left the fetchers idle and
# cost 40 % of a cold load's speed), few enough that memory stays flat (a record is about 4 KB
# as Python objects; 20,000 cost 40 MB more than 10,000 and bought nothing measurable; 7,500
# did not lower the command's peak at 1,000,000 contacts: 510 MB against 509).
BACKLOG_RECORDS = 10_000


class _StoppedError(Exception):
    """The consumer went away; workers stop at their next request."""


class _Backlog:
    """A FIFO bounded by the records it holds, not by its items: pages come in any size."""

    def __init__(self, limit: int, stop: threading.Event) -> None:
        self._items: deque[Event | BaseException] = deque()
        self._records = 0
        self._limit = limit
        self._stop = stop
        self._changed = threading.Condition()

    def put(self, item: Event | BaseException) -> None:
        """Waits while full; an empty backlog takes any item, and events without records pass."""
        size = len(item.records) if isinstance(item, RecordsBatch) else 0
        with self._changed:
            while self._records and self._records + size > self._limit:
                if self._stop.is_set():
                    raise _StoppedError
                self._changed.wait(0.2)
            if self._stop.is_set():
                raise _StoppedError
            self._items.append(item)
            self._records += size
            self._changed.notify_all()

    def get(self) -> Event | BaseException:
        with self._changed:
            while not self._items:
                self._changed.wait()
            item = self._items.popleft()
            if isinstance(item, RecordsBatch):
                self._records -= len(item.records)
            self._changed.notify_all()
            return item


def extract(
    config: ClientConfig, windows: Sequence[Window], *, stats: ExtractStats | None = None
) -> Iterator[Event]:
    """Every record of every window, as batches, each window closed by a WindowDone."""
    stats = stats or ExtractStats()
    learned = Learned()
    api = ApiClient(config, stats)
    stop = threading.Event()
    events = _Backlog(BACKLOG_RECORDS, stop)

    def fetch(filters: dict[str, object], page: int) -> Reply:
        if stop.is_set():
            raise _StoppedError
        return api.fetch(filters, page)

    pool = ThreadPoolExecutor(
        max_workers=max(1, config.max_concurrency), thread_name_prefix="fetch"
    )
    try:
        for window in windows:
            pool.submit(_work, window, fetch, learned, stats, events)
        remaining = len(windows)
        while remaining:
            event = events.get()
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, WindowDone):
                remaining -= 1
            yield event
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        api.close()
        if learned.ranges_combined is not None:
            stats.add("ranges_combined", int(learned.ranges_combined))
        stats.learned(learned.describe())


def _work(
    window: Window, fetch: Fetch, learned: Learned, stats: ExtractStats, events: _Backlog
) -> None:
    """Fetch one window on a worker thread; however it ends, the consumer hears of it."""
    try:
        for batch in WindowFetcher(fetch, window, learned, stats).batches():
            events.put(RecordsBatch(window, batch))
        stats.add("windows")
        events.put(WindowDone(window))
    except _StoppedError:
        return
    except AuthError as exc:
        events.put(exc)
    except SourceError as exc:
        events.put(ExtractionFailed(window, str(exc)))
    except Exception as exc:  # noqa: BLE001 (every failure goes to the consumer, who re-raises it)
        events.put(exc)
