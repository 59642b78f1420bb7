"""Each strategy of the window reader alone, on the data it is for, while that data moves.

`test_windows` proves the fetcher, which picks a strategy from what the answers show; here each
strategy is called directly, against the sandbox's store without HTTP, so a test fails when the
one strategy it names hands over less (or more) than its window holds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from window_server import BASE, BUSY, HISTORY, Server, live, ms, server, truth

from etl_contacts.sandbox.filters import parse_body
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.source.errors import SortChangedError
from etl_contacts.source.learned import Learned, Order
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, Reply, Window
from etl_contacts.source.query import GRANULE_MS, Span, floor_granule
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window.activity import by_activity
from etl_contacts.source.window.keyset import keyset
from etl_contacts.source.window.reader import Fetch, Reader, Reading
from etl_contacts.source.window.slice import read_second
from etl_contacts.source.window.split import split
from etl_contacts.source.window.update import by_update

Strategy = Callable[[Reader], Reading]


def handed_ids(api: Server, strategy: Strategy) -> list[str]:
    return ids_read(Reader(api.fetch, HISTORY, Learned(), ExtractStats()), strategy)


def ids_read(reader: Reader, strategy: Strategy | None = None) -> list[str]:
    """The ids a strategy hands over; by default `by_activity` from the window's page 1."""
    batches = (strategy or from_page_1)(reader)
    return [str(r["_id"]) for batch in batches for r in batch if isinstance(r, dict)]


def from_page_1(read: Reader) -> Reading:
    """`by_activity` as the fetcher starts it: after the window's first page."""
    clock = read.learned.server_now_at_least()
    first = (yield from read.ask(read.own, 1)).items
    yield from by_activity(read, read.own, first, clock)


def read_by_update(fetch: Fetch) -> list[str]:
    """The ids `by_update` hands over for the whole history, from its own page 1."""
    reader = Reader(fetch, HISTORY, Learned(), ExtractStats())
    return ids_read(reader, lambda read: by_update(read, read.own, None))


def served(api: Server, pages: int) -> list[str]:
    """The ids of the whole history's listing as the server pages it now, pages 1 to `pages`."""
    own = Reader(api.fetch, HISTORY, Learned(), ExtractStats()).own
    return [
        str(r["_id"])
        for page in range(1, pages + 1)
        for r in api.fetch(own.body(), page).items
        if isinstance(r, dict)
    ]


def assert_exact(api: Server, ids: list[str]) -> None:
    """Every live contact of the window once; nothing else but contacts deleted meanwhile."""
    deleted = {entry["_id"] for entry in api.store.snapshot().deleted}
    expected = truth(api.store, HISTORY)
    assert len(ids) == len(set(ids)), "an _id was handed over twice"
    assert expected - set(ids) == set(), "live contacts of the window were missed"
    assert set(ids) - expected <= deleted, "records outside the window were handed over"


@pytest.mark.parametrize("descending", [True, False], ids=["newest-first", "oldest-first"])
def test_keyset_reads_a_createdat_order_while_contacts_come_and_go(descending: bool) -> None:
    """Bulk imports share a createdAt millisecond across page boundaries: the cursor keeps the
    last second it saw, and a second holding more than a page is sliced."""
    config = replace(BUSY, sort="createdAt", reverse_sort=not descending, page_size=7)
    order = Order(CREATED_AT, descending)
    with server(config, act=True) as api:
        ids = handed_ids(api, lambda read: keyset(read, read.own, order, None))
        assert_exact(api, ids)
        assert api.store.snapshot().deleted, "the read must meet deletions"


@pytest.mark.parametrize("nulls_first", [False, True], ids=["nulls-last", "nulls-first"])
def test_by_activity_catches_contacts_that_become_active_during_the_read(
    nulls_first: bool,
) -> None:
    """A contact becomes active before every answer, jumping above the cursor: only the
    catch-up passes find those the keyset had not reached."""
    config = replace(BASE, page_size=7, never_active_share=0.05, nulls_first=nulls_first)

    with server(config, touch=1) as api:
        ids = handed_ids(api, from_page_1)
        assert_exact(api, ids)
        assert len(ids) == 300


