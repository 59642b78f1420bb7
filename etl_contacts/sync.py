"""One sync run: extract windows, normalize each batch, load it (for Dagster and benchmarks).

Fetching happens on the source's worker threads; this thread transforms and loads, so HTTP and
Postgres overlap. A batch is flushed when it is large enough for COPY to pay off. A finished
window rides along with the next flush, so it is recorded complete in the same transaction as
its last rows (or a later one), never before them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from etl_contacts.source import ClientConfig, ExtractStats, RecordsBatch, Window, extract
from etl_contacts.transform import normalize
from etl_contacts.warehouse import CompletedWindow, Warehouse

STREAMS = ("createdAt", "lastSeenAt")
DEFAULT_BATCH_SIZE = 5_000

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


class _GapFree:
    """Per stream, how far the run's windows are complete without a gap from the first.

    Windows finish out of order (several are fetched at once); a watermark must never claim a
    window that is still loading, so it follows only the gap-free prefix.
    """

    def __init__(self, windows: Sequence[Window]) -> None:
        self._order = {
            stream: sorted((w for w in windows if w.field == stream), key=lambda w: w.start)
            for stream in {w.field for w in windows}
        }
        self._next = dict.fromkeys(self._order, 0)
        self._done: set[Window] = set()

    def complete(self, window: Window) -> datetime | None:
        """The new watermark of the window's stream, if this completion moved it."""
        self._done.add(window)
        order, position, moved = self._order[window.field], self._next[window.field], None
        while position < len(order) and order[position] in self._done:
            moved = order[position].end
            position += 1
        self._next[window.field] = position
        return moved


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
    gap_free = _GapFree(windows)
    done = 0

    def flush() -> None:
        frames = normalize(buffer, account=account, pii_key=pii_key)
        counts = warehouse.load(frames, run_id=run_id, account=account, completed=completed)
        loaded.update(asdict(counts))
        buffer.clear()
        completed.clear()

    with warehouse.account_lock(account):
        warehouse.begin_run(
            run_id=run_id,
            account=account,
            started_at=datetime.now(ZoneInfo("UTC")),
            windows=[_describe(w) for w in windows],
        )
        try:
            for event in extract(client, windows, stats=stats):
                if isinstance(event, RecordsBatch):
                    buffer.extend(event.records)
                    if len(buffer) >= batch_size:
                        flush()
                    continue
                window = event.window
                completed.append(
                    CompletedWindow(
                        stream=window.field,
                        start=window.start,
                        end=window.end,
                        watermark=gap_free.complete(window),
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
                progress.info(line)
            flush()
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
