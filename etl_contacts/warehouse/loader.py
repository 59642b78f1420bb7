"""One batch into PostgreSQL, in the caller's transaction: COPY into staging, then set-based SQL.

- Upsert: a row is written only when its content hash differs (unchanged = no write, no bloat)
  and the record is not older than the stored one (compared on updatedAt / lastSeenAt).
- Every record received is counted where its fate is decided, never as a remainder: inserted
  and updated from the upsert, unchanged and refused (older than the stored row) from the rows
  it left alone, rejected from the transform. The run's reconciliation adds them up.
- Child rows (tags, attributes, segments) of every written contact are replaced.
- History: a new version only when a tracked field (status, agent, tags, name, email, phone)
  changed, recognised by its hash, or when a contact marked deleted comes back.
- Rejects (malformed records, and records refused as older) are kept once per account, reason
  and content: a record fetched every night is not quarantined every night.
- Every id received goes to `sync_seen`. Deletes are not decided here: absences.py holds the
  SQL of absences proven across time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from etl_contacts.warehouse.frames import CONTACT_COLUMNS, REJECT_COLUMNS, Frames

CHILDREN = {
    "contact_tags": ("tags", ("account", "contact_id", "tag")),
    "contact_attributes": (
        "attributes",
        ("account", "contact_id", "key", "value_text", "value_json"),
    ),
    "contact_segments": ("segments", ("account", "contact_id", "segment")),
}
# a time as the transform writes it in a reject's detail (2024-05-01T10:00:00.000Z), or none
_STAMP = sql.SQL(
    "coalesce(to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'none')"
)
Seen = tuple[str, datetime | None]
"""A contact received but not loaded (its row would not change): its id and createdAt."""


@dataclass(frozen=True)
class LoadCounts:
    """What became of the records of one batch; each was counted once, where it happened, so
    the records received are exactly the sum of the five."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    """Same content as the stored row (or as the copy loaded with it): nothing written."""
    refused_older: int = 0
    """Not written because the stored row (or a copy in the same batch) is newer."""
    rejected: int = 0


@dataclass(frozen=True)
class CompletedWindow:
    """A top-level window all of whose records this run has passed to `load()`.

    `watermarks` holds the streams whose watermark this completion moves, and to where: a
    stream is completely loaded up to its watermark, and only then may the watermark move.
    """

    stream: str
    start: datetime
    end: datetime
    watermarks: Mapping[str, datetime] = field(default_factory=dict)


class BatchLoader:
    """The loader's SQL for one schema: a batch (`load`), and the reads and soft deletes around
    it. Each method runs on a psycopg connection, in the caller's transaction."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def load(
        self,
        conn: psycopg.Connection,
        frames: Frames,
        *,
        run_id: str,
        account: str,
        completed: Sequence[CompletedWindow],
        unchanged: Sequence[Seen],
    ) -> LoadCounts:
        with conn.cursor() as cur:
            self._stage(cur, frames)
            inserted, updated = self._upsert(cur)
            same = self._count_unchanged(cur)
            older = self._refuse_older(cur)
            self._replace_children(cur)
            self._record_history(cur)
            self._reject(cur, run_id)
            self._remember_seen(cur, frames, unchanged, run_id, account)
            for window in completed:
                self._move_watermarks(cur, window, account)
            counts = LoadCounts(
                inserted=inserted,
                updated=updated,
                unchanged=same + frames.collapsed + len(unchanged),
                refused_older=older + len(frames.superseded),
                rejected=len(frames.rejects),
            )
            self._count(cur, counts, run_id)
        return counts

    def _stage(self, cur: psycopg.Cursor, frames: Frames) -> None:
        contacts = self.table("contacts")
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE stage_contacts ON COMMIT DROP AS "
                "SELECT {fields} FROM {contacts} WITH NO DATA"
            ).format(fields=_fields(CONTACT_COLUMNS), contacts=contacts)
        )
        _copy(cur, "stage_contacts", CONTACT_COLUMNS, frames.contacts)
        for table, (attribute, fields) in CHILDREN.items():
            stage = f"stage_{table}"
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {fields} FROM {table} "
                    "WITH NO DATA"
                ).format(
                    stage=sql.Identifier(stage), fields=_fields(fields), table=self.table(table)
                )
            )
            _copy(cur, stage, fields, getattr(frames, attribute))
        cur.execute(
            "CREATE TEMP TABLE changed (contact_id text PRIMARY KEY, inserted boolean) "
            "ON COMMIT DROP"
        )
        # rejects of every kind meet here, so that one INSERT can skip the contents already
        # quarantined (COPY cannot skip a conflict); `position` keeps their order of arrival
        cur.execute(
            "CREATE TEMP TABLE stage_rejects (position bigint GENERATED ALWAYS AS IDENTITY, "
            "account text, contact_id text, reason text, detail text, record jsonb) "
            "ON COMMIT DROP"
        )
        _copy(cur, "stage_rejects", REJECT_COLUMNS, frames.rejects)
        _copy(cur, "stage_rejects", REJECT_COLUMNS, frames.superseded)
        # temp tables have no statistics until analyzed; without them the planner guesses
        # nested loops over thousands of rows. Only the join key: sampling `raw` and the other
        # columns took a fifth of the load's SQL time.
        staged = ("contacts", *CHILDREN)
        cur.execute(
            sql.SQL("ANALYZE {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{} (contact_id)").format(sql.Identifier(f"stage_{table}"))
                    for table in staged
                )
            )
        )

    def _upsert(self, cur: psycopg.Cursor) -> tuple[int, int]:
        updates = sql.SQL(", ").join(
            sql.SQL("{f} = EXCLUDED.{f}").format(f=sql.Identifier(f)) for f in CONTACT_COLUMNS[2:]
        )
        cur.execute(
            sql.SQL(
                """
                WITH upserted AS (
                    INSERT INTO {contacts} AS c ({fields}, first_synced_at, last_synced_at)
                    SELECT {fields}, now(), now() FROM stage_contacts
                    ON CONFLICT (account, contact_id) DO UPDATE
                    SET {updates}, last_synced_at = now(), deleted_at = NULL
                    WHERE (c.content_hash <> EXCLUDED.content_hash OR c.deleted_at IS NOT NULL)
                      AND {incoming} >= {stored}
                    RETURNING c.contact_id, (xmax = 0) AS inserted
                )
                INSERT INTO changed SELECT contact_id, inserted FROM upserted
                """
            ).format(
                contacts=self.table("contacts"),
                fields=_fields(CONTACT_COLUMNS),
                updates=updates,
                incoming=_recency("excluded"),
                stored=_recency("c"),
            )
        )
        cur.execute(
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
            "FROM changed"
        )
        inserted, updated = cur.fetchone() or (0, 0)
        return int(inserted), int(updated)

    def _count_unchanged(self, cur: psycopg.Cursor) -> int:
        """Staged rows the upsert left alone because the stored row has their content."""
        cur.execute(
            sql.SQL(
                """
                SELECT count(*) FROM stage_contacts s
                JOIN {contacts} c ON c.account = s.account AND c.contact_id = s.contact_id
                WHERE NOT EXISTS (SELECT 1 FROM changed WHERE changed.contact_id = s.contact_id)
                  AND c.content_hash = s.content_hash AND c.deleted_at IS NULL
                """
            ).format(contacts=self.table("contacts"))
        )
        (unchanged,) = cur.fetchone() or (0,)
        return int(unchanged)

    def _refuse_older(self, cur: psycopg.Cursor) -> int:
        """Staged rows the upsert left alone because the stored row is newer (and differs): each
        goes to the rejects, whole, with both times, so the refusal can be checked."""
        cur.execute(
            sql.SQL(
                """
                INSERT INTO stage_rejects (account, contact_id, reason, detail, record)
                SELECT s.account, s.contact_id, 'older_than_stored',
                       format('updatedAt %s, lastSeenAt %s: older than the stored row '
                              '(updatedAt %s, lastSeenAt %s)', {times}),
                       s.raw
                FROM stage_contacts s
                JOIN {contacts} c ON c.account = s.account AND c.contact_id = s.contact_id
                WHERE NOT EXISTS (SELECT 1 FROM changed WHERE changed.contact_id = s.contact_id)
                  AND NOT (c.content_hash = s.content_hash AND c.deleted_at IS NULL)
                  AND {incoming} < {stored}
                """
            ).format(
                contacts=self.table("contacts"),
                times=sql.SQL(", ").join(
                    _STAMP.format(sql.Identifier(*column))
                    for column in (
                        ("s", "updated_at"),
                        ("s", "last_seen_at"),
                        ("c", "updated_at"),
                        ("c", "last_seen_at"),
                    )
                ),
                incoming=_recency("s"),
                stored=_recency("c"),
            )
        )
        return cur.rowcount

    def _replace_children(self, cur: psycopg.Cursor) -> None:
        for table, (_, fields) in CHILDREN.items():
            cur.execute(
                sql.SQL(
                    "DELETE FROM {table} t USING stage_contacts s JOIN changed USING (contact_id) "
                    "WHERE NOT changed.inserted "  # a contact new to the table has no children
                    "AND t.account = s.account AND t.contact_id = s.contact_id"
                ).format(table=self.table(table))
            )
            cur.execute(
                sql.SQL(
                    "INSERT INTO {table} ({fields}) SELECT {fields} FROM {stage} "
                    "WHERE contact_id IN (SELECT contact_id FROM changed)"
                ).format(
                    table=self.table(table),
                    fields=_fields(fields),
                    stage=sql.Identifier(f"stage_{table}"),
                )
            )

    def _record_history(self, cur: psycopg.Cursor) -> None:
        """A new version for each written contact whose tracked fields differ from its current
        version, or that has none: new, or marked deleted (its version closed) and back.

        A version starts at the source's time of the change, but never before the contact's
        latest version started or ended: the primary key needs it later than the one before
        (a contact back unchanged has the same source time), and versions must not overlap.
        """
        history = self.table("contact_history")
        cur.execute(
            sql.SQL(
                """
                CREATE TEMP TABLE new_versions ON COMMIT DROP AS
                WITH tags AS (
                    SELECT contact_id, array_agg(tag ORDER BY tag) AS tags
                    FROM stage_contact_tags GROUP BY contact_id
                )
                SELECT s.account, s.contact_id,
                       greatest(coalesce(s.updated_at, s.last_seen_at, s.created_at),
                                h.valid_from + interval '1 millisecond', h.valid_to) AS valid_from,
                       s.status, s.agent_id, coalesce(tags.tags, '{{}}') AS tags,
                       s.name, s.email, s.phone_e164, s.tracked_hash,
                       coalesce(h.is_current, false) AS supersedes
                FROM stage_contacts s
                JOIN changed USING (contact_id)
                LEFT JOIN tags USING (contact_id)
                LEFT JOIN LATERAL (
                    SELECT valid_from, valid_to, is_current, tracked_hash FROM {history} h
                    WHERE h.account = s.account AND h.contact_id = s.contact_id
                    ORDER BY h.valid_from DESC LIMIT 1
                ) AS h ON true
                WHERE (h.is_current AND h.tracked_hash = s.tracked_hash) IS NOT TRUE
                """
            ).format(history=history)
        )
        cur.execute(
            sql.SQL(
                "UPDATE {history} h SET valid_to = n.valid_from, is_current = false "
                "FROM new_versions n WHERE n.supersedes AND h.account = n.account "
                "AND h.contact_id = n.contact_id AND h.is_current"
            ).format(history=history)
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {history} (account, contact_id, valid_from, valid_to, is_current, "
                "status, agent_id, tags, name, email, phone_e164, tracked_hash) "
                "SELECT account, contact_id, valid_from, NULL, true, status, agent_id, tags, "
                "name, email, phone_e164, tracked_hash FROM new_versions"
            ).format(history=history)
        )

    def _reject(self, cur: psycopg.Cursor, run_id: str) -> None:
        """The staged rejects whose content is not quarantined yet for the account and reason.

        The digest is of the record's jsonb text, PostgreSQL's canonical form of it (keys sorted,
        spacing normalized), so the same content always gives the same digest; migration 0003
        computed the existing rows' digests with this expression.
        """
        cur.execute(
            sql.SQL(
                """
                INSERT INTO {rejects}
                    (account, run_id, contact_id, reason, detail, record, record_digest)
                SELECT account, %s, contact_id, reason, detail, record,
                       encode(sha256(convert_to(record::text, 'UTF8')), 'hex')
                FROM stage_rejects ORDER BY position
                ON CONFLICT (account, reason, record_digest) DO NOTHING
                """
            ).format(rejects=self.table("contact_rejects")),
            (run_id,),
        )

    def stored_hashes(
        self, conn: psycopg.Connection, account: str, contact_ids: Sequence[str]
    ) -> dict[str, str]:
        """Content hashes of those contacts as stored, for the ones not marked deleted."""
        rows = conn.execute(
            sql.SQL(
                "SELECT contact_id, content_hash FROM {contacts} "
                "WHERE account = %s AND contact_id = ANY(%s) AND deleted_at IS NULL"
            ).format(contacts=self.table("contacts")),
            (account, list(contact_ids)),
        )
        return dict(rows.fetchall())

    def _remember_seen(
        self,
        cur: psycopg.Cursor,
        frames: Frames,
        unchanged: Sequence[Seen],
        run_id: str,
        account: str,
    ) -> None:
        seen = zip(frames.contacts["contact_id"], frames.contacts["created_at"], strict=True)
        rejected = ((i, None) for i in frames.rejects["contact_id"].dropna())
        with cur.copy(
            sql.SQL("COPY {table} (run_id, account, contact_id, created_at) FROM STDIN").format(
                table=self.table("sync_seen")
            )
        ) as copy:
            for contact_id, created_at in [*seen, *rejected, *unchanged]:
                copy.write_row((run_id, account, contact_id, created_at))

    def _move_watermarks(self, cur: psycopg.Cursor, window: CompletedWindow, account: str) -> None:
        for stream, watermark in window.watermarks.items():
            cur.execute(
                sql.SQL(
                    "INSERT INTO {state} (account, stream, watermark, updated_at) "
                    "VALUES (%s, %s, %s, now()) ON CONFLICT (account, stream) DO UPDATE "
                    "SET watermark = greatest({state}.watermark, EXCLUDED.watermark), "
                    "updated_at = now()"
                ).format(state=self.table("sync_state")),
                (account, stream, watermark),
            )

    def _count(self, cur: psycopg.Cursor, counts: LoadCounts, run_id: str) -> None:
        cur.execute(
            sql.SQL(
                "UPDATE {runs} SET inserted = inserted + %s, updated = updated + %s, "
                "unchanged = unchanged + %s, refused_older = refused_older + %s, "
                "rejected = rejected + %s WHERE run_id = %s"
            ).format(runs=self.table("sync_runs")),
            (
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.refused_older,
                counts.rejected,
                run_id,
            ),
        )


def _recency(table: str) -> sql.Composed:
    """How recent a row is, as the upsert compares it: its later of updatedAt and lastSeenAt,
    a row with neither being the oldest."""
    return sql.SQL("coalesce(greatest({t}.updated_at, {t}.last_seen_at), '-infinity')").format(
        t=sql.Identifier(table)
    )


def _fields(fields: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(f) for f in fields)


def _rows(frame: pd.DataFrame, fields: Sequence[str]) -> Iterator[tuple[object, ...]]:
    """Rows for COPY, with pandas' missing values (NaN, NaT, NA) as NULL."""
    values = frame[list(fields)].astype(object)
    return values.where(values.notna(), None).itertuples(index=False, name=None)


def _copy(cur: psycopg.Cursor, table: str, fields: Sequence[str], frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    with cur.copy(
        sql.SQL("COPY {table} ({fields}) FROM STDIN").format(
            table=sql.Identifier(table), fields=_fields(fields)
        )
    ) as copy:
        for row in _rows(frame, fields):
            copy.write_row(row)