def test_by_update_reads_an_updatedat_order_while_contacts_come_and_go() -> None:
    """Every change moves a contact to page 1 and every deletion moves those after it up a
    place: page numbers alone, passed over until a pass finds nothing new, lose none."""
    config = replace(BUSY, sort="updatedAt", page_size=7, never_active_share=0.05)
    with server(config, act=True) as api:
        ids = read_by_update(api.fetch)
        assert_exact(api, ids)
        assert api.store.snapshot().deleted, "the read must meet deletions"


@pytest.mark.parametrize("page", [2, 42], ids=["early", "before-the-last-page"])
def test_by_update_finds_the_record_a_deletion_moved_onto_a_page_already_read(page: int) -> None:
    """Deleting the first contact of a page once it was read moves the first record of the
    next page onto it: the first pass skips that record, and only a second pass finds it, on
    a page before the one the first pass ended on."""
    config = replace(BASE, sort="updatedAt", page_size=7)
    with server(config) as api:
        own = Reader(api.fetch, HISTORY, Learned(), ExtractStats()).own
        assert api.fetch(own.body(), 43).items and not api.fetch(own.body(), 44).items
        victim, skipped = (api.fetch(own.body(), number).items[0] for number in (page, page + 1))
        assert isinstance(victim, dict) and isinstance(skipped, dict)
        requests = 0

        def fetch(filters: dict[str, object], number: int) -> Reply:
            nonlocal requests
            requests += 1
            if requests == page + 1:  # the first pass asks the next page
                api.store.act_on("delete", {"ids": [victim["_id"]]})
            return api.fetch(filters, number)

        ids = read_by_update(fetch)
        assert_exact(api, ids)
        assert skipped["_id"] in ids


