"""Fetch many windows at once on worker threads, handing batches to one consumer.

Windows are independent, so up to `max_concurrency` are fetched in parallel; the consumer (the
transform and the load) runs on the caller's thread, overlapping with the fetching. The queue
between them is bounded, so a slow warehouse slows the fetching instead of filling memory.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from etl_contacts.source.errors import AuthError, ExtractionFailed, SourceError, TransientError
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
from etl_contacts.source.window import WindowFetcher
from etl_contacts.source.window.ids import PackedIds

# Records waiting for the consumer, at most: enough to keep fetching while the consumer loads a
# batch of thousands (with 20-record pages, a bound of 2,500 records left the fetchers idle and
# cost 40 % of a cold load's speed), few enough that memory stays flat (a record is about 4 KB
# as Python objects; 20,000 cost 40 MB more than 10,000 and bought nothing measurable; 7,500
# did not lower the command's peak at 1,000,000 contacts: 510 MB against 509).
BACKLOG_RECORDS = 10_000

logger = logging.getLogger(__name__)
NOTHING_LISTED = (
    "the server answered empty where records were due, its listing of the whole account too, "
    "through the client's retries: an outage (a lagging replica, an index rebuild) or an "
    "account without contacts. Nothing was recorded for these days; run again later"
)


@dataclass(frozen=True)
class _Pending:
    """A window whose end waits for the run's: `unproven`, read while nothing had listed
    records yet, its empty answers undoubted (read again once something has); else doubtful,
    a doubted empty answer stood before the run had seen the server answer empty falsely (done,
    unless the run sees one by its end). Read again, it hands over only what this read did not
    (`handed`, by `_id`)."""

    window: Window
    handed: PackedIds
    unproven: bool


_Item = Event | _Pending | BaseException


class _StoppedError(Exception):
    """The consumer went away; workers stop at their next request."""


class _Backlog:
    """A FIFO bounded by the records it holds, not by its items: pages come in any size."""

    def __init__(self, limit: int, stop: threading.Event) -> None:
        self._items: deque[_Item] = deque()
        self._records = 0
        self._limit = limit
        self._stop = stop
        self._changed = threading.Condition()

    def put(self, item: _Item) -> None:
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

    def get(self) -> _Item:
        with self._changed:
            while not self._items:
                self._changed.wait()
            item = self._items.popleft()
            if isinstance(item, RecordsBatch):
                self._records -= len(item.records)
            self._changed.notify_all()
            return item


def extract(
    config: ClientConfig,
    windows: Sequence[Window],
    *,
    stats: ExtractStats | None = None,
    doubt_empty: bool = True,
) -> Iterator[Event]:
    """Every record of every window, as batches, each window closed by a WindowDone.

    `doubt_empty`: an empty answer where records were due is proven across time before it ends
    a window (`Reader._doubt`). A window whose doubt found nothing yet listing records is read
    again once every other window is done, if one of them listed some or the account's listing
    does within the client's retries; else the run fails (`NOTHING_LISTED`): an outage that
    outlasts the retries and an empty account look alike, and taken for an empty account, an
    outage would leave a first load empty. A window whose doubted empty answer stood on the
    few asks made before the run had seen the server answer empty falsely is done once every
    other window is, or read again if the run has seen one by then. Off only for probes that
    prove absence their own way (the deletions' first look records a contact missing, never
    deleted).
    """
    stats = stats or ExtractStats()
    learned = Learned()
    api = ApiClient(config, stats)
    stop = threading.Event()
    events = _Backlog(BACKLOG_RECORDS, stop)

    def fetch(filters: dict[str, object], page: int) -> Reply:
        if stop.is_set():
            raise _StoppedError
        return api.fetch(filters, page)

    def listed(filters: dict[str, object], page: int) -> Reply:
        if stop.is_set():
            raise _StoppedError
        return api.fetch_listed(filters, page)

    def work(window: Window, *, last_try: bool, handed: PackedIds | None = None) -> None:
        doubt = listed if doubt_empty else None
        fetcher = partial(WindowFetcher, fetch, window, learned, stats, doubt)
        _work(window, fetcher, stats, events, last_try=last_try, handed=handed)

    pool = ThreadPoolExecutor(
        max_workers=max(1, config.max_concurrency), thread_name_prefix="fetch"
    )
    try:
        for window in windows:
            pool.submit(work, window, last_try=False)
        pending = yield from _events(events, len(windows))
        unproven = [item.window for item in pending if item.unproven]
        if unproven and not (learned.listed or _lists_records(api, learned)):
            raise ExtractionFailed(unproven[0], NOTHING_LISTED)
        again, done = _settle(pending, learned.false_empties)
        for window in done:
            stats.add("windows")
            yield WindowDone(window)
        if again:
            stats.add("windows_read_again", len(again))
            for item in again:
                pool.submit(work, item.window, last_try=True, handed=item.handed)
            yield from _events(events, len(again))
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        api.close()
        if learned.ranges_combined is not None:
            stats.add("ranges_combined", int(learned.ranges_combined))
        stats.learned(learned.describe())


def _settle(pending: list[_Pending], false_empties: bool) -> tuple[list[_Pending], list[Window]]:
    """The pending windows to read again, and those done: a doubtful one is read again once the
    run has seen the server answer empty falsely."""
    again = [item for item in pending if item.unproven or false_empties]
    return again, [item.window for item in pending if item not in again]


def _lists_records(api: ApiClient, learned: Learned) -> bool:
    """Whether the account's own listing (no date range) holds records, asked until it does or
    the client's retries run out: nothing in the run listed any, which an empty account and an
    outage from the run's first request look alike in."""
    logger.info("nothing listed any contact yet: asking whether the account has any at all")
    try:
        reply = api.fetch_listed({}, 1)
    except TransientError:
        return False
    learned.saw_listing(reply.received_at)
    return True


def _events(events: _Backlog, windows: int) -> Generator[Event, None, list[_Pending]]:
    """The events of that many windows, as they come; returns the windows left pending."""
    pending: list[_Pending] = []
    remaining = windows
    while remaining:
        event = events.get()
        if isinstance(event, BaseException):
            raise event
        if isinstance(event, _Pending):
            pending.append(event)
            remaining -= 1
            continue
        remaining -= isinstance(event, WindowDone)
        yield event
    return pending


def _work(
    window: Window,
    fetcher: Callable[[], WindowFetcher],
    stats: ExtractStats,
    events: _Backlog,
    *,
    last_try: bool,
    handed: PackedIds | None,
) -> None:
    """Fetch one window on a worker thread; however it ends, the consumer hears of it. A read
    again hands over only what the read before it (`handed`, by `_id`) did not; its strategies
    still see every record, and count them as found."""
    try:
        reading = fetcher()
        for batch in reading.batches():
            fresh = [
                r for r in batch if not (handed and isinstance(r, dict) and r.get("_id") in handed)
            ]
            if len(fresh) < len(batch):
                stats.add("records", len(fresh) - len(batch))
            if fresh:
                events.put(RecordsBatch(window, fresh))
        if reading.unproven and last_try:
            raise SourceError(NOTHING_LISTED)
        if reading.unproven:
            events.put(_Pending(window, reading.handed, unproven=True))
            return
        if reading.doubtful and not last_try:
            events.put(_Pending(window, reading.handed, unproven=False))
            return
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
