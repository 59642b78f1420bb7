"""Progress of a sync on the terminal: one line per finished window.

The sync reports each finished window on the `etl_contacts.progress` logger; this handler prints
those records on the CLI's console, so the CLI needs no hook into Dagster's own logging (whose
console copy, tracebacks included, stays in the UI).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

PROGRESS_LOGGER = "etl_contacts.progress"


class _ProgressHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        self._console.print(record.getMessage(), highlight=False, soft_wrap=True)


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
