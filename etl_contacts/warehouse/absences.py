"""The SQL of deletions proven across time, in the caller's transaction.

A live contact a complete read did not return is a candidate; one its probe did not find either
is recorded missing (`missing_contacts`), not deleted; a later run that still cannot find it
marks it deleted as of when it was first missed. Any run that receives it again makes it plain
live (`forget_found`). Sets are compared with EXCEPT, not NOT EXISTS: `sync_seen` was just filled
and has no statistics, and the planner's guess of one row chose nested loops that took 18 s for
a 20,000-contact day; a set operation is linear whatever the estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg import sql

# the live contacts of `ids` that run %(run_id)s has not received (a record rejected with a
# usable id counts as received: a contact that went bad at the source is not taken for gone)
_UNSEEN = """
    SELECT contact_id FROM {contacts}
    WHERE account = %(account)s AND contact_id = ANY(%(ids)s) AND deleted_at IS NULL
    EXCEPT
    SELECT contact_id FROM {seen} WHERE run_id = %(run_id)s AND account = %(account)s
      AND (created_at IS NULL OR created_at = ANY(ARRAY(
          SELECT created_at FROM {contacts}
          WHERE account = %(account)s AND contact_id = ANY(%(ids)s))))
"""


@dataclass(frozen=True)
class Missing:
    """A contact awaiting its second look: where to ask for it again."""

    contact_id: str
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True)
class Awaiting(Missing):
    """A contact an earlier run recorded missing: what its second look needs."""

    missed_by: str
    """The run that first missed it: the guard weighs what one run found missing together."""
    missing_since: datetime


@dataclass(frozen=True)
class Candidate(Missing):
    """A live contact a complete read did not return: where to ask for it."""

    missing_before: bool
    """An earlier run recorded it missing: this run's second look asks for it again."""


