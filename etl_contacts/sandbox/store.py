"""The sandbox's account: contacts in arrays, indexed by the fields the API filters on.

Two time indexes (createdAt, lastSeenAt) answer a date range with a binary search and give the
date sort orders without sorting; the other filters are vectorized over the candidates. Records
are encoded once (ahead of time, in the background) and kept as bytes until the contact changes.
Contacts never active have NEVER for lastSeenAt (see index.py) until they first are.

Time runs on the server's clock, and tests can also simulate whole days after the anchor, where
the generated history ends (`advance_day`): weeks of nightly syncs in seconds.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import numpy as np

from etl_contacts.sandbox.config import SandboxConfig
from etl_contacts.sandbox.data import MS_PER_DAY, generate_times
from etl_contacts.sandbox.draws import STATUS, Draws
from etl_contacts.sandbox.filters import Matcher, Query
from etl_contacts.sandbox.index import NEVER, UNBOUNDED, Bounds, TimeIndex, within
from etl_contacts.sandbox.render import renderer
from etl_contacts.sandbox.traits import Traits, object_id
from etl_contacts.timestamps import format_ms, to_ms

STATUS_WEIGHTS = (0.30, 0.15, 0.10, 0.10, 0.05, 0.30)
RENDER_BLOCK = 512  # contacts encoded per turn of the background thread (one lock hold)
ORDER_CACHE = 64  # queries whose ordered matches are kept until the data changes
DAY_EVENTS = ("touch", "change", "create", "delete")  # what a simulated day can bring
ACTIONS = ("touch", "change", "delete", "move_created")  # what can be done to contacts now


@dataclass(frozen=True)
class Page:
    records: list[bytes]
    duplicate: bytes | None  # a record of the neighbouring page, when asked for


@dataclass(frozen=True)
class Snapshot:
    contacts: list[bytes]
    deleted: list[dict[str, str]]
    now_ms: int


class ContactStore:
    """Thread-safe state of one sandbox account, and its activity."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        seed, n = config.seed, config.contacts
        self._lock = threading.Lock()
        self._rng = random.Random(seed ^ 0x5EED)
        self.anchor = config.anchor_time  # once: a default anchor moves at midnight
        anchor_ms = to_ms(self.anchor)
        created, last_seen = generate_times(
            n, config.days, anchor_ms, seed, config.bulk_import_share, config.never_active_share
        )
        self._n = n
        self._traits = Traits.generate(seed, 0, n)
        self._created, self._last_seen = created, last_seen
        self._id_created = _id_times(created, anchor_ms, config.ids_minted_at_import)
        self._updated = np.where(last_seen == NEVER, created, last_seen)
        self._status = Draws(seed, STATUS, np.arange(n)).pick(STATUS_WEIGHTS).astype(np.int8)
        self._alive = np.ones(n, dtype=bool)
        self._index = {"createdAt": TimeIndex(created), "lastSeenAt": TimeIndex(last_seen)}
        self._renderer = renderer(seed)
        self._matcher = Matcher(seed)
        self._json: list[bytes | None] = [None] * n
        self._rendered = 0
        self._clock = int(last_seen.max(initial=anchor_ms - 1))
        self._extra_ms = 0  # added to the server's clock by simulated days
        self._next_day_ms = anchor_ms  # where the next simulated day begins
        self._shown_ms = 0  # the latest time a response told a client
        self._shown_lock = threading.Lock()  # a Date header waits for a simulated day, no page
        self._deleted: list[dict[str, str]] = []
        self._orders: dict[Query, tuple[int, np.ndarray]] = {}
        self._version = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        threading.Thread(target=self._prerender, daemon=True, name="sandbox-render").start()

    def close(self) -> None:
        self._stop.set()

    def wait_ready(self) -> None:
        """Until every contact is encoded: pages are then served at full speed."""
        self._ready.wait()

    def status(self) -> dict[str, object]:
        """Progress of the background encoding: benchmarks wait for `ready`."""
        with self._lock:
            live = int(self._alive.sum())
            return {"contacts": live, "rendered": self._rendered, "ready": self._ready.is_set()}

    def page(
        self, query: Query, page: int, *, size: int | None = None, duplicate: bool = False
    ) -> Page:
        """The `page`-th page (from 1) of the contacts matching `query`, in the configured sort,
        of `size` records (the configured page size unless the server says otherwise)."""
        with self._lock:
            ordered = self._ordered(query)
            size = size or self.config.page_size
            start = (page - 1) * size
            records = self._encoded(ordered[start : start + size])
            extra = None
            if duplicate and records:
                neighbour = start - 1 if start > 0 else start + size
                extra = self._encoded(ordered[neighbour : neighbour + 1]) or records[-1:]
            return Page(records, extra[0] if extra else None)

    def snapshot(self) -> Snapshot:
        """Every live contact as it stands now (in creation order), and the deletions."""
        with self._lock:
            live = np.flatnonzero(self._alive)
            return Snapshot(self._encoded(live), list(self._deleted), self._clock)

    def act(self) -> None:
        """One request's worth of activity, at the configured rates."""
        config = self.config
        with self._lock:
            for _ in range(self._events(config.activity_rate)):
                self._at_random(self._activate)
            # drawn only when set, so that an account without agent changes draws as it always did
            if config.agent_change_rate:
                for _ in range(self._events(config.agent_change_rate)):
                    self._at_random(self._change)
            for _ in range(self._events(config.create_rate)):
                self._create(self._tick())
            for _ in range(self._events(config.delete_rate)):
                self._at_random(self._delete)

    def touch(self, contacts: int) -> int:
        """Make that many distinct random live contacts active now; how many there were."""
        return self._now_to_some(self._activate, contacts)

    def change(self, contacts: int) -> int:
        """Have agents change that many distinct random live contacts now; how many there were."""
        return self._now_to_some(self._change, contacts)

    def delete(self, contacts: int) -> int:
        """Delete that many distinct random live contacts, of any age, now; how many there were."""
        return self._now_to_some(self._delete, contacts)

    def act_on(self, kind: str, spec: Mapping[str, object]) -> int:
        """`kind` (one of ACTIONS) done now to the live contacts `spec` names; how many.

        `spec`: `{"contacts": N}` N random ones, `{"ids": [...]}` those, or `{"created_on":
        "YYYY-MM-DD", "share": s}` that share (rounded up) of the ones created that UTC day (a
        customer's mass deletion). `move_created` also takes `by_ms`: how far a data fix moves
        each one's createdAt (updatedAt moves to now, lastSeenAt and the `_id` stay).
        """
        if kind not in ACTIONS:
            raise ValueError(f"unknown action {kind!r}; known: {ACTIONS}")
        by_ms = spec.get("by_ms", 0) if kind == "move_created" else 0
        if not isinstance(by_ms, int) or isinstance(by_ms, bool):
            raise ValueError(f"by_ms must be a whole number of milliseconds, not {by_ms!r}")
        events: dict[str, Callable[[int, int], None]] = {
            "touch": self._activate,
            "change": self._change,
            "delete": self._delete,
            "move_created": partial(self._move_created, by_ms=by_ms),
        }
        with self._lock:
            chosen = self._pick(spec)
            for index in chosen:
                events[kind](index, self._tick())
        return len(chosen)

    def _pick(self, spec: Mapping[str, object]) -> list[int]:
        alive = np.flatnonzero(self._alive)
        if "ids" in spec:
            ids = spec["ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError("ids must be a list of contact _ids")
            wanted = {int(i[-6:], 16) for i in ids if len(i) == 24}
            return [i for i in alive.tolist() if i in wanted]
        if "created_on" in spec:
            share = spec.get("share", 1)
            if not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ValueError("share must be a number from 0 to 1")
            start = to_ms(datetime.fromisoformat(f"{spec['created_on']}T00:00:00+00:00"))
            created = self._created[alive]
            day = alive[(created >= start) & (created < start + MS_PER_DAY)].tolist()
            return sorted(self._rng.sample(day, math.ceil(len(day) * share)))
        contacts = spec.get("contacts")
        if not isinstance(contacts, int) or isinstance(contacts, bool):
            raise ValueError(
                'name the contacts: {"contacts": N}, {"ids": [...]} or '
                '{"created_on": "YYYY-MM-DD", "share": s}'
            )
        chosen = self._rng.sample(range(len(alive)), min(max(0, contacts), len(alive)))
        return [int(alive[position]) for position in chosen]

    def now_ms(self) -> int:
        """The sandbox's time (ms): the server's clock, simulated days included."""
        with self._lock:
            return max(self._server_ms(), self._clock)

    def server_time(self) -> float:
        """The server's clock (epoch seconds) as a response tells it (Date, Retry-After).

        Simulated days move it. The latest time told is remembered: a simulated day never
        places a change before it, as a client may take it for a bound of what it has read.
        """
        now = self._server_ms()
        with self._shown_lock:
            self._shown_ms = max(self._shown_ms, now)
        return now / 1000

    def advance_day(self, activity: Mapping[str, int]) -> int:
        """Simulate the next day: `activity` says how many of each of DAY_EVENTS it brings.

        Days follow the anchor, where the generated history ends: the first is [anchor, anchor
        + 1 day), each next one the day after. Every event is a different contact (touched,
        changed or deleted: live when the day begins; created: new) at its own time inside
        the day, later than every change so far and every time a response has told: the
        indexes take each new time as the newest of all, and no client is told a time and
        then shown a change from before it. The server's clock then stands at the day's end
        (its timestamps and Date header run on from there). Returns that end: the new now.

        Raises ValueError for an unknown kind, a count that is not a whole number from 0, more
        contacts than are alive, or a day the clock has already passed: a sandbox that told its
        wall-clock time (a Date header) with an anchor in the past of it cannot go back; start
        its clock at the anchor with `clock_offset_ms`.
        """
        counts = _day_counts(activity)
        with self._lock, self._shown_lock:  # no response tells a time while the day is made
            start, end = self._next_day_ms, self._next_day_ms + MS_PER_DAY
            first = max(start, self._clock + 1, self._shown_ms + 1)
            alive = np.flatnonzero(self._alive)
            picks = counts["touch"] + counts["change"] + counts["delete"]
            if picks > len(alive):
                raise ValueError(f"the day asks for {picks} contacts; {len(alive)} are alive")
            total = sum(counts.values())
            if first >= end or total > end - first:
                raise ValueError(
                    f"the day from {format_ms(start)} cannot hold {total} events after "
                    f"{format_ms(first - 1)}, the latest time the sandbox has used or told: "
                    "give a sandbox anchored in the past clock_offset_ms = anchor - now"
                )
            times = sorted(self._rng.sample(range(first, end), total))
            kinds = [kind for kind in DAY_EVENTS for _ in range(counts[kind])]
            self._rng.shuffle(kinds)
            contacts = iter(alive[self._rng.sample(range(len(alive)), picks)].tolist())
            events = {"touch": self._activate, "change": self._change, "delete": self._delete}
            for kind, now in zip(kinds, times, strict=True):
                self._clock = now
                self._version += 1
                if kind == "create":
                    self._create(now)
                else:
                    events[kind](next(contacts), now)
            self._next_day_ms = end
            self._clock = max(self._clock, end)
            self._extra_ms += end - self._server_ms()
        return end

    def _ordered(self, query: Query) -> np.ndarray:
        """Matching live contacts in sort order; kept per query until the data next changes."""
        cached = self._orders.get(query)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        config, sort = self.config, self.config.sort
        bounded = {
            f: self._as_read(f, b)
            for f, b in (("createdAt", query.created), ("lastSeenAt", query.last_seen))
            if b != UNBOUNDED
        }
        either = len(bounded) == 2 and self.config.two_ranges == "or"
        if len(bounded) == 2 and self.config.two_ranges in bounded:  # the other one ignored
            bounded = {self.config.two_ranges: bounded[self.config.two_ranges]}
        spans = {f: self._index[f].span(b, config.end_inclusive(f)) for f, b in bounded.items()}
        field = min(spans, key=lambda f: spans[f][1] - spans[f][0]) if spans else sort
        if either or field not in self._index:  # _id, updatedAt: no index, any will do
            field = sort if sort in self._index else "createdAt"
        start, stop = (0, self._n) if either else spans.get(field, (0, self._n))
        candidates = self._index[field].order[start:stop]
        mask = self._alive[candidates]
        if either:
            mask &= np.logical_or.reduce(
                [
                    within(self._values(f)[candidates], b, config.end_inclusive(f))
                    for f, b in bounded.items()
                ]
            )
        for other, bounds in bounded.items():
            if other != field and not either:
                mask &= within(self._values(other)[candidates], bounds, config.end_inclusive(other))
        kept = self._matcher.keep(query, self._traits, self._status, candidates[mask])
        if sort == field:
            ordered = kept[::-1]
        elif sort == "_id":  # an ObjectId sorts by its second, then (one salt) its counter
            ordered = kept[np.lexsort((kept, self._id_created[kept] // 1000))]
        else:
            ordered = kept[np.lexsort((kept, -self._values(sort)[kept]))]
        if self.config.reverse_sort:
            ordered = ordered[::-1]
        if sort == "lastSeenAt":  # never-active contacts together, at the configured end
            never = self._last_seen[ordered] == NEVER
            parts = (ordered[never], ordered[~never])
            ordered = np.concatenate(parts if self.config.nulls_first else parts[::-1])
        if len(self._orders) >= ORDER_CACHE:
            self._orders.clear()
        self._orders[query] = (self._version, ordered)
        return ordered

    def _as_read(self, field: str, bounds: Bounds) -> Bounds:
        """The bounds as this server reads them: to its precision, its start maybe exclusive."""
        low, high = bounds
        precision = self.config.bound_precision_ms
        if low is not None:
            low = low - low % precision + self.config.start_exclusive(field)
        if high is not None:
            high -= high % precision
        return low, high

    def _values(self, field: str) -> np.ndarray:
        if field == "updatedAt":
            return self._updated
        return self._created if field == "createdAt" else self._last_seen

    def _encoded(self, indexes: np.ndarray) -> list[bytes]:
        missing = [i for i in indexes.tolist() if self._json[i] is None]
        if missing:
            self._render(np.array(missing, dtype=np.int64))
        return [self._json[i] for i in indexes.tolist()]

    def _render(self, indexes: np.ndarray) -> None:
        encoded = self._renderer.encode(
            self._traits.take(indexes),
            indexes,
            self._created[indexes],
            self._last_seen[indexes],
            self._updated[indexes],
            self._status[indexes],
            self._id_created[indexes],
        )
        for index, blob in zip(indexes.tolist(), encoded, strict=True):
            self._json[index] = blob
        self._rendered += len(indexes)

    def _forget(self, index: int) -> None:
        if self._json[index] is not None:
            self._json[index] = None
            self._rendered -= 1

    def _prerender(self) -> None:
        """Encode every contact in the background, so pages are served from ready-made JSON.

        Encoding is most of the cost of a first page; doing it ahead, a block per lock hold so
        requests get through, keeps the sandbox from being what a benchmark measures.
        """
        start = 0
        while not self._stop.is_set():
            with self._lock:
                if start >= self._n:
                    break
                block = np.arange(start, min(start + RENDER_BLOCK, self._n))
                todo = [i for i in block.tolist() if self._json[i] is None and self._alive[i]]
                if todo:
                    self._render(np.array(todo, dtype=np.int64))
            start += RENDER_BLOCK
        self._ready.set()

    def _events(self, rate: float) -> int:
        """How many changes of a kind this request brings: `rate` on average."""
        whole = int(rate)
        return whole + (self._rng.random() < rate - whole)

    def _server_ms(self) -> int:
        """The server's clock (ms): as configured, moved on by the simulated days."""
        return int(self.config.server_time() * 1000) + self._extra_ms

    def _tick(self) -> int:
        """The sandbox clock: the server's time in ms, strictly increasing from change to change."""
        self._clock = max(self._server_ms(), self._clock + 1)
        self._version += 1
        return self._clock

    def _random_alive(self) -> int | None:
        """A live contact, drawn with the seeded generator (None when all are gone)."""
        for _ in range(64 if self._n else 0):
            index = self._rng.randrange(self._n)
            if self._alive[index]:
                return index
        alive = np.flatnonzero(self._alive)
        return int(alive[self._rng.randrange(len(alive))]) if len(alive) else None

    def _at_random(self, event: Callable[[int, int], None]) -> None:
        """`event` to a random live contact, now (nothing when none is left)."""
        index = self._random_alive()
        if index is not None:
            event(index, self._tick())

    def _now_to_some(self, event: Callable[[int, int], None], contacts: int) -> int:
        """`event` to that many distinct random live contacts, now; how many there were."""
        with self._lock:
            alive = np.flatnonzero(self._alive)
            chosen = self._rng.sample(range(len(alive)), min(max(0, contacts), len(alive)))
            for position in chosen:
                event(int(alive[position]), self._tick())
        return len(chosen)

    def _activate(self, index: int, now: int) -> None:
        self._index["lastSeenAt"].move_to_end(index, int(self._last_seen[index]), now)
        self._last_seen[index] = self._updated[index] = now
        if self._rng.random() < 0.5:
            self._status[index] = self._rng.randrange(len(STATUS_WEIGHTS))
        self._forget(index)

    def _change(self, index: int, now: int) -> None:
        """An agent's work: another status, maybe more (Traits.edit); the contact did nothing.

        So updatedAt moves and lastSeenAt, the contact's own activity, does not: a contact never
        active stays without one, and neither time index changes.
        """
        statuses = len(STATUS_WEIGHTS)
        other = int(self._status[index]) + self._rng.randrange(1, statuses)
        self._status[index] = other % statuses
        self._traits.edit(index, self._rng)
        self._updated[index] = now
        self._forget(index)

    def _move_created(self, index: int, now: int, *, by_ms: int) -> None:
        """A data fix: createdAt moves by `by_ms`; updatedAt to now; nothing else changes."""
        old = int(self._created[index])
        self._index["createdAt"].move(index, old, old + by_ms)
        self._created[index] = old + by_ms
        self._updated[index] = now
        self._forget(index)

    def _create(self, now: int) -> None:
        index = self._n
        if index >= len(self._traits):
            extra = max(1024, index // 8)
            self._traits = self._traits.extend(
                Traits.generate(self.config.seed, index, index + extra)
            )
        self._n += 1
        self._created = np.append(self._created, now)
        self._id_created = np.append(self._id_created, now)
        self._last_seen = np.append(self._last_seen, now)
        self._updated = np.append(self._updated, now)
        self._status = np.append(self._status, np.int8(0))
        self._alive = np.append(self._alive, True)
        self._json.append(None)
        for field in ("createdAt", "lastSeenAt"):
            self._index[field].move_to_end(index, None, now)

    def _delete(self, index: int, now: int) -> None:
        self._alive[index] = False
        contact_id = object_id(self.config.seed, index, int(self._id_created[index]))
        self._deleted.append({"_id": contact_id, "deletedAt": format_ms(now)})
        self._forget(index)


def _day_counts(activity: object) -> dict[str, int]:
    """How many events of each kind a day brings, from a mapping (a request body, say)."""
    if not isinstance(activity, Mapping):
        raise ValueError(f"a day is an object of counts: {{kind: N}} for kinds {DAY_EVENTS}")
    unknown = set(activity) - set(DAY_EVENTS)
    if unknown:
        raise ValueError(f"unknown events {sorted(map(str, unknown))}; known: {DAY_EVENTS}")
    counts = {kind: activity.get(kind, 0) for kind in DAY_EVENTS}
    for kind, count in counts.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{kind} must be a whole number from 0, not {count!r}")
    return counts


def _id_times(created: np.ndarray, anchor_ms: int, at_import: bool) -> np.ndarray:
    """What each `_id` is made from (a data fix that moves createdAt keeps it): the createdAt,
    or for contacts imported in bulk (those sharing one createdAt) with `at_import`, the
    anchor, when the import ran: `_id` order is then not creation order."""
    times = created.copy()
    if at_import:
        values, counts = np.unique(created, return_counts=True)
        times[np.isin(created, values[counts > 1])] = anchor_ms
    return times
