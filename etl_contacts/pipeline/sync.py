"""One sync run: extract windows, normalize each batch, load it (for Dagster and benchmarks).

Three things run at once: fetching on the source's worker threads, normalizing on a worker
process, loading on this thread (with Postgres on its own process). A batch is flushed when it
is large enough for COPY to pay off. A finished window rides along with the next flush, so it
is recorded complete in the same transaction as its last rows (or a later one), never before.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from etl_contacts.pipeline.deletions import DEFAULT_POLICY, DeletePolicy, Deletions
from etl_contacts.pipeline.gap_free import GapFree
from etl_contacts.pipeline.normalizer import Normalizer
from etl_contacts.pipeline.unchanged import split_unchanged
from etl_contacts.settings import days_between
from etl_contacts.source import (
    CREATED_AT,
    LAST_SEEN_AT,
    ClientConfig,
    ExtractStats,
    RecordsBatch,
    Window,
    extract,
)
from etl_contacts.timestamps import local_day
from etl_contacts.warehouse import CompletedWindow, Seen, Warehouse
from etl_contacts.warehouse.frames import Frames

# Records per transaction: COPY pays off from thousands on, and each batch in flight costs
# memory twice (here and in the normalizer). A cold load of 50,000 contacts peaked, for both
# processes, at 524 MB with 5,000, 490 MB with 4,000 (531 MB at 1,000,000 contacts), 445 MB
# with 3,000, which was up to 15 % slower: 500 MB is the ceiling we hold to.
DEFAULT_BATCH_SIZE = 3_000

# At most one window line a second in the run's log: through Dagster each line is an event
# written to its storage (16 ms each on SQLite), a second and a half of a 90-day backfill when
# every window had one. The terminal's progress bar still moves with every window.
LOG_EVERY_SECONDS = 1.0

logger = logging.getLogger(__name__)
PROGRESS_LOGGER = "etl_contacts.progress"
"""Where each finished window is reported for a terminal to show (the CLI installs a handler)."""
progress = logging.getLogger(PROGRESS_LOGGER)


@dataclass(frozen=True)
class SyncResult:
    """What one run did: warehouse counts, extraction counters, and wall time."""

    run_id: str
    windows: int
    loaded: dict[str, int] = field(default_factory=dict)
    extracted: dict[str, float] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    """What the extraction found the server to do: sort, page size, never-active, ranges."""
    seconds: float = 0.0


def day_windows(
    first: date,
    last: date,
    timezone: str,
    *,
    reverify: Sequence[date] = (),
    active_from: date | None = None,
) -> list[Window]:
    """What a run over the local days [first, last] reads, each contact once.

    One createdAt window per day, the unit of completeness (createdAt never changes), also for
    the older days it `reverify`s; and one window for the contacts active from `active_from`
    (default: `first`) to `last` but created outside those days (before, or later when
    imported): the source gets both ranges in one body.
    """
    days = sorted({*days_between(first, last), *reverify})
    windows = [Window(CREATED_AT, *local_day(day, timezone)) for day in days]
    if windows:
        start, end = local_day(min(first, active_from or first), timezone)[0], windows[-1].end
        windows.append(Window(LAST_SEEN_AT, start, end, created_outside=_merged(windows)))
    return windows


def _merged(windows: Sequence[Window]) -> tuple[tuple[datetime, datetime], ...]:
    """The windows' ranges, adjacent ones joined (one excluded range asks one query less)."""
    ranges: list[tuple[datetime, datetime]] = []
    for window in windows:
        if ranges and ranges[-1][1] == window.start:
            ranges[-1] = (ranges[-1][0], window.end)
        else:
            ranges.append((window.start, window.end))
    return tuple(ranges)


