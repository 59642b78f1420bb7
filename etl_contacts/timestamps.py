"""The API's timestamps: ISO 8601 UTC with milliseconds. Internally, integer milliseconds.

Shared by the source (window bounds), the transform (typed columns) and the sandbox.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

# The record's two date fields, which the API filters on: here, not in `source`, so that the
# transform (and so the normalizer's worker process) names them without importing the HTTP client
CREATED_AT: Final = "createdAt"
LAST_SEEN_AT: Final = "lastSeenAt"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
# What PostgreSQL's drivers can read back: years 1 to 9999 in UTC. A date written with an
# offset can fall outside in UTC ("0001-01-01T00:00:00+05:30" is in year 0 there).
EARLIEST_UTC_MS: Final = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // MILLISECOND
LATEST_UTC_MS: Final = (datetime.max.replace(tzinfo=UTC) - EPOCH) // MILLISECOND


def to_ms(moment: datetime) -> int:
    """Exact integer arithmetic: `int(moment.timestamp() * 1000)` is a millisecond early for
    about 1 in 150 stamps (the float product falls just below the integer), which moved keyset
    cursors and range checks."""
    return (moment - EPOCH) // MILLISECOND


def format_ms(millis: int) -> str:
    moment = EPOCH + millis * MILLISECOND
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def parse_ms(value: object) -> int | None:
    """Milliseconds of an API timestamp, or None when it is missing, not a valid date, or
    outside the years 1 to 9999 in UTC."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value)  # reads a trailing Z since Python 3.11
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = to_ms(moment)
    return millis if EARLIEST_UTC_MS <= millis <= LATEST_UTC_MS else None


def local_day(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The local day as a half-open UTC range (23 or 25 hours when the clocks change)."""
    tz = ZoneInfo(timezone)
    after = day + timedelta(days=1)
    return (
        datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC),
        datetime(after.year, after.month, after.day, tzinfo=tz).astimezone(UTC),
    )
