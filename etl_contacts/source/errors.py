"""Errors of the source, one class per cause. Messages never contain the token: they are built
from status codes, the server's own message and our window, never from a request object."""

from __future__ import annotations

from collections.abc import Sequence

from etl_contacts.source.models import Window


class SourceError(Exception):
    """The API could not give us the data."""


class AuthError(SourceError):
    """The API refused our credentials: retrying cannot help, the user must fix configuration."""


class TransientError(SourceError):
    """A failure worth retrying; `cause` names its kind for the retry counters."""

    def __init__(self, cause: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.retry_after = retry_after


class FilterIgnoredError(SourceError):
    """The server answered a date range with records outside it: no window can be read."""


class RangesNotCombinedError(SourceError):
    """Two date ranges in one body were not both applied: the caller reads one range only."""


class SortChangedError(SourceError):
    """An answer was not in the order the strategy assumed: the window is read another way.
    `items` is that answer, which may show the order the server does follow."""

    def __init__(self, items: Sequence[object] = ()) -> None:
        super().__init__("an answer was not in the order assumed")
        self.items = list(items)


class NotConvergedError(SourceError):
    """A strategy gave up before it could prove its window complete; never reported complete."""


class ExtractionFailed(SourceError):  # noqa: N818 (the name reads as the event it reports)
    """Retries ran out for a window, or it could not be proven complete; the run fails."""

    def __init__(self, window: Window, cause: str) -> None:
        super().__init__(f"could not fetch {window}: {cause}")
        self.window = window
        self.cause = cause