class AbsenceSql:
    def __init__(self, schema: str) -> None:
        self.schema = schema

    def _format(self, query: str) -> sql.Composed:
        return sql.SQL(query).format(
            contacts=sql.Identifier(self.schema, "contacts"),
            seen=sql.Identifier(self.schema, "sync_seen"),
            missing=sql.Identifier(self.schema, "missing_contacts"),
            history=sql.Identifier(self.schema, "contact_history"),
            runs=sql.Identifier(self.schema, "sync_runs"),
            verifications=sql.Identifier(self.schema, "day_verifications"),
        )

    def candidates(
        self, conn: psycopg.Connection, account: str, run_id: str, start: datetime, end: datetime
    ) -> list[Candidate]:
        """Live contacts created in [start, end) that the run has not received, oldest first."""
        rows = conn.execute(
            self._format(
                """
                SELECT c.contact_id, c.created_at, c.last_seen_at, m.contact_id IS NOT NULL
                FROM {contacts} c LEFT JOIN {missing} m
                  ON m.account = c.account AND m.contact_id = c.contact_id
                 AND m.run_id <> %(run_id)s
                WHERE c.account = %(account)s AND c.contact_id IN (
                    SELECT contact_id FROM {contacts}
                    WHERE account = %(account)s AND deleted_at IS NULL
                      AND created_at >= %(start)s AND created_at < %(end)s
                    EXCEPT
                    SELECT contact_id FROM {seen}
                    WHERE run_id = %(run_id)s AND account = %(account)s
                      AND created_at >= %(start)s AND created_at < %(end)s
                    EXCEPT
                    SELECT contact_id FROM {seen}
                    WHERE run_id = %(run_id)s AND account = %(account)s AND created_at IS NULL
                )
                ORDER BY c.created_at, c.contact_id
                """
            ),
            {"account": account, "run_id": run_id, "start": start, "end": end},
        )
        return [Candidate(*row) for row in rows.fetchall()]

    def stored_live(
        self, conn: psycopg.Connection, account: str, start: datetime, end: datetime
    ) -> int:
        row = conn.execute(
            self._format(
                "SELECT count(*) FROM {contacts} WHERE account = %s AND deleted_at IS NULL "
                "AND created_at >= %s AND created_at < %s"
            ),
            (account, start, end),
        ).fetchone()
        return int(row[0]) if row else 0

    def live(self, conn: psycopg.Connection, account: str) -> int:
        row = conn.execute(
            self._format(
                "SELECT count(*) FROM {contacts} WHERE account = %s AND deleted_at IS NULL"
            ),
            (account,),
        ).fetchone()
        return int(row[0]) if row else 0

    def days_before(
        self, conn: psycopg.Connection, account: str, before: datetime, timezone: str
    ) -> list[date]:
        """Local days holding live contacts created before `before`: stored because they were
        active in a loaded day, and verified by the rotation like every other day."""
        rows = conn.execute(
            self._format(
                "SELECT DISTINCT (created_at AT TIME ZONE %s)::date FROM {contacts} "
                "WHERE account = %s AND deleted_at IS NULL AND created_at < %s ORDER BY 1"
            ),
            (timezone, account, before),
        )
        return [day for (day,) in rows.fetchall()]

    def a_live_contact(self, conn: psycopg.Connection, account: str) -> datetime | None:
        """The createdAt of the live, not missing, contact synced last: what a server that
        answers at all returns when asked (the control of a confirmation)."""
        row = conn.execute(
            self._format(
                "SELECT created_at FROM {contacts} c WHERE account = %(account)s "
                "AND deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM {missing} m "
                "WHERE m.account = c.account AND m.contact_id = c.contact_id) "
                "ORDER BY last_synced_at DESC, contact_id LIMIT 1"
            ),
            {"account": account},
        ).fetchone()
        return row[0] if row else None

    def an_idle_contact(self, conn: psycopg.Connection, account: str) -> datetime | None:
        """The lastSeenAt of the live, not missing contact active longest ago: the one least
        likely to have been active since, what a server whose lastSeenAt index answers at all
        returns when asked by that millisecond."""
        row = conn.execute(
            self._format(
                "SELECT last_seen_at FROM {contacts} c WHERE account = %(account)s "
                "AND deleted_at IS NULL AND last_seen_at IS NOT NULL AND NOT EXISTS (SELECT 1 "
                "FROM {missing} m WHERE m.account = c.account AND m.contact_id = c.contact_id) "
                "ORDER BY last_seen_at, contact_id LIMIT 1"
            ),
            {"account": account},
        ).fetchone()
        return row[0] if row else None

    def least_recently_verified(
        self, conn: psycopg.Connection, account: str, besides: Sequence[datetime]
    ) -> datetime | None:
        row = conn.execute(
            self._format(
                "SELECT min(verified_at) FROM {verifications} "
                "WHERE account = %(account)s AND NOT day_start = ANY(%(besides)s)"
            ),
            {"account": account, "besides": list(besides)},
        ).fetchone()
        return row[0] if row else None

    def newest_activity(self, conn: psycopg.Connection, account: str) -> datetime | None:
        """The latest lastSeenAt stored: the present as the source's clock last showed it."""
        row = conn.execute(
            self._format("SELECT max(last_seen_at) FROM {contacts} WHERE account = %(account)s"),
            {"account": account},
        ).fetchone()
        return row[0] if row else None

    def mark_missing(
        self, conn: psycopg.Connection, account: str, run_id: str, contact_ids: Sequence[str]
    ) -> int:
        """Record those contacts missing (the live ones the run has still not received), keeping
        when a contact was first missed; returns how many are newly missing."""
        cur = conn.execute(
            self._format(
                f"""
                INSERT INTO {{missing}}
                    (account, contact_id, created_at, last_seen_at, missing_since, run_id)
                SELECT account, contact_id, created_at, last_seen_at, now(), %(run_id)s
                FROM {{contacts}}
                WHERE account = %(account)s AND contact_id IN ({_UNSEEN})
                ON CONFLICT (account, contact_id) DO NOTHING
                """
            ),
            {"account": account, "run_id": run_id, "ids": list(contact_ids)},
        )
        return cur.rowcount

    def awaiting(self, conn: psycopg.Connection, account: str, run_id: str) -> list[Awaiting]:
        """Missing contacts an earlier run recorded, still live and not received by this run."""
        rows = conn.execute(
            self._format(
                """
                SELECT m.contact_id, c.created_at, c.last_seen_at, m.run_id, m.missing_since
                FROM {missing} m JOIN {contacts} c USING (account, contact_id)
                WHERE m.account = %(account)s AND m.run_id <> %(run_id)s
                  AND c.deleted_at IS NULL AND m.contact_id IN (
                    SELECT contact_id FROM {missing} WHERE account = %(account)s
                    EXCEPT
                    SELECT contact_id FROM {seen}
                    WHERE run_id = %(run_id)s AND account = %(account)s
                  )
                ORDER BY c.created_at, m.contact_id
                """
            ),
            {"account": account, "run_id": run_id},
        )
        return [Awaiting(*row) for row in rows.fetchall()]

    def mark_deleted(
        self, conn: psycopg.Connection, account: str, run_id: str, contact_ids: Sequence[str]
    ) -> int:
        """Soft-delete those contacts, of the ones still live and unseen by the run, as of when
        each was first missed (now, for one never recorded missing); close their current
        history version; add them to the run's `deleted`. Returns how many were marked."""
        cur = conn.execute(
            self._format(
                f"""
                UPDATE {{contacts}} c
                SET deleted_at = coalesce(
                    (SELECT missing_since FROM {{missing}} m
                     WHERE m.account = c.account AND m.contact_id = c.contact_id), now())
                WHERE c.account = %(account)s AND c.contact_id IN ({_UNSEEN})
                RETURNING c.contact_id, c.deleted_at
                """
            ),
            {"account": account, "run_id": run_id, "ids": list(contact_ids)},
        )
        gone = cur.fetchall()
        ids = [contact_id for contact_id, _ in gone]
        # a version never ends before it began, even when the source's clock ran ahead
        conn.execute(
            self._format(
                "UPDATE {history} h SET valid_to = greatest(c.deleted_at, h.valid_from), "
                "is_current = false FROM {contacts} c "
                "WHERE c.account = h.account AND c.contact_id = h.contact_id "
                "AND h.account = %s AND h.contact_id = ANY(%s) AND h.is_current"
            ),
            (account, ids),
        )
        conn.execute(
            self._format("DELETE FROM {missing} WHERE account = %s AND contact_id = ANY(%s)"),
            (account, ids),
        )
        conn.execute(
            self._format("UPDATE {runs} SET deleted = deleted + %s WHERE run_id = %s"),
            (len(ids), run_id),
        )
        return len(ids)

    def forget_found(self, conn: psycopg.Connection, account: str, run_id: str) -> int:
        """Missing contacts this run received: plain live again. Returns how many."""
        cur = conn.execute(
            self._format(
                "DELETE FROM {missing} WHERE account = %(account)s AND contact_id IN ("
                "SELECT contact_id FROM {missing} WHERE account = %(account)s "
                "INTERSECT SELECT contact_id FROM {seen} "
                "WHERE run_id = %(run_id)s AND account = %(account)s)"
            ),
            {"account": account, "run_id": run_id},
        )
        return cur.rowcount

    def missing_count(self, conn: psycopg.Connection, account: str) -> int:
        row = conn.execute(
            self._format("SELECT count(*) FROM {missing} WHERE account = %s"), (account,)
        ).fetchone()
        return int(row[0]) if row else 0
