"""A fake Express-Chat for the window tests: the sandbox's in-memory store behind a `fetch`,
without HTTP, so every request is deterministic and every answer can be compared with the
store's own truth."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import orjson

from etl_contacts.sandbox import SandboxConfig, preset
from etl_contacts.sandbox.config import Sort
from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.index import UNBOUNDED
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.source.learned import Learned
from etl_contacts.source.models import Reply, Window
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window import WindowFetcher
from etl_contacts.timestamps import parse_ms, to_ms

Record = dict[str, object]
Filters = dict[str, object]
Rewrite = Callable[[Filters], Filters]

ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)
DAYS = 10
BASE = SandboxConfig(contacts=300, days=DAYS, seed=2, anchor=ANCHOR)
# With seed 2, every read of the whole history below sees deletions (asserted there).
# busy, with deletions frequent enough that the short reads below meet some
BUSY = replace(preset("busy", BASE), delete_rate=0.03)
# Every contact of the generated history; contacts created during a read (createdAt: the real
# time now) lie outside it.
HISTORY = Window("createdAt", ANCHOR - timedelta(days=DAYS + 1), ANCHOR + timedelta(days=1))
SORTS: tuple[Sort, ...] = ("lastSeenAt", "createdAt", "updatedAt", "_id")
DAY = Window("createdAt", ANCHOR - timedelta(days=3), ANCHOR - timedelta(days=2))
ACTIVE_OUTSIDE = Window("lastSeenAt", DAY.start, DAY.end, created_outside=((DAY.start, DAY.end),))


@dataclass
class Server:
    """The store behind a `fetch(filters, page)`, as the API would answer it."""

    store: ContactStore
    act: bool  # one request's worth of activity (the config's rates) before each answer
    touch: int  # contacts made active before each answer
    rewrite: Rewrite  # what the server actually reads of the filters
    bodies: list[Filters] = field(default_factory=list)
    dated: bool = True
    """Whether answers carry the server's time (a `Date` header)."""
    before: Callable[[ContactStore, int], None] | None = None
    """Done to the store before the answer to request N (from 1): a change at a chosen moment."""

    def fetch(self, filters: Filters, page: int) -> Reply:
        if self.act:
            self.store.act()
        if self.touch:
            self.store.touch(self.touch)
        if self.before is not None:
            self.before(self.store, len(self.bodies) + 1)
        self.bodies.append(filters)
        query, number = parse_body({**self.rewrite(filters), "page": page})
        ranges = sum(bounds != UNBOUNDED for bounds in (query.created, query.last_seen))
        size = self.store.config.page_size_at(len(self.bodies), ranges=ranges)
        answer = self.store.page(query, number, size=size)
        items: list[object] = [orjson.loads(blob) for blob in answer.records]
        return Reply(items, self.store.server_time() if self.dated else None, time.time())


@dataclass
class Read:
    batches: list[list[Record]]
    learned: Learned

    @property
    def ids(self) -> list[str]:
        return [str(record["_id"]) for batch in self.batches for record in batch]


def same(filters: Filters) -> Filters:
    return filters


@contextmanager
def server(
    config: SandboxConfig, *, act: bool = False, touch: int = 0, rewrite: Rewrite = same
) -> Iterator[Server]:
    """A store for one test; closed after it, so its background thread stops."""
    with closing(ContactStore(config)) as store:
        yield Server(store, act=act, touch=touch, rewrite=rewrite)


def read(server: Server, window: Window) -> Read:
    learned = Learned()
    fetcher = WindowFetcher(server.fetch, window, learned, ExtractStats())
    batches = [[_record(item) for item in batch] for batch in fetcher.batches()]
    return Read(batches, learned)


def _record(item: object) -> Record:
    assert isinstance(item, dict), f"the store serves only records, got {item!r}"
    return item


def live(store: ContactStore) -> list[Record]:
    return [orjson.loads(blob) for blob in store.snapshot().contacts]


def ms(record: Record, name: str) -> int | None:
    return parse_ms(record.get(name))


def in_window(record: Record, window: Window) -> bool:
    """What the window holds, by the store's own values (the truth the fetcher must match)."""
    value = ms(record, window.field)
    if value is None or not to_ms(window.start) <= value < to_ms(window.end):
        return False
    created = ms(record, "createdAt")
    return created is not None and not any(
        to_ms(low) <= created < to_ms(high) for low, high in window.created_outside
    )


def truth(store: ContactStore, window: Window) -> set[str]:
    return {str(r["_id"]) for r in live(store) if in_window(r, window)}
