"""Progress of a sync on the terminal: a bar on a TTY, plain lines otherwise (cron, CI, pipes).

The sync reports each finished window on the `etl_contacts.progress` logger; this handler turns
those records into a rich progress bar (windows done of total, records per second, time left),
so the CLI needs no hook into Dagster's own logging.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PROGRESS_LOGGER = "etl_contacts.progress"


class _ProgressHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self._console = console
        self._bar: Progress | None = None
        self._task = 0
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("windows"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8.0f} records/s"),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._bar.add_task("sync", total=None, rate=0.0)
            self._bar.start()

    def emit(self, record: logging.LogRecord) -> None:
        done, total = getattr(record, "windows_done", 0), getattr(record, "windows_total", 0)
        if self._bar is None:
            self._console.print(record.getMessage(), highlight=False, soft_wrap=True)
            return
        rate = getattr(record, "records_per_second", 0.0)
        self._bar.update(self._task, completed=done, total=total, rate=rate)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        super().close()


@contextmanager
def shown_on(console: Console) -> Iterator[None]:
    """Show the progress of syncs run inside the block on `console`."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = _ProgressHandler(console)
    logger.addHandler(handler)
    logger.propagate = False  # shown here, not a second time by the root handler
    level, logger.level = logger.level, logging.INFO
    try:
        yield
    finally:
        logger.level = level
        logger.propagate = True
        logger.removeHandler(handler)
        handler.close()
