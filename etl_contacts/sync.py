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
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from etl_contacts.normalizer import Normalizer
from etl_contacts.run_windows import GapFree, Repeats
from etl_contacts.source import ClientConfig, ExtractStats, RecordsBatch, Window, extract
from etl_contacts.transform import Frames
from etl_contacts.unchanged import Split, split_unchanged
from etl_contacts.warehouse import CompletedWindow, Warehouse

STREAMS = ("createdAt", "lastSeenAt")
# Records per transaction: COPY pays off from thousands on, and each batch in flight costs
# memory twice (here and in the normalizer). A cold load of 50,000 contacts peaked, for both
# processes, at 524 MB with 5,000, 490 MB with 4,000 (531 MB at 1,000,000 contacts), 445 MB
# with 3,000, which was up to 15 % slower: 500 MB is the ceiling we hold to.
DEFAULT_BATCH_SIZE = 3_000

logger = logging.getLogger(__name__)
progress = logging.getLogger("etl_contacts.progress")


@dataclass(frozen=True)
class SyncResult:
    """What one run did: warehouse counts, extraction counters, and wall time."""

    run_id: str
    windows: int
    loaded: dict[str, int] = field(default_factory=dict)
    extracted: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def day_windows(first: date, last: date, timezone: str) -> list[Window]:
    """Both streams for every local day in [first, last], as UTC half-open windows."""
    tz = ZoneInfo(timezone)
    windows = []
    day = first
    while day <= last:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end_day = day + timedelta(days=1)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
        windows.extend(
            Window(
                field=stream,
                start=start.astimezone(ZoneInfo("UTC")),
                end=end.astimezone(ZoneInfo("UTC")),
            )
            for stream in STREAMS
        )
        day = end_day
    return windows


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
    log: logging.Logger = logger,
) -> SyncResult:
    """Load `windows` for `account`; a failure is recorded on the run, then re-raised."""
    started = time.monotonic()
    stats = ExtractStats()
    loaded: Counter[str] = Counter()
    buffer: list[object] = []
    completed: list[CompletedWindow] = []
    gap_free = GapFree(windows)
    repeats = Repeats(windows, datetime.now(ZoneInfo("UTC")))
    pending: deque[tuple[Future[Frames], Split, int, list[CompletedWindow]]] = deque()
    done = skipped = 0

    def stored_hashes(contact_ids: list[str]) -> dict[str, str]:
        return warehouse.stored_hashes(account, contact_ids)

    def flush(*, last: bool) -> None:
        """Hand the buffer's changed records to the normalizer and load what it finished,
        oldest first; one batch stays in flight, so normalizing the next overlaps loading."""
        nonlocal buffer, completed, skipped
        split = split_unchanged(buffer, stored_hashes, pii_key)
        future = normalizer.submit(split.changed, last=last)
        pending.append((future, split, skipped, completed))
        buffer, completed, skipped = [], [], 0
        while len(pending) > (0 if last else 1):
            future, split, repeated, windows_done = pending.popleft()
            frames = future.result()
            frames = replace(frames, collapsed=frames.collapsed + repeated)
            counts = warehouse.load(
                frames,
                run_id=run_id,
                account=account,
                completed=windows_done,
                unchanged=split.unchanged,
            )
            loaded.update(asdict(counts))

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
        )
        try:
            for event in extract(client, windows, stats=stats):
                if isinstance(event, RecordsBatch):
                    fresh = repeats.fresh(event)
                    skipped += len(event.records) - len(fresh)
                    buffer.extend(fresh)
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
                log.info(line)
                progress.info(
                    line, extra={"windows_done": done, "windows_total": len(windows), "rate": rate}
                )
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
        seconds=seconds,
    )


def _describe(window: Window) -> str:
    return f"{window.field} {window.start:%Y-%m-%dT%H:%MZ}..{window.end:%Y-%m-%dT%H:%MZ}"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
