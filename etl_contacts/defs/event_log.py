"""Dagster's SQLite event log for the embedded default instance, its connections kept open.

Dagster's `SqliteEventLogStorage` creates an engine for every event it writes and disposes of it
(a `NullPool`), and each close checkpoints the write-ahead log and each commit waits for the disk:
about 10 ms an event here, twice for asset events (the run's database and the index). A sync
writes about 11 events per day of its range (a planned and a materialization event per table and
day, three check results a day), so a 30-day sync spent 4 of its 13 seconds there. This subclass
keeps one open connection to the index and to the few run databases written last, and commits
with `synchronous=NORMAL`, the write-ahead log's own recommendation: a power loss may drop the
last events of a run, never corrupt the file. Every event is still written, each in its own
transaction, so the UI shows what it showed, and a run's database is checkpointed after each
(the UI follows a running run by watching that file).

It overrides `_connect`, a private method of Dagster's class (dagster is pinned in
requirements.lock); `tests/integration/test_cli_sync.py` runs syncs on it and reads their
materializations and checks back through the instance. Its folder comes from `DAGSTER_HOME`, as
every Dagster command's instance does.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

OPEN_RUN_DATABASES = 3
"""Run databases kept open besides the index: a run writes its own and the index; the UI's
server reads the few runs on screen. More would hold file handles for runs nobody reads."""


class OpenSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` in `$DAGSTER_HOME/history/runs`, where Dagster puts it, with its
    connections kept open (see the module's docstring)."""

    def __init__(self, home: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(os.path.join(home, "history", "runs"), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"home": dg.StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> OpenSqliteEventLogStorage:
        return cls(config_value["home"], inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """A transaction on the shard's open connection. A run's database is checkpointed after
        it: the UI follows a run live by watching that file change, and the write-ahead log
        alone does not change it (Dagster's closing of each connection used to)."""
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn
                driver = conn.connection.driver_connection
                if shard != INDEX_SHARD_NAME and driver is not None:
                    driver.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = sa.create_engine(
                create_db_conn_string(self._base_dir, shard),
                pool_size=1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sa.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[:-OPEN_RUN_DATABASES]:
            self._engines.pop(name).dispose()
        return engine

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


def _commit_without_waiting_for_the_disk(connection: Any, _record: object) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")
