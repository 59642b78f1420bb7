"""Every failure of a sync ends with what to check: the cause as our errors and the drivers word
it, mapped to the advice doctor gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from etl_contacts.cli.remedies import remedy
from etl_contacts.settings import DATABASE_FIX
from etl_contacts.source import AuthError, ExtractionFailed, Window
from etl_contacts.source.errors import TransientError
from etl_contacts.source.http import classify
from etl_contacts.warehouse.warehouse import LockLostError

DAY = Window("createdAt", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))


def _failed(cause: str, detail: str) -> str:
    """What a run reports when retries ran out: the window and the last transient cause."""
    return str(ExtractionFailed(DAY, str(TransientError(cause, detail))))


def _refused(status: int) -> str:
    with pytest.raises(AuthError) as refused:
        classify(
            status, "application/json", b'{"success":false,"message":"bad key"}', None, secret="k"
        )
    return str(refused.value)


@pytest.mark.parametrize(
    ("cause", "advice"),
    [
        (_failed("connection", "the connection failed (ConnectionError)"), "EXPRESS_CHAT_BASE_URL"),
        (_failed("timeout", "no answer within the timeout"), "reachable from this machine"),
        (_failed("429", "rate limited"), "rate-limiting the run past its retry budget"),
        (_failed("503", "server error 503"), "server errors: run again later"),
        (
            _failed("unsuccessful", "a 200 response saying success: false (timed out)"),
            "server errors: run again later",
        ),
        (_refused(400), "check ACME_TOKEN"),
        (_refused(401), "check ACME_TOKEN"),
        (
            "TLS verification of https://api.example failed: its certificate is not trusted",
            "EXPRESS_CHAT_CA_BUNDLE",
        ),
        (
            'connection failed: connection to server at "db", port 5432 failed: Connection refused',
            DATABASE_FIX,
        ),
        ('could not extend file "base/16384/2619": No space left on device', "free disk space"),
        ("permission denied for schema express_chat", "`etl-contacts migrate` once as a role"),
        (str(LockLostError("the run lost its lock on account 'acme'")), "no other sync runs"),
        ("something nobody foresaw", "the Dagster UI"),
    ],
)
def test_each_cause_gets_what_to_check(cause: str, advice: str) -> None:
    assert advice in remedy(cause, "ACME_TOKEN")
