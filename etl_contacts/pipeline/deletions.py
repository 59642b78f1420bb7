"""Deletions a team can trust: absence proven across time, outages recognized, mass deletes held.

- First look, in the run that reads a day: a stored contact the completely read createdAt window
  did not return is asked for by its own createdAt millisecond, among the contacts last seen at
  or after it was (lastSeenAt only moves forward; in a bulk import that is a few contacts where
  the whole import is pages). One the source returns was a hole (loaded, counted
  `holes_repaired`); one it does not is recorded *missing*, not deleted. A first look that
  misses a live contact (its lastSeenAt moved back) costs a second look, never a deletion. One
  an earlier run recorded missing is left to this run's second look, not asked for twice.
- An outage is not a deletion: a window that lacks more than half of its stored contacts (at
  least `SUSPECT_AT_LEAST`) is suspect, and read again after a pause; still suspect, nothing of
  it is recorded missing and its day stays unverified (the next night tries again).
- Second look, in every later run: each missing contact is asked for again, by its createdAt
  millisecond and by its lastSeenAt millisecond (a data fix may move createdAt), then among the
  contacts active since the run's read of activity ends (one moved and active since then).
  Every empty answer there is proven across time (`extract`'s `doubt_empty`), and a run in
  which the source answered empty where it had records deletes nothing. Found, it is
  loaded and live; not found, while a control (a contact the source certainly has) is
  answered by each field the probes asked by, it is deleted as of when it was first missed.
  A run whose read of activity ends more than `ACTIVITY_REACH` before the newest activity
  stored (a backfill of old days) deletes nothing. A contact never active, which nothing but
  the read of the day its createdAt now falls on finds, waits until every day has been read
  since it was first missed.
- A guard, as rsync's --max-delete: the contacts one run found missing are deleted only while
  they are at most `max_delete_percent` of the account's live contacts, unless allowed once;
  beyond it, none of them is, and the run says so. Each run's finds are weighed alone: a run
  whose deletions waited (an answer proven falsely empty) hands them to the next, and weighed
  together, two nights of ordinary deletions near the share were held from then on.
- Contacts created before the start date (stored because they were active in a loaded day) are
  verified on their days by the same first look: probes of every one of them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from etl_contacts.settings import DEFAULT_MAX_DELETE_PERCENT, DEFAULT_SUSPECT_PAUSE_SECONDS
from etl_contacts.source import (
    CREATED_AT,
    LAST_SEEN_AT,
    ClientConfig,
    ExtractStats,
    RecordsBatch,
    Window,
    extract,
)
from etl_contacts.timestamps import local_day
from etl_contacts.warehouse import CompletedWindow, Warehouse
from etl_contacts.warehouse.absences import Awaiting, Candidate, Missing

SUSPECT_AT_LEAST = 3
"""A window is suspect only when it lacks at least this many stored contacts: a day of one or
two contacts losing them all is plausible, and each still needs a second look to be deleted."""
_ONE_MS = timedelta(milliseconds=1)
ACTIVITY_REACH = timedelta(days=7)
"""How far before the newest activity stored a second look reads activity for missing contacts;
a run whose own read of activity ends earlier deletes nothing (a week of activity is what a
nightly re-reads anyway)."""
ACTIVITY_AHEAD = timedelta(days=1)  # an end past any server clock: the read reaches the present


@dataclass(frozen=True)
class DeletePolicy:
    """How much absence it takes to delete."""

    max_delete_percent: float = DEFAULT_MAX_DELETE_PERCENT
    allow_mass_delete: bool = False
    """Let this run delete beyond the guard, and accept windows that stay suspect."""
    suspect_pause_seconds: float = DEFAULT_SUSPECT_PAUSE_SECONDS

    def deletable(self, live: int) -> int:
        """The most contacts one run may find missing, of an account with `live` contacts, and
        have deleted without leave."""
        return math.floor(live * self.max_delete_percent / 100)


DEFAULT_POLICY = DeletePolicy()


def _held(gone: Sequence[Awaiting], limit: int) -> set[str]:
    """The contacts found missing by a run that found more than `limit`: a mass deletion (or a
    source that lost them) shows in the runs that read their days."""
    found_by = Counter(m.missed_by for m in gone)
    return {m.contact_id for m in gone if found_by[m.missed_by] > limit}


def is_suspect(stored: int, unseen: int) -> bool:
    """Whether a read that lacks `unseen` of `stored` contacts looks like an outage."""
    return unseen >= SUSPECT_AT_LEAST and 2 * unseen > stored


@dataclass(frozen=True)
class _Day:
    day: date
    start: datetime
    end: datetime


class Deletions:
    """The absences of one run: first looks as windows complete, second looks at its end."""

    def __init__(
        self,
        client: ClientConfig,
        warehouse: Warehouse,
        stats: ExtractStats,
        *,
        account: str,
        run_id: str,
        timezone: str,
        policy: DeletePolicy,
        batch_size: int,
        log: logging.Logger,
        active_until: datetime | None = None,
    ) -> None:
        """`active_until`: the end of the newest lastSeenAt window the run reads (None: none)."""
        self._client = client
        self._active_until = active_until
        self._warehouse = warehouse
        self._stats = stats
        self._account = account
        self._run_id = run_id
        self._timezone = timezone
        self._policy = policy
        self._batch_size = batch_size
        self._log = log
        self._verified: list[partial[None]] = []  # recorded once the looks are done
        self._read: list[datetime] = []  # the starts of the days this run read completely
        self._suspect: list[_Day] = []

    def verify(self, window: CompletedWindow) -> list[object]:
        """After a createdAt window's records are loaded: its first look. Returns the holes the
        source still has, to load with the next batch."""
        day = self._day(window.start, window.end)
        candidates = self._candidates(day)
        stored = self._stored(day)
        if is_suspect(stored, len(candidates)):
            self._log.warning(
                "%s: %d of its %d stored contacts were not returned; read again after %.0f s "
                "before anything is taken for missing",
                day.day,
                len(candidates),
                stored,
                self._policy.suspect_pause_seconds,
            )
            self._suspect.append(day)
            return []
        return self._first_look(day, candidates, holes=True)

    def finish(self, prestart: Sequence[date] = ()) -> Iterator[list[object]]:
        """The run's remaining looks. Yields records to load; the caller loads each list before
        asking for the next (the looks that follow count on them being stored)."""
        if self._suspect:
            yield from self._read_suspect_again()
        if prestart:
            yield from self._prestart(prestart)
        yield from self._second_look()
        for record in self._verified:
            record()
        self._warehouse.forget_found(self._account, self._run_id)

    def _read_suspect_again(self) -> Iterator[list[object]]:
        time.sleep(self._policy.suspect_pause_seconds)
        days, self._suspect = self._suspect, []
        windows = [Window(CREATED_AT, day.start, day.end) for day in days]
        batch: list[object] = []
        for event in extract(self._client, windows, stats=self._stats):
            if isinstance(event, RecordsBatch):
                batch.extend(event.records)
                if len(batch) >= self._batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
        for day in days:
            candidates = self._candidates(day)
            if is_suspect(self._stored(day), len(candidates)) and not self._suspicious(day):
                continue
            holes = self._first_look(day, candidates, holes=True)
            if holes:
                yield holes

    def _suspicious(self, day: _Day) -> bool:
        """A day still suspect after its second read: left unverified unless allowed."""
        if self._policy.allow_mass_delete:
            self._log.warning("%s still lacks most of its stored contacts: allowed", day.day)
            return True
        self._stats.add("suspect_days")
        self._log.warning(
            "%s: the source still does not return most of its stored contacts; nothing of it "
            "is taken for missing and the day stays unverified (the next run reads it again; "
            "if the source really lost them, run `etl-contacts sync --allow-mass-delete`)",
            day.day,
        )
        return False

    def _first_look(
        self,
        day: _Day,
        candidates: Sequence[Candidate],
        *,
        holes: bool,
        found: dict[str, dict[str, object]] | None = None,
    ) -> list[object]:
        """Probe the candidates (unless `found` already holds what a probe of them returned):
        those found are returned (holes of the read when `holes`), the rest recorded missing;
        the day is recorded verified at the end of the run."""
        if found is None:
            asked = [c for c in candidates if not c.missing_before]
            found = self._probe_seen(asked) if asked else {}
        missing = [c.contact_id for c in candidates if c.contact_id not in found]
        if missing:
            newly = self._warehouse.mark_missing(self._account, self._run_id, missing)
            self._stats.add("missing", newly)
        if found and holes:
            self._stats.add("holes_repaired", len(found))
            self._log.warning(
                "%d contacts created on %s were missed by the read and are loaded now "
                "(holes repaired)",
                len(found),
                day.day,
            )
        self._read.append(day.start)
        self._verified.append(
            partial(
                self._warehouse.record_verification,
                account=self._account,
                run_id=self._run_id,
                day=day.day,
                start=day.start,
                end=day.end,
                missing=len(missing),
                holes=len(found) if holes else 0,
            )
        )
        return list(found.values())

    def _prestart(self, days: Sequence[date]) -> Iterator[list[object]]:
        """Days before the start date: no window is read for them, every stored contact of the
        day is probed instead (one request per distinct createdAt millisecond)."""
        looks = [_Day(day, *local_day(day, self._timezone)) for day in days]
        wanted = {day: self._candidates(day) for day in looks}
        found = self._probe_seen([c for cs in wanted.values() for c in cs if not c.missing_before])
        if found:
            yield list(found.values())
        for day, candidates in wanted.items():
            unseen = [c for c in candidates if c.contact_id not in found]
            if is_suspect(self._stored(day), len(unseen)) and not self._suspicious(day):
                continue
            self._first_look(day, candidates, holes=False, found=found)

    def _second_look(self) -> Iterator[list[object]]:
        waiting = self._warehouse.awaiting_confirmation(self._account, self._run_id)
        if not waiting:
            return
        found = self._probe(
            {m.contact_id: m.created_at for m in waiting},
            {m.contact_id: m.last_seen_at for m in waiting if m.last_seen_at is not None},
        )
        unfound = [m for m in waiting if m.contact_id not in found]
        since = self._active_since(unfound) if unfound else None
        if since is not None:
            found |= self._found(
                [Window(LAST_SEEN_AT, since, datetime.now(UTC) + ACTIVITY_AHEAD)],
                {m.contact_id for m in unfound},
            )
        if found:
            self._log.info("%d missing contacts are back at the source", len(found))
            yield list(found.values())
        gone = self._beyond_data_fixes([m for m in waiting if m.contact_id not in found])
        if not gone:
            return
        if since is None:
            self._log.warning(
                "%d missing contacts not confirmed deleted: this run's read of activity ends "
                "more than %d days before the newest activity stored, and a contact whose "
                "createdAt a data fix moved is found only by its activity since; the next "
                "nightly run looks again",
                len(gone),
                ACTIVITY_REACH.days,
            )
            return
        if not self._source_answers():
            self._log.warning(
                "%d missing contacts not confirmed deleted: the source did not return a "
                "contact it has (an outage?); the next run looks again",
                len(gone),
            )
            return
        if self._false_empties():  # after the control, whose answers may show one too
            self._log.warning(
                "%d missing contacts not confirmed deleted: in this run the source answered "
                "empty where it had records (a lagging replica?), so no empty answer of it "
                "proves an absence; the next run looks again",
                len(gone),
            )
            return
        limit = self._policy.deletable(self._warehouse.live_contacts(self._account))
        held = set() if self._policy.allow_mass_delete else _held(gone, limit)
        if held:
            self._stats.add("deletions_held", len(held))
            self._log.error(
                "%d contacts are confirmed gone at the source, found missing by runs that each "
                "found more than the %s %% of the account a run may (%d): none of them deleted. "
                "If the source really lost them, let them through once: "
                "etl-contacts sync --allow-mass-delete",
                len(held),
                f"{self._policy.max_delete_percent:g}",
                limit,
            )
        deletable = [m.contact_id for m in gone if m.contact_id not in held]
        if not deletable:
            return
        deleted = self._warehouse.mark_deleted(self._account, self._run_id, deletable)
        self._stats.add("deleted", deleted)
        self._log.info("%d contacts missing since an earlier run are deleted", deleted)

    def _beyond_data_fixes(self, gone: list[Awaiting]) -> list[Awaiting]:
        """Those of `gone` that a data fix moving createdAt (not promised immutable) cannot hide.

        A contact never active is found by nothing but a read of the day its createdAt falls on
        now: neither stored millisecond nor any activity finds one a data fix moved. It is
        deleted only once every day has been read completely since it was first missed (the
        nightly rotation reads them all within ETL_CONTACTS_REVERIFY_DAYS nights); one moved to
        a day read since is found there, and loaded."""
        verified = self._warehouse.least_recently_verified(self._account, besides=self._read)
        unread = {
            m.contact_id
            for m in gone
            if m.last_seen_at is None and verified is not None and verified <= m.missing_since
        }
        if unread:
            self._log.info(
                "%d missing contacts, never active, are deleted once every day has been read "
                "again since they were missed: a data fix may have moved their createdAt to a "
                "day not read since",
                len(unread),
            )
        return [m for m in gone if m.contact_id not in unread]

    def _false_empties(self) -> bool:
        """Whether the source answered empty where it had records, anywhere in this run (a
        doubt refuted where no contact could have entered since, a listing known to hold records
        answered empty): a replica serving an empty copy behind a load balancer answers any
        request empty by chance, a probe's re-asks included."""
        return bool(self._stats.get("empty_answers_false") or self._stats.get("retry_empty"))

    def _active_since(self, unfound: Sequence[Missing]) -> datetime | None:
        """Where a second look reads activity from: a contact whose createdAt a data fix moved,
        and that was active after what this run read of activity, is found by neither of its
        stored milliseconds (lastSeenAt only moves forward). From the end of that read, or the
        earliest stored lastSeenAt when all are later; None when that lies more than
        `ACTIVITY_REACH` before the newest activity stored (a backfill of old days: a nightly run
        looks instead). The source's clock, as its data shows it, not ours."""
        if self._active_until is None:
            return None
        seen = [m.last_seen_at for m in unfound]
        since = self._active_until
        if seen and None not in seen:
            since = max(since, min(t for t in seen if t is not None))
        present = self._warehouse.newest_activity(self._account) or since
        return since if present - since <= ACTIVITY_REACH else None

    def _source_answers(self) -> bool:
        """Whether the source returns a contact it certainly has, asked now, by each field the
        probes asked by: by createdAt, and by lastSeenAt (a contact active longest ago, whose
        lastSeenAt most likely still is what was stored). An empty answer there means answers
        are empty for another reason than absence: an outage, or the index of one field
        lagging, which a control by the other field would not show."""
        moment = self._warehouse.control_moment(self._account)
        if moment is None:
            return self._policy.allow_mass_delete
        windows = [Window(CREATED_AT, moment, moment + _ONE_MS)]
        idle = self._warehouse.idle_moment(self._account)
        if idle is not None:
            windows.append(Window(LAST_SEEN_AT, idle, idle + _ONE_MS))
        return all(any(True for _ in self._records([window])) for window in windows)

    def _probe_seen(self, candidates: Sequence[Candidate]) -> dict[str, dict[str, object]]:
        """The candidates the source returns when asked for them by createdAt millisecond, among
        the contacts last seen at or after the earliest of them (all contacts of the millisecond
        when one of them was never active): one request per millisecond, unless more contacts of
        it were active since than a page holds."""
        by_moment: dict[datetime, list[Candidate]] = {}
        for candidate in candidates:
            by_moment.setdefault(candidate.created_at, []).append(candidate)
        windows = []
        for moment, group in sorted(by_moment.items()):
            seen = [c.last_seen_at for c in group]
            since = None if None in seen else min(t for t in seen if t is not None)
            windows.append(Window(CREATED_AT, moment, moment + _ONE_MS, active_since=since))
        # an empty answer here records a contact missing, never deleted: taken as it comes
        return self._found(windows, {c.contact_id for c in candidates}, doubt_empty=False)

    def _probe(
        self, created: dict[str, datetime], last_seen: dict[str, datetime]
    ) -> dict[str, dict[str, object]]:
        """The contacts the source returns when asked for them by createdAt millisecond (and
        lastSeenAt, for those given), by id: one request per distinct millisecond."""
        windows = [
            *(Window(CREATED_AT, m, m + _ONE_MS) for m in sorted(set(created.values()))),
            *(Window(LAST_SEEN_AT, m, m + _ONE_MS) for m in sorted(set(last_seen.values()))),
        ]
        return self._found(windows, created.keys() | last_seen.keys())

    def _found(
        self, windows: Sequence[Window], wanted: Set[str], *, doubt_empty: bool = True
    ) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        for record in self._records(windows, doubt_empty=doubt_empty):
            if isinstance(record, dict) and record.get("_id") in wanted:
                found[str(record["_id"])] = record
        if found:
            self._stats.add("records", len(found))
        return found

    def _records(self, windows: Sequence[Window], *, doubt_empty: bool = True) -> Iterable[object]:
        """Every record of those windows; requests and pages count in the run's stats. Each
        empty answer is proven across time (`extract`'s `doubt_empty`) unless told otherwise."""
        if not windows:
            return
        probed = ExtractStats()
        for event in extract(self._client, windows, stats=probed, doubt_empty=doubt_empty):
            if isinstance(event, RecordsBatch):
                yield from event.records
        for counter, value in probed.as_dict().items():
            if counter in ("requests", "pages") or counter.startswith(("retry_", "empty_")):
                self._stats.add(counter, int(value))
        self._stats.add("probe_requests", int(probed.get("requests")))

    def _candidates(self, day: _Day) -> list[Candidate]:
        return self._warehouse.deletion_candidates(self._account, self._run_id, day.start, day.end)

    def _stored(self, day: _Day) -> int:
        return self._warehouse.stored_live(self._account, day.start, day.end)

    def _day(self, start: datetime, end: datetime) -> _Day:
        return _Day(start.astimezone(ZoneInfo(self._timezone)).date(), start, end)