def test_by_update_finds_a_contact_changed_during_both_passes_before_each_reached_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The least recently changed contact is changed after the first pass's page 1, and a page
    of contacts that pass read is changed after it, so it waits on page 2; it is changed again
    after the second pass's page 1. Neither pass finds it, the second finds nothing new and no
    deletion: only the read of the top after it does."""
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    config = replace(BASE, sort="updatedAt", page_size=7)
    with server(config) as api:
        newest_first = sorted(live(api.store), key=lambda r: -(ms(r, "updatedAt") or 0))
        mover = str(newest_first[-1]["_id"])
        page_1 = [str(r["_id"]) for r in newest_first[:7]]
        pages_1 = 0

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal pages_1
            clock[0] += 1  # a second per request: each change lands in a second of its own
            pages_1 += page == 1
            if page == 2 and pages_1 == 1:  # the first pass, past page 1
                api.store.act_on("change", {"ids": [mover]})
                clock[0] += 1
                api.store.act_on("change", {"ids": page_1})
            if page == 2 and pages_1 == 2:  # the second pass, past page 1
                api.store.act_on("change", {"ids": [mover]})
            return api.fetch(filters, page)

        ids = read_by_update(fetch)
        assert pages_1 > 2, "no read of the top: the test proves nothing"
        assert_exact(api, ids)
        assert mover in ids


def test_by_update_finds_a_record_a_deletion_hid_from_two_passes_in_a_row() -> None:
    """A deletion in the first pass moves the first record of page 6 onto page 5; in the
    second, a change moves it back and another deletion onto page 5 again. The second pass
    finds nothing new, but the listing shrank while it was read: a third pass finds it."""
    config = replace(BASE, sort="updatedAt", page_size=7)
    with server(config) as api:
        listing = served(api, 44)
        hidden, first, second, last = (listing[i] for i in (35, 0, 1, -1))
        passes = 0

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal passes
            passes += page == 1
            if page == 6 and passes in (1, 2):  # `hidden` moves onto page 5
                api.store.act_on("delete", {"ids": [first if passes == 1 else second]})
            if page == 1 and passes == 2:  # `hidden` back to page 6
                api.store.act_on("change", {"ids": [last]})
            return api.fetch(filters, page)

        ids = read_by_update(fetch)
        assert_exact(api, ids)
        assert hidden in ids


def test_by_update_finds_a_record_a_deletion_moved_and_an_answer_then_left_out() -> None:
    """The second pass would find the record a deletion hid from the first, but its one answer
    holding it leaves it out (a page one short): no proof of the listing's length, so a third
    pass reads it."""
    config = replace(BASE, sort="updatedAt", page_size=7)
    with server(config) as api:
        listing = served(api, 44)
        hidden, victim = (listing[i] for i in (35, 0))
        passes = 0

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal passes
            passes += page == 1
            if passes == 1 and page == 6:
                api.store.act_on("delete", {"ids": [victim]})
            reply = api.fetch(filters, page)
            if passes == 2 and page == 5:
                kept = [r for r in reply.items if isinstance(r, dict) and r["_id"] != hidden]
                return Reply(list(kept), reply.server_time, reply.received_at)
            return reply

        ids = read_by_update(fetch)
        assert_exact(api, ids)
        assert hidden in ids


def test_by_update_reads_on_when_the_page_size_shrinks_between_passes() -> None:
    """The first pass ends on page 44 of pages of 7; from then on pages hold 3, and page 44
    is no longer the end: the second pass reads to an empty page, and finds the record a
    deletion moved behind the first."""
    config = replace(BASE, sort="updatedAt", page_size=7, page_size_later=3, page_size_after=44)
    with server(config) as api:
        listing = served(api, 43)
        api.bodies.clear()  # the page size changes after the 44th request from here
        hidden, victim = (listing[i] for i in (7 * 30, 0))
        requests = 0

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal requests
            requests += 1
            if requests == 31:  # the first pass asks page 31
                api.store.act_on("delete", {"ids": [victim]})
            return api.fetch(filters, page)

        ids = read_by_update(fetch)
        assert requests > 44 + 44, "the second pass stopped where the first ended"
        assert_exact(api, ids)
        assert hidden in ids


@pytest.mark.parametrize(
    ("touch", "window"),
    [(2, HISTORY), (0, replace(HISTORY, end=datetime(2100, 1, 1, tzinfo=UTC)))],
    ids=["two-changes-a-request", "open-window-contacts-created"],
)
def test_by_update_reads_a_listing_busier_than_a_change_a_page(touch: int, window: Window) -> None:
    """Two changes before each answer push two records of the page just read onto the next
    (newer than the end of the page before: no contradiction of the order); contacts created
    during every pass of a listing still open are new to each pass after it (changed since the
    pass before began: no sign of a deletion). Neither keeps the read from ending."""
    config = replace(BASE, sort="updatedAt", page_size=7, create_rate=0.1)
    with server(config, act=not touch, touch=touch) as api:
        reader = Reader(api.fetch, window, Learned(), ExtractStats())
        ids = ids_read(reader, lambda read: by_update(read, read.own, None))
        expected = truth(api.store, window)
        assert len(ids) == len(set(ids))
        assert expected - set(ids) == set()


@pytest.mark.parametrize("swapped", [False, True], ids=["oldest-first", "pages-swapped"])
def test_by_update_reads_no_listing_in_another_order(swapped: bool) -> None:
    """Page numbers are complete only in the order a change moves a record to page 1: an
    answer sorted otherwise, or a page newer than the end of the page before, is asked again
    and then raises, for the window to be split."""
    config = replace(BASE, sort="updatedAt", reverse_sort=not swapped, page_size=7)
    with server(config) as api:

        def fetch(filters: dict[str, object], page: int) -> Reply:
            return api.fetch(filters, {1: 2, 2: 1}.get(page, page) if swapped else page)

        reader = Reader(fetch, HISTORY, Learned(), ExtractStats())
        with pytest.raises(SortChangedError):
            ids_read(reader, lambda read: by_update(read, read.own, None))
        assert reader.stats.get("pages_asked_again") == 1


@pytest.mark.parametrize("later", [13, 35])
def test_split_reads_any_order_while_the_page_size_changes(later: int) -> None:
    """Sorted by `_id`, no range follows the order: parts are cut until page 1 holds one whole.
    A page shorter than the size learned so far is not taken for a whole part."""
    config = replace(BUSY, sort="_id", page_size=20, page_size_later=later, page_size_after=8)
    with server(config, act=True) as api:
        ids = handed_ids(api, lambda read: split(read, read.own, None))
        assert_exact(api, ids)
        assert len(api.bodies) > 8, "the size changed after the read: the test proves nothing"


def test_a_second_is_paged_again_when_a_deletion_shifts_it_during_the_read() -> None:
    """A bulk import fills more than a page of one second. Deleting a contact of page 1 after
    it was read moves the first record of page 2 onto page 1: the first pass misses it, and
    the second pass finds it."""
    config = replace(BASE, page_size=7)
    with closing(ContactStore(config)) as store:
        created = [ms(r, "createdAt") or 0 for r in live(store)]
    second = floor_granule(max(set(created), key=created.count))
    assert sum(floor_granule(c) == second for c in created) > 7, "no second holds two pages"
    with server(config) as api:
        exact = Reader(api.fetch, HISTORY, Learned(), ExtractStats()).own.narrow(
            CREATED_AT, Span(second, second + GRANULE_MS)
        )
        victim = api.fetch(exact.body(), 1).items[0]
        assert isinstance(victim, dict)

        def delete_after_page_1(store: ContactStore, request: int) -> None:
            if request == 3:  # the answer to page 2 of the first pass (request 1 found victim)
                store.act_on("delete", {"ids": [victim["_id"]]})

        api.before = delete_after_page_1
        ids = handed_ids(api, lambda read: read_second(read, read.own, CREATED_AT, second))
        expected = {
            str(r["_id"])
            for r in live(api.store)
            if floor_granule(ms(r, CREATED_AT) or 0) == second
        }
    assert len(ids) == len(set(ids))
    assert expected - set(ids) == set(), "a record shifted onto a page already read was missed"
    assert victim["_id"] in ids, "the victim was read before it was deleted"


@pytest.mark.parametrize("dated", [True, False], ids=["date-header", "no-date-header"])
def test_a_second_already_handed_is_paged_twice_all_the_same(dated: bool) -> None:
    """The keyset hands page 1 of a bulk second before slicing it, so the slice's first pass may
    meet nothing new even though a deletion shifted a record onto its page 1 behind it: a
    second pass finds that record, whether or not the server says its time."""
    with closing(ContactStore(BASE)) as store:
        created = Counter(floor_granule(ms(r, "createdAt") or 0) for r in live(store))
    second, holds = created.most_common(1)[0]
    config = replace(BASE, page_size=holds - 1)  # the second fills one page, and one more record
    with server(config) as api:
        api.dated = dated
        reader = Reader(api.fetch, HISTORY, Learned(), ExtractStats())
        exact = reader.own.narrow(CREATED_AT, Span(second, second + GRANULE_MS))
        earlier = [str(r["_id"]) for r in api.fetch(exact.body(), 1).items if isinstance(r, dict)]
        for _ in reader.ask(exact, 1):  # what the keyset handed before it sliced
            pass
        asked = len(api.bodies)

        def delete_before_page_2(store: ContactStore, request: int) -> None:
            if request == asked + 2:
                store.act_on("delete", {"ids": [earlier[0]]})

        api.before = delete_before_page_2
        batches = read_second(reader, reader.own, CREATED_AT, second)
        ids = [str(r["_id"]) for batch in batches for r in batch if isinstance(r, dict)]
        expected = {
            str(r["_id"])
            for r in live(api.store)
            if floor_granule(ms(r, CREATED_AT) or 0) == second
        }
    assert expected - set(earlier) - set(ids) == set(), "the record shifted onto page 1 was missed"


def test_a_contact_active_again_during_a_catch_up_pass_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catch-up pass of several answers is not one snapshot: a contact made active during the
    keyset (above its cursor) and again after the catch-up's page 1 (above that cursor too) is
    in no answer of the pass, which finds nothing new. Only a pass of one answer proves that
    nothing is left; another pass, over what changed since this one began, finds it. (The
    window is still open, so no count of the listing can tell either.)"""
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    config = replace(BASE, page_size=7, never_active_share=0.0)
    window = replace(HISTORY, end=datetime(2100, 1, 1, tzinfo=UTC))
    with server(config) as api:
        by_last_seen = sorted(live(api.store), key=lambda r: ms(r, LAST_SEEN_AT) or 0)
        mover = str(by_last_seen[0]["_id"])  # the keyset reaches it last
        seen_first = [str(r["_id"]) for r in by_last_seen[-10:]]  # on its first page
        catch_up_answers = 0

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal catch_up_answers
            clock[0] += 1  # a second per request: each change lands in a second of its own
            if len(api.bodies) == 3:
                api.store.act_on("touch", {"ids": [mover]})
                api.store.act_on("touch", {"ids": seen_first})  # fill the catch-up's page 1
            if catch_up_answers == 1:  # after the catch-up's page 1
                api.store.act_on("touch", {"ids": [mover]})
            reply = api.fetch(filters, page)
            top = reply.items[0] if reply.items else {}
            on_top = isinstance(top, dict) and top.get("_id") in seen_first
            catch_up_answers += catch_up_answers > 0 or (len(api.bodies) > 4 and on_top)
            return reply

        ids = ids_read(Reader(fetch, window, Learned(), ExtractStats()))
        assert catch_up_answers > 2, "the catch-up took one answer: the test proves nothing"
        assert_exact(api, ids)
        assert mover in ids


