"""Fetch many windows at once on worker threads, handing batches to one consumer.

Windows are independent, so up to `max_concurrency` are fetched in parallel; the consumer (the
transform and the load) runs on the caller's thread, overlapping with the fetching. The queue
between them is bounded, so a slow warehouse slows the fetching instead of filling memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from etl_contacts.source.errors import AuthError, ExtractionFailed, SourceError
from etl_contacts.source.http import ApiClient
from etl_contacts.source.learned import Learned
from etl_contacts.source.models import ClientConfig, Event, RecordsBatch, Window, WindowDone
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.windows import WindowFetcher

QUEUE_BATCHES = 1024


class _StoppedError(Exception):
    """The consumer went away; workers stop at their next request."""


def extract(
    config: ClientConfig, windows: Sequence[Window], *, stats: ExtractStats | None = None
) -> Iterator[Event]:
    """Every record of every window, as batches, each window closed by a WindowDone."""
    stats = stats or ExtractStats()
    api = ApiClient(config, stats)
    learned = Learned()
    events: queue.Queue[Event | BaseException] = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()

    def put(item: Event | BaseException) -> None:
        while not stop.is_set():
            try:
                events.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _StoppedError

    def fetch(filters: dict[str, object], page: int) -> list[object]:
        if stop.is_set():
            raise _StoppedError
        return api.fetch(filters, page)

    def work(window: Window) -> None:
        try:
            for batch in WindowFetcher(fetch, window, learned, stats).batches():
                put(RecordsBatch(window, batch))
            stats.add("windows")
            put(WindowDone(window))
        except _StoppedError:
            return
        except AuthError as exc:
            put(exc)
        except SourceError as exc:
            put(ExtractionFailed(window, str(exc)))
        except Exception as exc:  # handed to the consumer, who re-raises it
            put(exc)

    pool = ThreadPoolExecutor(
        max_workers=max(1, config.max_concurrency), thread_name_prefix="fetch"
    )
    try:
        for window in windows:
            pool.submit(work, window)
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
