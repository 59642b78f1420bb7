"""The warehouse as the rest of the project sees it: migrate, lock, load, record runs, read.

Every statement runs with `schema_translate_map`, so the configured schema is quoted by
SQLAlchemy; the loader's own SQL quotes it with `psycopg.sql`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import orjson
import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from etl_contacts.settings import DEFAULT_SCHEMA
from etl_contacts.warehouse import tables
from etl_contacts.warehouse.frames import Frames
from etl_contacts.warehouse.loader import BatchLoader, CompletedWindow, LoadCounts, Seen

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
RUN_COUNTERS = {
    "requests": "requests",
    "retries": "retries",
    "pages": "pages",
    "records": "records",
    "duplicates": "duplicates_dropped",
    "holes_repaired": "holes_repaired",
}


def sqlalchemy_url(url: str) -> sa.URL:
    """Any PostgreSQL URL, driven by psycopg 3."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"{parsed.drivername!r} is not a PostgreSQL URL")
    return parsed.set(drivername="postgresql+psycopg")


def _psycopg(conn: sa.Connection) -> psycopg.Connection:
    """The psycopg connection under SQLAlchemy's, for the loader's COPY and SQL."""
    driver = conn.connection.driver_connection
    # the engine always drives psycopg 3 (`sqlalchemy_url`), and a connection in use has one
    assert isinstance(driver, psycopg.Connection), f"not a psycopg connection: {driver!r}"
    return driver