@contextmanager
def _few_collections() -> Iterator[None]:
    """A run allocates millions of short-lived objects, and each full collection would walk
    every long-lived one (Dagster and pandas hold hundreds of thousands). Freeze those and
    collect less often while the run lasts: at 50,000 contacts, collection time went from 2.6 s
    to 0.7 s of 18 s of CPU."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def run_sync(
    *,
    client: ClientConfig,
    warehouse: Warehouse,
    windows: Sequence[Window],
    account: str,
    run_id: str,
    pii_key: bytes | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    timezone: str = "UTC",
    prestart: Sequence[date] = (),
    policy: DeletePolicy = DEFAULT_POLICY,
    log: logging.Logger = logger,
) -> SyncResult:
    """Load `windows` for `account`; a failure is recorded on the run, then re-raised.

    Each createdAt window read completely is recorded as verified for its local day (in
    `timezone`), with the contacts it found missing; the `prestart` days (before the start
    date, where no window is read) are verified by probing their stored contacts. Contacts an
    earlier run found missing are looked for again, and deleted as `policy` allows.
    """
    started = time.monotonic()
    stats = ExtractStats()
    loaded: Counter[str] = Counter()
    buffer: list[object] = []
    completed: list[CompletedWindow] = []
    gap_free = GapFree(windows)
    logged = 0.0
    pending: deque[tuple[Future[Frames], list[Seen], list[CompletedWindow]]] = deque()
    done = 0

    stored_hashes = partial(warehouse.stored_hashes, account)
    deletions = Deletions(
        client,
        warehouse,
        stats,
        account=account,
        run_id=run_id,
        timezone=timezone,
        policy=policy,
        batch_size=batch_size,
        log=log,
        active_until=max((w.end for w in windows if w.field == LAST_SEEN_AT), default=None),
    )

    def flush(*, last: bool) -> None:
        """Hand the buffer's changed records to the normalizer and load what it finished,
        oldest first; one batch stays in flight, so normalizing the next overlaps loading."""
        nonlocal buffer, completed
        split = split_unchanged(buffer, stored_hashes, pii_key)
        source_now = datetime.fromtimestamp(stats.now_at_least(), UTC)
        future = normalizer.submit(split.changed, last=last, now=source_now)
        # the records themselves are not kept: the normalizer has its own copy, and holding
        # them until their frames are loaded cost a batch of records (about 13 MB) the whole run
        pending.append((future, split.unchanged, completed))
        buffer, completed = [], []
        del split
        while len(pending) > (0 if last else 1):
            future, unchanged, windows_done = pending.popleft()
            counts = warehouse.load(
                future.result(),
                run_id=run_id,
                account=account,
                completed=windows_done,
                unchanged=unchanged,
            )
            loaded.update(asdict(counts))
            for window in windows_done:
                if window.stream == CREATED_AT:
                    buffer.extend(deletions.verify(window))

    with (
        warehouse.account_lock(account),
        _few_collections(),
        Normalizer(account=account, pii_key=pii_key) as normalizer,
    ):
        warehouse.begin_run(
            run_id=run_id,
            account=account,
            started_at=datetime.now(ZoneInfo("UTC")),
            windows=[_describe(w) for w in windows],
            timezone=timezone,
        )
        try:
            for event in extract(client, windows, stats=stats):
                if isinstance(event, RecordsBatch):
                    buffer.extend(event.records)
                    if len(buffer) >= batch_size:
                        flush(last=False)
                    continue
                window = event.window
                completed.append(
                    CompletedWindow(
                        stream=window.field,
                        start=window.start,
                        end=window.end,
                        watermarks=gap_free.complete(window),
                    )
                )
                done += 1
                records = stats.get("records")
                rate = records / max(time.monotonic() - started, 1e-9)
                line = (
                    f"window {done}/{len(windows)} fetched ({_describe(window)}), "
                    f"{records} records so far, {rate:.0f}/s"
                )
                if done == len(windows) or time.monotonic() - logged >= LOG_EVERY_SECONDS:
                    log.info(line)
                    logged = time.monotonic()
                progress.info(
                    line, extra={"windows_done": done, "windows_total": len(windows), "rate": rate}
                )
            flush(last=True)
            if buffer:  # holes found by the last windows' first looks
                flush(last=True)
            for found in deletions.finish(prestart):
                buffer.extend(found)
                flush(last=True)
        except BaseException as exc:
            warehouse.finish_run(
                run_id=run_id, status="failed", stats=stats.as_dict(), error=_one_line(exc)
            )
            raise
        seconds = time.monotonic() - started
        warehouse.finish_run(run_id=run_id, status="success", stats=stats.as_dict(), error=None)
    return SyncResult(
        run_id=run_id,
        windows=len(windows),
        loaded=dict(loaded),
        extracted=stats.as_dict(),
        server=stats.server(),
        seconds=seconds,
    )


def _describe(window: Window) -> str:
    return f"{window.field} {window.start:%Y-%m-%dT%H:%MZ}..{window.end:%Y-%m-%dT%H:%MZ}"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
