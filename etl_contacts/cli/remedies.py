"""What to check when a sync failed, from the one-line cause of its run: the same advice
`doctor` gives for the same problem, so a failed nightly run needs no second command to explain.

The cause arrives as text (Dagster keeps a failed step's error as its message and class name),
so each remedy is chosen by the words our own errors and the drivers' use.
"""

from __future__ import annotations

import re

from etl_contacts.settings import BASE_URL_ENV, CA_BUNDLE_ENV, DATABASE_FIX

_REMEDIES: tuple[tuple[str, str], ...] = (
    (
        r"TLS verification",
        f"point {CA_BUNDLE_ENV} at the CA that signed the API's certificate "
        "(`etl-contacts doctor` checks it)",
    ),
    (
        r"rejected the token|401 Unauthorized",
        "check {token_env}: it must hold an API key of the account "
        "(`etl-contacts doctor` checks it)",
    ),
    (
        r"\b429: rate limited",
        "the API kept rate-limiting the run past its retry budget: run again later or at a "
        "quieter hour (nothing is lost: the run records which days are loaded)",
    ),
    (
        r"\bconnection: |\btimeout: ",
        f"check that {BASE_URL_ENV} is right and reachable from this machine (network, proxy, "
        "DNS); `etl-contacts doctor` tests it",
    ),
    (
        r"\bserver error 5\d\d|\bunsuccessful: ",
        "the API kept failing with server errors: run again later; if it persists, ask "
        "Express-Chat's support",
    ),
    (
        r"No space left on device|could not extend file|DiskFull",
        "free disk space where PostgreSQL keeps its data (the embedded one under "
        ".etl_contacts/), then run again",
    ),
    (
        r"permission denied|must be owner",
        "run `etl-contacts migrate` once as a role that may create the schema and its role, "
        "then sync again",
    ),
    (
        r"connection to server|could not connect|Connection refused|server closed the connection",
        DATABASE_FIX,
    ),
    (
        r"lost its lock|account lock",
        "another sync of this account, or a dropped database connection, took the account's "
        "lock: check that no other sync runs, then run again",
    ),
)
_FALLBACK = "the run in the Dagster UI (`make dev`, Runs) shows the whole error"


def remedy(cause: str, token_env: str) -> str:
    """What to check for this cause, as doctor would say it."""
    for pattern, advice in _REMEDIES:
        if re.search(pattern, cause):
            return advice.format(token_env=token_env)
    return _FALLBACK
