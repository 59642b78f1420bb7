"""The Express-Chat API: HTTP, windows, retries, rate limits. Knows nothing of pandas or SQL."""

from etl_contacts.source.errors import AuthError, ExtractionFailed, SourceError
from etl_contacts.source.extract import extract
from etl_contacts.source.http import probe
from etl_contacts.source.models import (
    CREATED_AT,
    LAST_SEEN_AT,
    ClientConfig,
    Event,
    RecordsBatch,
    Window,
    WindowDone,
)
from etl_contacts.source.stats import ExtractStats

__all__ = [
    "CREATED_AT",
    "LAST_SEEN_AT",
    "AuthError",
    "ClientConfig",
    "Event",
    "ExtractStats",
    "ExtractionFailed",
    "RecordsBatch",
    "SourceError",
    "Window",
    "WindowDone",
    "extract",
    "probe",
]
