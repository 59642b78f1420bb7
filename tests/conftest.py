"""Shared fixtures: a real PostgreSQL (the embedded server) per session, a database per test."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.databases import scratch_database
from etl_contacts.warehouse.embedded import embedded_database_url


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The embedded server's maintenance database, private to this session (and worker).

    Its data lives outside pytest's temporary tree, which a concurrent pytest run may prune;
    the server deletes it when the session's process exits.
    """
    home = Path(tempfile.mkdtemp(prefix="etl-contacts-pg-"))
    return embedded_database_url(home, database="postgres", persistent=False)


@pytest.fixture
def new_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes new empty databases for one test (as many as it asks for), dropped afterwards."""
    with ExitStack() as made:

        def make() -> str:
            return made.enter_context(scratch_database(pg_server_url, prefix="test"))

        yield make


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A new empty database for one test, dropped afterwards."""
    return new_database()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hostile_warehouse(pg_server_url: str) -> Iterator[Warehouse]:
    """One migrated warehouse shared by the many examples of a property-based test."""
    with scratch_database(pg_server_url, prefix="test") as url:
        warehouse = Warehouse(url)
        warehouse.migrate()
        warehouse.begin_run(
            run_id="r", account="a", started_at=datetime.now(UTC), windows=[], timezone="UTC"
        )
        yield warehouse
        warehouse.engine.dispose()