class Warehouse:
    def __init__(self, url: str, *, schema: str = DEFAULT_SCHEMA) -> None:
        self.schema = schema
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True).execution_options(
            schema_translate_map={DEFAULT_SCHEMA: schema}
        )
        self._loader = BatchLoader(schema)

    def migrate(self) -> None:
        """Upgrade to the newest revision; concurrent callers wait for each other."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(self._lock_key("migrate"))))
            config.attributes["connection"] = conn
            config.attributes["schema"] = self.schema
            command.upgrade(config, "head")

    @contextmanager
    def account_lock(self, account: str) -> Iterator[None]:
        """One writer per account: a session advisory lock held for the whole run."""
        key = self._lock_key(account)
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()

    def _lock_key(self, name: str) -> int:
        return zlib.crc32(f"etl_contacts:{self.schema}:{name}".encode())

    def begin_run(
        self,
        *,
        run_id: str,
        account: str,
        started_at: datetime,
        windows: Sequence[str],
        timezone: str,
    ) -> None:
        """Record the run as running; its time zone is the one the daily views group by."""
        runs = tables.sync_runs
        with self.engine.begin() as conn:
            conn.execute(tables.sync_seen.delete().where(tables.sync_seen.c.account == account))
            statement = sa.dialects.postgresql.insert(runs).values(
                run_id=run_id,
                account=account,
                status="running",
                windows=list(windows),
                started_at=started_at,
                timezone=timezone,
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[runs.c.run_id],
                    set_={
                        "status": "running",
                        "started_at": started_at,
                        "error": None,
                        "timezone": timezone,
                    },
                )
            )

    def load(
        self,
        frames: Frames,
        *,
        run_id: str,
        account: str,
        completed: Sequence[CompletedWindow] = (),
        unchanged: Sequence[Seen] = (),
    ) -> LoadCounts:
        """One batch in one transaction: data, child rows, history, rejects, counters, state.

        `unchanged` are contacts received whose rows would not change: only remembered as seen
        (and counted unchanged). `completed` windows move their watermarks; no contact is
        deleted here: see `deletion_candidates` and `mark_deleted`.
        """
        with self.engine.begin() as conn:
            driver = _psycopg(conn)
            return self._loader.load(
                driver,
                frames,
                run_id=run_id,
                account=account,
                completed=completed,
                unchanged=unchanged,
            )

    def stored_hashes(self, account: str, contact_ids: Sequence[str]) -> dict[str, str]:
        """Content hashes of those contacts as stored (deleted ones left out)."""
        with self.engine.connect() as conn:
            driver = _psycopg(conn)
            return self._loader.stored_hashes(driver, account, contact_ids)

    def deletion_candidates(
        self, account: str, run_id: str, start: datetime, end: datetime
    ) -> list[tuple[str, datetime]]:
        """Live contacts created in [start, end) that this run has not received, as
        (contact_id, created_at), oldest first: after the run read that createdAt window
        completely, each is deleted at the source or a record the reading missed (a hole). Only
        the source can tell which, so nothing is deleted here. Ask before `finish_run`, which
        forgets what the run received."""
        with self.engine.connect() as conn:
            driver = _psycopg(conn)
            return self._loader.deletion_candidates(driver, account, run_id, start, end)

    def mark_deleted(self, account: str, run_id: str, contact_ids: Sequence[str]) -> int:
        """Soft-delete the contacts the source no longer has (`deleted_at` = now), close their
        current history version, and count them in the run's `deleted`. A contact the run has
        received since it was a candidate, or already marked, is left alone. Returns how many
        were marked. One that comes back later is made live again by `load`."""
        with self.engine.begin() as conn:
            driver = _psycopg(conn)
            return self._loader.mark_deleted(driver, account, run_id, contact_ids)

    def record_verification(
        self, *, account: str, run_id: str, day: date, start: datetime, end: datetime, deleted: int
    ) -> None:
        """The day's createdAt window [start, end) was read completely now: the contacts the run
        received from it, and the deletions it proved. Ask before `finish_run`."""
        seen = tables.sync_seen
        received = (
            sa.select(sa.func.count())
            .where(
                seen.c.run_id == run_id,
                seen.c.account == account,
                seen.c.created_at >= start,
                seen.c.created_at < end,
            )
            .scalar_subquery()
        )
        verifications = tables.day_verifications
        statement = sa.dialects.postgresql.insert(verifications).values(
            account=account,
            day=day,
            day_start=start,
            day_end=end,
            verified_at=sa.func.now(),
            contacts_seen=received,
            deletions_found=deleted,
            run_id=run_id,
        )
        with self.engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[verifications.c.account, verifications.c.day_start],
                    set_={
                        name: statement.excluded[name]
                        for name in (
                            "day",
                            "day_end",
                            "verified_at",
                            "contacts_seen",
                            "deletions_found",
                            "run_id",
                        )
                    },
                )
            )

    def verified_days(self, account: str) -> dict[date, datetime]:
        """When each local day of the account was last read completely."""
        verifications = tables.day_verifications
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(verifications.c.day, verifications.c.verified_at).where(
                    verifications.c.account == account
                )
            )
            return dict(rows.tuples().all())

    def finish_run(
        self, *, run_id: str, status: str, stats: Mapping[str, float], error: str | None
    ) -> None:
        """Close the run with its extraction counters (`RUN_COUNTERS`, among them the pipeline's
        `holes_repaired`), and `ranges_combined` when `stats` has it (else: not known)."""
        runs = tables.sync_runs
        counters = {column: int(stats.get(key, 0)) for column, key in RUN_COUNTERS.items()}
        combined = stats.get("ranges_combined")
        with self.engine.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=sa.func.now(),
                    duration_seconds=sa.extract("epoch", sa.func.now() - runs.c.started_at),
                    extract_stats=orjson.loads(orjson.dumps(dict(stats))),
                    error=error,
                    ranges_combined=None if combined is None else bool(combined),
                    **counters,
                )
            )
            conn.execute(tables.sync_seen.delete().where(tables.sync_seen.c.run_id == run_id))

    def record_failure(self, *, run_id: str, account: str, error: str) -> None:
        """Mark a run failed, creating its row when it failed before the sync began."""
        runs = tables.sync_runs
        statement = sa.dialects.postgresql.insert(runs).values(
            run_id=run_id,
            account=account,
            status="failed",
            windows=[],
            started_at=sa.func.now(),
            finished_at=sa.func.now(),
            error=error,
        )
        with self.engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[runs.c.run_id],
                    set_={
                        "status": "failed",
                        # the sync's own message, written as it failed, says more than Dagster's
                        "error": sa.func.coalesce(runs.c.error, error),
                        "finished_at": sa.func.coalesce(runs.c.finished_at, sa.func.now()),
                    },
                )
            )

    def row_counts(self, account: str) -> dict[str, int]:
        """Rows of each contact table for one account (deleted contacts included)."""
        with self.engine.connect() as conn:
            return {
                name: int(
                    conn.execute(
                        sa.select(sa.func.count()).where(
                            tables.metadata.tables[f"{DEFAULT_SCHEMA}.{name}"].c.account == account
                        )
                    ).scalar_one()
                )
                for name in tables.CONTACT_TABLES
            }

    def watermark(self, account: str, stream: str) -> datetime | None:
        state = tables.sync_state
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(state.c.watermark).where(
                    state.c.account == account, state.c.stream == stream
                )
            ).scalar_one_or_none()


def error_cause(exc: BaseException) -> str:
    """The first line of the driver's own message: SQLAlchemy's wrapper adds the statement and its
    parameters, which are noise on a terminal and may hold a contact's data."""
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
