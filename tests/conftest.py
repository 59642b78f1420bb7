"""Shared fixtures: a real PostgreSQL (the embedded server) per session, a database per test."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from etl_contacts.warehouse import Warehouse
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
    admin = make_url(pg_server_url).set(drivername="postgresql")
    conninfo = admin.render_as_string(hide_password=False)
    made: list[str] = []

    def make() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


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
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = (
        make_url(pg_server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    warehouse = Warehouse(
        make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    )
    warehouse.migrate()
    warehouse.begin_run(run_id="r", account="a", started_at=datetime.now(UTC), windows=[])
    yield warehouse
    warehouse.engine.dispose()