def test_a_never_active_contact_changed_by_an_agent_proves_nothing_in_an_updatedat_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sorted by updatedAt, an inbox looks sorted by lastSeenAt with never-active contacts last
    while nobody changes one. An agent's change puts them on top: a catch-up page 1 of them
    says nothing of the contact made active during the keyset, which only the range's own
    pages find."""
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    config = replace(BASE, sort="updatedAt", page_size=7, never_active_share=0.1, contacts=120)
    window = replace(HISTORY, end=datetime(2100, 1, 1, tzinfo=UTC))
    with server(config) as api:
        rows = live(api.store)
        active = sorted(
            (r for r in rows if r.get(LAST_SEEN_AT)), key=lambda r: ms(r, LAST_SEEN_AT) or 0
        )
        never = [str(r["_id"]) for r in rows if not r.get(LAST_SEEN_AT)]
        for record in active:  # each seen after every never-active one was made
            clock[0] += 1
            api.store.act_on("touch", {"ids": [str(record["_id"])]})
        mover = str(active[0]["_id"])  # the keyset reaches it last
        tail_read = changed = False

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal tail_read, changed
            clock[0] += 1
            if len(api.bodies) == 3:
                api.store.act_on("touch", {"ids": [mover]})
            tail_read = tail_read or (LAST_SEEN_AT not in filters and page > 1)
            if page == 1 and tail_read and not changed:  # the catch-up's page 1
                changed = api.store.act_on("change", {"ids": never[:8]}) == 8
            return api.fetch(filters, page)

        ids = ids_read(Reader(fetch, window, Learned(), ExtractStats()))
        assert changed, "no agent changed a never-active contact: the test proves nothing"
        assert_exact(api, ids)
        assert mover in ids


def _tail_reader(fetch: Fetch, window: Window = HISTORY) -> Reader:
    """A reader of a run that has ruled out an order by updatedAt (as the run's first windows
    do on an inbox): the tail's pages are asked once each, and no listing proves their place."""
    learned = Learned()
    learned.learn_not_by_update()
    return Reader(fetch, window, learned, ExtractStats())


