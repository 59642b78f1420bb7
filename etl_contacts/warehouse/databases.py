"""Databases made and dropped on a PostgreSQL server: the embedded default's, and the throwaway
ones of the tests, the benchmarks and the UI check. One place for the SQL, which cannot run in a
transaction, and for turning a server's URL into one database's."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, make_url

DRIVER = "postgresql+psycopg"

logger = logging.getLogger(__name__)


def database_url(server_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server `server_url` points at."""
    url = make_url(server_url)
    # rebuilt, not `set()`: the embedded server's URI carries an empty password (`postgres:@`),
    # and `set(password=None)` reads None as "unchanged"
    rebuilt = URL.create(
        DRIVER, url.username, url.password or None, url.host, url.port, name, url.query
    )
    return rebuilt.render_as_string(hide_password=False)


def libpq_conninfo(url: URL, *, with_password: bool) -> str:
    """libpq's own `key=value` string for `url`. Not SQLAlchemy's rendering: it writes a space
    in a query value (the socket's folder) as `+`, which libpq does not decode."""
    parts: dict[str, object] = {
        **url.translate_connect_args(username="user", database="dbname"),
        **{
            key: value if isinstance(value, str) else ",".join(value)
            for key, value in url.query.items()
        },
    }
    if not with_password:
        parts.pop("password", None)
    return make_conninfo(**{key: str(value) for key, value in parts.items()})


def create_database(
    server_url: str, name: str, *, template: str | None = None, if_missing: bool = False
) -> str:
    """Create `name` (a copy of `template` when given) and return its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(server_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None or not if_missing:
            logger.info("creating database %s", name)
            try:
                conn.execute(statement)
            # two first runs on a fresh embedded home (backfills of two accounts) both saw none
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                if not if_missing:
                    raise
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
    conninfo = libpq_conninfo(make_url(server_url), with_password=True)
    return psycopg.connect(conninfo, autocommit=True)
