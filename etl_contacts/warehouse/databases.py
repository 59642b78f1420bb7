"""Databases made and dropped on a PostgreSQL server: the embedded default's, and the throwaway
ones of the tests, the benchmarks and the UI check. One place for the SQL, which cannot run in a
transaction, and for turning a server's URL into one database's."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

DRIVER = "postgresql+psycopg"

logger = logging.getLogger(__name__)


def rebuilt_url(
    url: URL, *, drivername: str, database: str | None = None, password: str | None = None
) -> URL:
    """`url` on another driver (and database), with `password` or none: `URL.set` reads None as
    "unchanged", so it cannot remove a password."""
    return URL.create(
        drivername, url.username, password, url.host, url.port, database or url.database, url.query
    )


def database_url(server_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server `server_url` points at."""
    url = make_url(server_url)
    # the embedded server's URI carries an empty password (`postgres:@`): none at all
    rebuilt = rebuilt_url(url, drivername=DRIVER, database=name, password=url.password or None)
    return rebuilt.render_as_string(hide_password=False)


def create_database(
    server_url: str, name: str, *, template: str | None = None, if_missing: bool = False
) -> str:
    """Create `name` (a copy of `template` when given) and return its URL."""
    with _admin(server_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None or not if_missing:
            logger.info("creating database %s", name)
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(statement)
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop `name`, closing its sessions first: a crashed run may still hold one."""
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(
    server_url: str, *, prefix: str, template: str | None = None, keep: bool = False
) -> Iterator[str]:
    """A new database with a unique name for the block, dropped after it unless `keep`."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name, template=template)
    try:
        yield url
    finally:
        if not keep:
            drop_database(server_url, name)


def _admin(server_url: str) -> psycopg.Connection:
    conninfo = make_url(server_url).set(drivername="postgresql")
    return psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True)