def _tail_place(api: Server, window: Window = HISTORY) -> tuple[int, int]:
    """The window's active contacts and all of them, as the store holds them now."""
    inside = [r for r in live(api.store) if str(r["_id"]) in truth(api.store, window)]
    return sum(1 for r in inside if r.get(LAST_SEEN_AT)), len(inside)


def test_a_tail_read_whole_in_one_short_page_is_read_once() -> None:
    """A past window whose never-active contacts end on the page where the active ones do:
    that page, then the empty one after it, and no second pass (nothing could have moved onto
    the page while it was read)."""
    config = replace(BASE, page_size=20, never_active_share=0.05, contacts=275)
    with server(config) as api:
        active, listed = _tail_place(api)
        page = active // 20 + 1
        assert listed < page * 20, "the tail spans two pages: the test proves nothing"
        tail: list[int] = []

        def fetch(filters: dict[str, object], number: int) -> Reply:
            if LAST_SEEN_AT not in filters and number > 1:
                tail.append(number)
            return api.fetch(filters, number)

        ids = ids_read(_tail_reader(fetch))
        assert_exact(api, ids)
        assert tail == [page, page + 1]


@pytest.mark.parametrize("shrunk", [True, False], ids=["page-size-shrunk", "page-full"])
def test_a_deletion_between_the_tails_page_and_the_empty_one_is_caught(shrunk: bool) -> None:
    """Deletions between the tail's page and the empty page after it move the records that
    followed that page onto it: the empty page looks like the end. A page the size learned
    calls full, or one whose first never-active contact stands elsewhere than that size places
    it (the server's pages shrank to 19), may have had records after it: read again."""
    config = replace(BASE, page_size=20, never_active_share=0.1, contacts=125)
    with server(config) as api:
        active, listed = _tail_place(api)
        page = active // 20 + 1
        size = -(-(active + 1) // page) if shrunk else 20
        after = listed - page * size  # records after the tail's page, to be moved onto it
        assert size < 20 or not shrunk, "the page size did not shrink: the test proves nothing"
        assert (page - 1) * size < active and after > 0, "no records follow the tail's page"
        top = [
            str(r["_id"])
            for r in sorted(live(api.store), key=lambda r: -(ms(r, LAST_SEEN_AT) or 0))
        ]
        followers = served_at(api, size)[page * size :]
        deleted = 0

        def fetch(filters: dict[str, object], number: int) -> Reply:
            nonlocal deleted
            if LAST_SEEN_AT in filters or number == 1:
                return api.fetch(filters, number)
            if number == page + 1 and not deleted:
                deleted = api.store.act_on("delete", {"ids": top[:after]})
            query, at = parse_body({**filters, "page": number})
            records = api.store.page(query, at, size=size).records
            return Reply([orjson.loads(r) for r in records], api.store.server_time(), time.time())

        ids = ids_read(_tail_reader(fetch))
        assert deleted == after
        assert_exact(api, ids)
        assert set(followers) <= set(ids)


def test_a_deletion_while_a_tail_of_several_pages_is_read_is_caught() -> None:
    """A contact deleted after the tail's first page moves the first record of its second page
    onto the first: the pass ends on a short page, its first never-active contact where the
    page size places it, and still missed one: a tail of several pages is read twice."""
    config = replace(BASE, page_size=20, never_active_share=0.2, contacts=300)
    with server(config) as api:
        active, listed = _tail_place(api)
        page = active // 20 + 1
        assert listed > (page + 1) * 20, "the tail fits two pages: the test proves nothing"
        victim = str(max(live(api.store), key=lambda r: ms(r, LAST_SEEN_AT) or 0)["_id"])
        moved = served_at(api, 20)[page * 20]
        deleted = 0

        def fetch(filters: dict[str, object], number: int) -> Reply:
            nonlocal deleted
            if LAST_SEEN_AT not in filters and number == page + 1 and not deleted:
                deleted = api.store.act_on("delete", {"ids": [victim]})
            return api.fetch(filters, number)

        ids = ids_read(_tail_reader(fetch))
        assert deleted
        assert_exact(api, ids)
        assert moved in ids


def test_an_open_windows_tail_is_paged_again() -> None:
    """A contact created never active in a window still open sorts among the tail: one that
    lands on the tail's page after it was read (a page with room left, the next one empty) is
    found by the second pass."""
    window = replace(HISTORY, end=datetime(2100, 1, 1, tzinfo=UTC))
    config = replace(BASE, page_size=20, never_active_share=0.05, contacts=275)
    with server(config) as api:
        active, listed = _tail_place(api, window)
        page = active // 20 + 1
        assert listed < page * 20, "the tail's page has no room: the test proves nothing"
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        newcomer = {"_id": "f" * 24, "createdAt": created, "updatedAt": created}
        tail_pages = 0

        def fetch(filters: dict[str, object], number: int) -> Reply:
            nonlocal tail_pages
            reply = api.fetch(filters, number)
            if LAST_SEEN_AT in filters or number != page:
                return reply
            tail_pages += 1
            items = reply.items if tail_pages == 1 else [*reply.items, newcomer]
            return Reply(items, reply.server_time, reply.received_at)

        ids = ids_read(_tail_reader(fetch, window))
        assert tail_pages > 1
        assert newcomer["_id"] in ids


def test_a_record_left_out_of_the_tails_one_short_page_is_read_by_the_next_read() -> None:
    """An answer that leaves out the last never-active contact of the tail's one short page
    looks like the whole tail: no other answer of the read could show it (as for the last page
    of any read). The day's next read has it."""
    config = replace(BASE, page_size=20, never_active_share=0.05, contacts=275)
    with server(config) as api:
        hidden: str | None = None

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal hidden
            reply = api.fetch(filters, page)
            never = [r for r in reply.items if isinstance(r, dict) and not r.get(LAST_SEEN_AT)]
            if LAST_SEEN_AT in filters or page == 1 or hidden is not None or not never:
                return reply
            hidden = str(never[-1]["_id"])
            shown: list[object] = [
                r for r in reply.items if isinstance(r, dict) and r["_id"] != hidden
            ]
            return Reply(shown, reply.server_time, reply.received_at)

        first = ids_read(_tail_reader(fetch))
        assert hidden is not None, "no tail page held a never-active contact to hide"
        assert hidden not in first, "the read found it: the one-page tail was paged again"
        assert_exact(api, ids_read(_tail_reader(fetch)))


def served_at(api: Server, size: int) -> list[str]:
    """The ids of the whole history's listing, in pages of `size`."""
    own = Reader(api.fetch, HISTORY, Learned(), ExtractStats()).own
    query, _ = parse_body({**own.body(), "page": 1})
    listing: list[str] = []
    for number in range(1, 1000):
        records = api.store.page(query, number, size=size).records
        if not records:
            return listing
        listing.extend(str(orjson.loads(r)["_id"]) for r in records)
    return listing


def test_one_answer_out_of_order_is_asked_again_not_taken_for_another_order() -> None:
    """A server that once puts a record of the next page first (a glitch the sandbox's
    `duplicate` fault makes) does not make the keyset give up its order: the same page asked
    again is in order, and the read goes on."""
    config = replace(BASE, sort="createdAt", page_size=7)
    order = Order(CREATED_AT, descending=True)
    with server(config) as api:
        glitched = False

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal glitched
            reply = api.fetch(filters, page)
            if glitched or len(api.bodies) < 3 or len(reply.items) < 7:
                return reply
            glitched = True
            later = api.fetch(filters, page + 1).items[:1]
            return Reply([*later, *reply.items], reply.server_time, reply.received_at)

        reader = Reader(fetch, HISTORY, Learned(), ExtractStats())
        ids = ids_read(reader, lambda read: keyset(read, read.own, order, None))
        assert glitched, "no answer was glitched: the test proves nothing"
        assert_exact(api, ids)


def test_a_catch_up_page_out_of_order_is_no_proof_and_no_reason_to_give_up() -> None:
    """The window's page 1, asked again as the catch-up's proof, comes once with a record out
    of place: it proves nothing, and the catch-up reads its range by keyset instead of handing
    the whole window to split."""
    config = replace(BASE, page_size=7, never_active_share=0.05)
    with server(config) as api:
        tail_read = glitched = False

        def fetch(filters: dict[str, object], page: int) -> Reply:
            nonlocal tail_read, glitched
            reply = api.fetch(filters, page)
            tail_read = tail_read or (LAST_SEEN_AT not in filters and page > 1)
            if glitched or not tail_read or page != 1 or LAST_SEEN_AT in filters:
                return reply
            glitched = True
            later = api.fetch(filters, 2).items[:1]
            return Reply([*later, *reply.items], reply.server_time, reply.received_at)

        ids = ids_read(Reader(fetch, HISTORY, Learned(), ExtractStats()))
        assert glitched, "the catch-up's page 1 was not glitched: the test proves nothing"
        assert_exact(api, ids)
