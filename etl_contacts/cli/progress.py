"""Progress of a sync on the terminal: a live bar on a terminal, one line per window elsewhere.

The sync reports each finished window on the `etl_contacts.progress` logger, with the counts as
record attributes; a handler installed here shows them, so the CLI needs no hook into Dagster's
own logging (whose console copy, tracebacks included, stays in the UI).

Dagster points file descriptors 1 and 2 of a running step at its compute logs, which swallowed
a bar drawn on them. The bar is drawn on a duplicate of the terminal's descriptor, made before
the run starts, which keeps pointing at the terminal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from etl_contacts.pipeline.sync import PROGRESS_LOGGER


class _LineHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        self._console.print(record.getMessage(), highlight=False, soft_wrap=True)


class _BarHandler(logging.Handler):
    """Windows done of total, contacts per second, time left; started by the first window."""

    def __init__(self, terminal: Console) -> None:
        super().__init__(logging.INFO)
        self._progress = Progress(
            TextColumn("sync"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("windows · {task.fields[rate]:,.0f} contacts/s · elapsed"),
            TimeElapsedColumn(),
            TextColumn("· left"),
            TimeRemainingColumn(),
            console=terminal,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task: TaskID | None = None

    def emit(self, record: logging.LogRecord) -> None:
        done, total = getattr(record, "windows_done", None), getattr(record, "windows_total", None)
        if done is None or total is None:
            self._progress.console.print(record.getMessage(), highlight=False, soft_wrap=True)
            return
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("sync", total=total, rate=0.0)
        self._progress.update(self._task, completed=done, rate=getattr(record, "rate", 0.0))

    def close(self) -> None:
        self._progress.stop()
        super().close()


@contextmanager
def shown_on(console: Console) -> Iterator[None]:
    """Show the progress of syncs run inside the block on `console`."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    terminal = None
    if console.is_terminal and hasattr(console.file, "fileno"):
        terminal = open(os.dup(console.file.fileno()), "w", encoding="utf-8")  # noqa: SIM115
        handler: logging.Handler = _BarHandler(Console(file=terminal, force_terminal=True))
    else:
        handler = _LineHandler(console)
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
        if terminal is not None:
            terminal.close()
