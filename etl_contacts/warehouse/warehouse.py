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
from zoneinfo import ZoneInfo

import orjson
import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from etl_contacts.settings import DEFAULT_SCHEMA
from etl_contacts.warehouse import tables
from etl_contacts.warehouse.absences import AbsenceSql, Awaiting, Candidate
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
    "missing": "missing",
    "deletions_held": "deletions_held",
    "suspect_days": "suspect_days",
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


class LockLostError(RuntimeError):
    """The run's account lock went away with its PostgreSQL session: another run may be
    writing the account now, so this one stops before its next write."""


class Warehouse:
    def __init__(self, url: str, *, schema: str = DEFAULT_SCHEMA) -> None:
        self.schema = schema
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True).execution_options(
            schema_translate_map={DEFAULT_SCHEMA: schema}
        )
        self._loader = BatchLoader(schema)
        self._absences = AbsenceSql(schema)
        self._lock_holders: dict[str, int] = {}
        """Per account locked by this object: the backend that holds the lock."""

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
        """One writer per account: a session advisory lock held for the whole run.

        A session lock lives only as long as its connection, which can drop unseen (an idle
        timeout, a failover, a pooler): every write transaction of the account first checks
        that the backend holding the lock is still there and still holds it (`_writing`), so
        a run that lost it stops before it writes beside another."""
        key = self._lock_key(account)
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()
            self._lock_holders[account] = int(
                conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
            )
            try:
                yield
            finally:
                del self._lock_holders[account]
                try:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    conn.commit()
                except sa.exc.DBAPIError:
                    conn.invalidate()  # the session is gone, and its lock with it

    @contextmanager
    def _writing(self, account: str) -> Iterator[sa.Connection]:
        """A write transaction on `account`, refused when this object locked the account and
        its lock is no longer held by the backend that took it."""
        with self.engine.begin() as conn:
            holder = self._lock_holders.get(account)
            if holder is not None:
                key = self._lock_key(account)
                held = conn.execute(
                    sa.text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                        "AND granted AND pid = :pid AND classid = :high AND objid = :low "
                        "AND objsubid = 1)"
                    ),
                    {"pid": holder, "high": key >> 32, "low": key & 0xFFFFFFFF},
                ).scalar_one()
                if not held:
                    raise LockLostError(
                        f"the run lost its lock on account {account!r} (its PostgreSQL session "
                        "ended: an idle timeout, a failover or a transaction pooler?) and "
                        "stopped before writing; another run may hold it now: rerun after it"
                    )
            yield conn

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
        with self._writing(account) as conn:
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
        deleted here: see `deletion_candidates`, `mark_missing` and `mark_deleted`.
        """
        with self._writing(account) as conn:
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
    ) -> list[Candidate]:
        """Live contacts created in [start, end) that this run has not received, oldest first:
        after the run read that createdAt window completely, each is deleted at the source or a
        record the reading missed (a hole). Only the source can tell which, so nothing is
        deleted here. Ask before `finish_run`, which forgets what the run received."""
        with self.engine.connect() as conn:
            return self._absences.candidates(_psycopg(conn), account, run_id, start, end)

    def stored_live(self, account: str, start: datetime, end: datetime) -> int:
        """Live contacts stored as created in [start, end)."""
        with self.engine.connect() as conn:
            return self._absences.stored_live(_psycopg(conn), account, start, end)

    def live_contacts(self, account: str) -> int:
        with self.engine.connect() as conn:
            return self._absences.live(_psycopg(conn), account)

    def days_before(self, account: str, start: date, timezone: str) -> list[date]:
        """Local days before the local day `start` that hold live contacts (created before
        the start date, stored because they were active in a loaded day)."""
        before = datetime(start.year, start.month, start.day, tzinfo=ZoneInfo(timezone))
        with self.engine.connect() as conn:
            return self._absences.days_before(_psycopg(conn), account, before, timezone)

    def control_moment(self, account: str) -> datetime | None:
        """The createdAt of a contact the source certainly has (the live one synced last)."""
        with self.engine.connect() as conn:
            return self._absences.a_live_contact(_psycopg(conn), account)

    def idle_moment(self, account: str) -> datetime | None:
        """The lastSeenAt of a contact the source has, and most likely still at that moment."""
        with self.engine.connect() as conn:
            return self._absences.an_idle_contact(_psycopg(conn), account)

    def newest_activity(self, account: str) -> datetime | None:
        with self.engine.connect() as conn:
            return self._absences.newest_activity(_psycopg(conn), account)

    def least_recently_verified(
        self, account: str, *, besides: Sequence[datetime]
    ) -> datetime | None:
        """When the day read completely longest ago was read, of those not starting at one of
        `besides` (a run's, read again): every other day of the account has been read since.
        None when there is no other."""
        with self.engine.connect() as conn:
            return self._absences.least_recently_verified(_psycopg(conn), account, besides)

    def mark_missing(self, account: str, run_id: str, contact_ids: Sequence[str]) -> int:
        """First look: record missing those contacts (the live ones the run has not received),
        since now unless already missing. Nothing is deleted. Returns how many are new."""
        with self._writing(account) as conn:
            return self._absences.mark_missing(_psycopg(conn), account, run_id, contact_ids)

    def awaiting_confirmation(self, account: str, run_id: str) -> list[Awaiting]:
        """Contacts an earlier run found missing that this run has not received: its probe of
        them is the later, independent look."""
        with self.engine.connect() as conn:
            return self._absences.awaiting(_psycopg(conn), account, run_id)

    def mark_deleted(self, account: str, run_id: str, contact_ids: Sequence[str]) -> int:
        """Soft-delete the contacts the source no longer has (`deleted_at` = when first missed,
        else now), close their current history version, and count them in the run's `deleted`.
        A contact the run has received, or already marked, is left alone. Returns how many were
        marked. One that comes back later is made live again by `load`."""
        with self._writing(account) as conn:
            return self._absences.mark_deleted(_psycopg(conn), account, run_id, contact_ids)

    def forget_found(self, account: str, run_id: str) -> int:
        """Missing contacts this run received are plain live again; call before `finish_run`."""
        with self._writing(account) as conn:
            return self._absences.forget_found(_psycopg(conn), account, run_id)

    def missing_count(self, account: str) -> int:
        """Contacts missing and awaiting a later look."""
        with self.engine.connect() as conn:
            return self._absences.missing_count(_psycopg(conn), account)

    def record_verification(
        self,
        *,
        account: str,
        run_id: str,
        day: date,
        start: datetime,
        end: datetime,
        missing: int,
        holes: int,
    ) -> None:
        """The day's createdAt window [start, end) was read completely now: the contacts the run
        received from it, those it found missing, the holes its first look repaired, and those
        of its contacts the table does not hold live now (all loaded: none should be). Ask
        before `finish_run`, which empties `sync_seen`."""
        seen = tables.sync_seen
        contacts = tables.contacts
        of_the_day = (
            seen.c.run_id == run_id,
            seen.c.account == account,
            seen.c.created_at >= start,
            seen.c.created_at < end,
        )
        # an id may be received twice in a run (its day's window and the activity window)
        distinct = sa.func.count(sa.distinct(seen.c.contact_id))
        received = sa.select(distinct).where(*of_the_day).scalar_subquery()
        stored = sa.exists().where(
            contacts.c.account == seen.c.account,
            contacts.c.contact_id == seen.c.contact_id,
            contacts.c.deleted_at.is_(None),
        )
        unaccounted = sa.select(distinct).where(*of_the_day, ~stored).scalar_subquery()
        verifications = tables.day_verifications
        statement = sa.dialects.postgresql.insert(verifications).values(
            account=account,
            day=day,
            day_start=start,
            day_end=end,
            verified_at=sa.func.now(),
            contacts_seen=received,
            deletions_found=missing,
            holes_repaired=holes,
            contacts_unaccounted=unaccounted,
            run_id=run_id,
        )
        with self._writing(account) as conn:
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
                            "holes_repaired",
                            "contacts_unaccounted",
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
