"""One batch into PostgreSQL, in the caller's transaction: COPY into staging, then set-based SQL.

- Upsert: a row is written only when its content hash differs (unchanged = no write, no bloat)
  and the record is not older than the stored one (compared on updatedAt / lastSeenAt).
- Child rows (tags, attributes, segments) of every written contact are replaced.
- History: a new version only when a tracked field (status, agent, tags, name, email, phone)
  changed, recognised by its hash.
- Every id received goes to `sync_seen`, so a completed createdAt window can soft-delete the
  contacts the source no longer returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from etl_contacts.transform import CONTACT_COLUMNS, Frames

CHILDREN = {
    "contact_tags": ("tags", ("account", "contact_id", "tag")),
    "contact_attributes": (
        "attributes",
        ("account", "contact_id", "key", "value_text", "value_json"),
    ),
    "contact_segments": ("segments", ("account", "contact_id", "segment")),
}
REJECT_FIELDS = ("account", "contact_id", "reason", "detail", "record")
Seen = tuple[str, datetime | None]
"""A contact received but not loaded (its row would not change): its id and createdAt."""


@dataclass(frozen=True)
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0


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
    """SQL of one batch, for one schema; `load` runs it on a psycopg connection in a transaction."""

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
            self._replace_children(cur)
            self._record_history(cur)
            self._reject(cur, frames.rejects, run_id)
            self._remember_seen(cur, frames, unchanged, run_id, account)
            deleted = sum(self._complete(cur, window, run_id, account) for window in completed)
            received = len(frames.contacts) + frames.collapsed + len(unchanged)
            counts = LoadCounts(
                inserted=inserted,
                updated=updated,
                unchanged=received - inserted - updated,
                rejected=len(frames.rejects),
                deleted=deleted,
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
        # temp tables have no statistics until analyzed; without them the planner guesses
        # nested loops over thousands of rows. Only the join key: sampling `raw` and the other
        # columns took a fifth of the load's SQL time.
        cur.execute(
            "ANALYZE stage_contacts (contact_id), stage_contact_tags (contact_id), "
            "stage_contact_attributes (contact_id), stage_contact_segments (contact_id)"
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
                      AND coalesce(greatest(EXCLUDED.updated_at, EXCLUDED.last_seen_at),
                                   '-infinity')
                          >= coalesce(greatest(c.updated_at, c.last_seen_at), '-infinity')
                    RETURNING c.contact_id, (xmax = 0) AS inserted
                )
                INSERT INTO changed SELECT contact_id, inserted FROM upserted
                """
            ).format(
                contacts=self.table("contacts"), fields=_fields(CONTACT_COLUMNS), updates=updates
            )
        )
        cur.execute(
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
            "FROM changed"
        )
        inserted, updated = cur.fetchone() or (0, 0)
        return int(inserted), int(updated)

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
                                h.valid_from + interval '1 millisecond') AS valid_from,
                       s.status, s.agent_id, coalesce(tags.tags, '{{}}') AS tags,
                       s.name, s.email, s.phone_e164, s.tracked_hash,
                       h.contact_id IS NOT NULL AS supersedes
                FROM stage_contacts s
                JOIN changed USING (contact_id)
                LEFT JOIN tags USING (contact_id)
                LEFT JOIN {history} h
                  ON h.account = s.account AND h.contact_id = s.contact_id AND h.is_current
                WHERE h.tracked_hash IS DISTINCT FROM s.tracked_hash
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

    def _reject(self, cur: psycopg.Cursor, rejects: pd.DataFrame, run_id: str) -> None:
        if rejects.empty:
            return
        fields = (*REJECT_FIELDS, "run_id")
        with cur.copy(
            sql.SQL("COPY {table} ({fields}) FROM STDIN").format(
                table=self.table("contact_rejects"), fields=_fields(fields)
            )
        ) as copy:
            for row in _rows(rejects, REJECT_FIELDS):
                copy.write_row((*row, run_id))

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

    def _complete(
        self, cur: psycopg.Cursor, window: CompletedWindow, run_id: str, account: str
    ) -> int:
        deleted = 0
        if window.stream == "createdAt":
            cur.execute(
                sql.SQL(
                    """
                    UPDATE {contacts} c SET deleted_at = now()
                    FROM (
                        SELECT contact_id FROM {contacts}
                        WHERE account = %(account)s AND deleted_at IS NULL
                          AND created_at >= %(start)s AND created_at < %(end)s
                        EXCEPT
                        SELECT contact_id FROM {seen}
                        WHERE run_id = %(run_id)s AND account = %(account)s
                          AND (created_at >= %(start)s AND created_at < %(end)s
                               OR created_at IS NULL)
                    ) AS gone
                    WHERE c.account = %(account)s AND c.contact_id = gone.contact_id
                    """
                ).format(contacts=self.table("contacts"), seen=self.table("sync_seen")),
                {"account": account, "start": window.start, "end": window.end, "run_id": run_id},
            )
            deleted = cur.rowcount
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
        return deleted

    def _count(self, cur: psycopg.Cursor, counts: LoadCounts, run_id: str) -> None:
        cur.execute(
            sql.SQL(
                "UPDATE {runs} SET inserted = inserted + %s, updated = updated + %s, "
                "unchanged = unchanged + %s, rejected = rejected + %s, deleted = deleted + %s "
                "WHERE run_id = %s"
            ).format(runs=self.table("sync_runs")),
            (
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.rejected,
                counts.deleted,
                run_id,
            ),
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
