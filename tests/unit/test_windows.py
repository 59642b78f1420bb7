"""The window fetcher against the sandbox's store, without HTTP.

`WindowFetcher` promises that a window is either read completely, each contact once, while the
data moves under it, or fails loudly; and that what it learns about the server (page size,
inclusive bounds, whether two ranges are ANDed) comes only from evidence. The HTTP tests run it
through a server, retries and threads, which makes a missed record hard to pin down. Here it
asks the in-memory `ContactStore` directly, through a `fetch` adapter that can also misbehave
(ignore one range, or all of them), so every request is deterministic and every answer can be
compared with the store's own truth.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import chain, count

import pytest
from window_server import (
    ACTIVE_OUTSIDE,
    ANCHOR,
    BASE,
    BUSY,
    DAY,
    HISTORY,
    SORTS,
    Filters,
    Server,
    in_window,
    live,
    ms,
    read,
    same,
    server,
    truth,
)

from etl_contacts.sandbox.config import Sort
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.source.errors import (
    FilterIgnoredError,
    NotConvergedError,
    TransientError,
)
from etl_contacts.source.learned import Learned
from etl_contacts.source.models import Reply, Window, WindowField
from etl_contacts.source.query import Query, Span
from etl_contacts.source.stats import ExtractStats
from etl_contacts.source.window import MAX_PASSES, Fetch, WindowFetcher
from etl_contacts.source.window.activity import _never_active_first, _passes
from etl_contacts.source.window.reader import Reader
from etl_contacts.timestamps import format_ms, to_ms


def drop_created_with_last_seen(filters: Filters) -> Filters:
    """A server that applies only one date range: the lastSeenAt one, when both are sent."""
    if "lastSeenAt" in filters:
        return {name: value for name, value in filters.items() if name != "createdAt"}
    return filters


def drop_last_seen_with_created(filters: Filters) -> Filters:
    """A server that applies only one date range: the createdAt one, when both are sent."""
    if "createdAt" in filters:
        return {name: value for name, value in filters.items() if name != "lastSeenAt"}
    return filters


def drop_dates(filters: Filters) -> Filters:
    """A server that ignores date ranges altogether."""
    return {k: v for k, v in filters.items() if k not in ("createdAt", "lastSeenAt")}


@pytest.mark.parametrize("page_size", [7, 20])
@pytest.mark.parametrize("nulls_first", [False, True], ids=["nulls-last", "nulls-first"])
@pytest.mark.parametrize("sort", SORTS)
def test_a_whole_history_window_is_read_completely_while_the_data_moves(
    sort: Sort, nulls_first: bool, page_size: int
) -> None:
    config = replace(
        BUSY, sort=sort, page_size=page_size, never_active_share=0.05, nulls_first=nulls_first
    )
    with server(config, act=True) as api:
        got = read(api, HISTORY)
        snapshot = api.store.snapshot()
        expected = truth(api.store, HISTORY)
    deleted = {entry["_id"] for entry in snapshot.deleted}
    ids = got.ids
    assert deleted, "the setup must delete contacts during the read (else pick another seed)"
    assert len(ids) == len(set(ids)), "an _id was handed over twice"
    assert expected - set(ids) == set(), "live contacts of the window were missed"
    assert set(ids) - expected <= deleted, "records outside the window were handed over"
    assert all(in_window(r, HISTORY) for batch in got.batches for r in batch)
    assert len(expected) >= 290  # the window holds the whole history, not an easy subset


def test_an_inbox_sorted_by_updatedat_is_paged_by_number_at_about_twice_the_pages() -> None:
    """No range narrows by updatedAt: once a page shows that order (a never-active contact
    among active ones), the window is paged by number, twice, and its top once more; cutting
    it until each part fits a page took more than five times the pages."""
    config = replace(BASE, sort="updatedAt", page_size=20, never_active_share=0.05)
    with server(config) as api:
        learned, stats = Learned(), ExtractStats()
        ids = [
            str(r["_id"])
            for batch in WindowFetcher(api.fetch, HISTORY, learned, stats).batches()
            for r in batch
            if isinstance(r, dict)
        ]
        expected = truth(api.store, HISTORY)
    assert sorted(ids) == sorted(expected)
    assert stats.get("strategy_by_update") == 1
    assert learned.describe()["sort"] == "updatedAt descending"
    pages = -(-len(expected) // 20)
    assert len(api.bodies) <= 2 * pages + 3, "more than two passes and the top"


@pytest.mark.parametrize(
    ("spans", "closed"),
    [
        ({"createdAt": Span(0, 1)}, True),
        ({"createdAt": Span(0, None)}, False),
        ({"lastSeenAt": Span(0, 1)}, True),
        ({"lastSeenAt": Span(0, 1), "createdAt": Span(0, None)}, True),
        ({"lastSeenAt": Span(0, None), "createdAt": Span(0, 1)}, False),
    ],
    ids=[
        "past-day",
        "created-since",
        "past-activity",
        "past-activity-any-creation",
        "active-since",
    ],
)
def test_a_listing_is_closed_once_no_contact_can_enter_it(
    spans: dict[WindowField, Span], closed: bool
) -> None:
    """A contact enters a listing by being created in it or, when it has a lastSeenAt range, by
    becoming active in it (created contacts are never active, or active now): a past
    lastSeenAt range is closed whatever its createdAt range, activity only takes contacts out
    of it."""
    reader = Reader(lambda *_: Reply([], None, 0.0), HISTORY, Learned(), ExtractStats())
    assert reader.closed(Query(spans)) is closed


def test_never_active_contacts_listed_first_are_not_taken_for_a_createdat_order() -> None:
    config = replace(
        BASE, seed=1, sort="lastSeenAt", page_size=7, never_active_share=0.2, nulls_first=True
    )
    day = Window("createdAt", ANCHOR - timedelta(days=2), ANCHOR - timedelta(days=1))
    with server(config) as api:
        got = read(api, day)
        expected = truth(api.store, day)
    assert len(expected) == 31
    assert sorted(got.ids) == sorted(expected)


@pytest.mark.parametrize(
    ("honest", "sort"),
    [
        *((True, sort) for sort in SORTS),
        (False, "lastSeenAt"),
        (False, "createdAt"),
        (False, "_id"),
    ],
    ids=lambda v: {True: "ands-ranges", False: "drops-createdAt"}.get(v, v),
)
def test_created_outside_is_applied_whether_or_not_the_server_ands_two_ranges(
    honest: bool, sort: Sort
) -> None:
    start, end = ANCHOR - timedelta(days=4), ANCHOR - timedelta(days=2)
    window = Window("lastSeenAt", start, end, created_outside=((start, end),))
    rewrite = same if honest else drop_created_with_last_seen
    with server(replace(BASE, sort=sort, page_size=7), rewrite=rewrite) as api:
        got = read(api, window)
        expected = truth(api.store, window)
        active = truth(api.store, Window("lastSeenAt", start, end))
        both = [b for b in api.bodies if "createdAt" in b and "lastSeenAt" in b]
    assert len(got.ids) == len(set(got.ids))
    assert set(got.ids) == expected
    assert 20 <= len(expected) < len(active), "the exclusion must leave some out, not all"
    assert both, "the fetcher sent both ranges in one body first"
    assert got.learned.ranges_combined is honest


@pytest.mark.parametrize("honest", [True, False], ids=["ands-ranges", "drops-lastSeenAt"])
def test_a_window_active_since_a_moment_asks_for_those_only_and_loses_none_of_them(
    honest: bool,
) -> None:
    """A probe's window: contacts created in it and last seen at or after a moment. A server
    that ANDs two ranges answers only those; one that does not answers the whole window, and
    none of those is lost either way."""
    since = ANCHOR - timedelta(days=3)
    window = replace(HISTORY, active_since=since)
    rewrite = same if honest else drop_last_seen_with_created
    with server(replace(BASE, page_size=7), rewrite=rewrite) as api:
        got = read(api, window)
        everything = truth(api.store, HISTORY)
        seen_since = {
            str(r["_id"])
            for r in live(api.store)
            if in_window(r, HISTORY) and (ms(r, "lastSeenAt") or 0) >= to_ms(since)
        }
    assert 20 <= len(seen_since) < len(everything) / 2, "the moment must leave most out"
    assert len(got.ids) == len(set(got.ids))
    assert seen_since <= set(got.ids) <= everything
    assert (got.learned.ranges_combined is False) is not honest
    if honest:
        assert set(got.ids) == seen_since


@pytest.mark.parametrize(
    "sort",
    ["lastSeenAt", "createdAt", "_id"],
)
def test_a_createdat_window_is_read_from_a_server_that_does_not_and_two_ranges(
    sort: Sort,
) -> None:
    config = replace(BASE, sort=sort, page_size=7)
    with server(config, rewrite=drop_created_with_last_seen) as api:
        got = read(api, DAY)
        expected = truth(api.store, DAY)
    assert len(expected) > 7
    assert sorted(got.ids) == sorted(expected)


@pytest.mark.parametrize(
    ("sort", "window"),
    [
        pytest.param(sort, window, id=f"{sort}-{name}")
        for sort in SORTS
        for name, window in (("history", HISTORY), ("day", DAY), ("outside", ACTIVE_OUTSIDE))
    ],
)
def test_a_server_ignoring_date_ranges_fails_the_window(sort: Sort, window: Window) -> None:
    with server(replace(BASE, sort=sort), rewrite=drop_dates) as api:
        handed: list[object] = []
        fetcher = WindowFetcher(api.fetch, window, Learned(), ExtractStats())
        with pytest.raises(FilterIgnoredError, match="does not filter by date"):
            handed.extend(chain.from_iterable(fetcher.batches()))
    if window is not HISTORY:  # the first page already shows records outside the range
        assert handed == []


@pytest.mark.parametrize("how", ["created", "touched"])
def test_a_window_changing_faster_than_it_is_read_is_never_reported_complete_on_a_guess(
    how: str,
) -> None:
    """Each request brings records new to the window: the fetcher gives up (what changes lands
    in the current second, so its slice or the catch-up does), or, when it ends, it has handed
    every record the window held when it began."""
    future = datetime(2100, 1, 1, tzinfo=UTC)
    if how == "created":  # three contacts created per request, in a window open to the future
        config, touch = replace(BASE, create_rate=3.0), 0
        window = Window("createdAt", ANCHOR - timedelta(days=1), future)
    else:  # ten contacts made active per request, most of them from before the window
        config, touch = replace(BASE, contacts=2000), 10
        window = Window("lastSeenAt", ANCHOR - timedelta(days=1), future)
    gave_up = rf"(after {MAX_PASSES} catch-up passes|kept shifting for {MAX_PASSES} passes)"
    with server(config, act=how == "created", touch=touch) as api:
        handed: list[object] = []
        fetcher = WindowFetcher(api.fetch, window, Learned(), ExtractStats())
        before = truth(api.store, window)
        error = ""
        try:
            handed.extend(chain.from_iterable(fetcher.batches()))
        except NotConvergedError as exc:
            error = str(exc)
        if error:
            assert re.search(gave_up, error), error
        else:
            assert how == "touched", "contacts created at every request cannot all be read"
            # what the window held when the read began (what changes during its last pass
            # is for the next run)
            assert before <= {r["_id"] for r in handed if isinstance(r, dict)}
        requests = len(api.bodies)
    assert handed, "records were read"
    assert requests > MAX_PASSES


@pytest.mark.parametrize("inclusive", [False, True])
def test_records_at_an_inclusive_end_are_dropped_and_none_is_lost(inclusive: bool) -> None:
    config = replace(BASE, ends_at_inclusive=inclusive, page_size=7)
    with closing(ContactStore(config)) as store:
        created = sorted(ms(r, "createdAt") or 0 for r in live(store))
    edge = max(set(created), key=created.count)  # a bulk import: many records at the end
    assert created.count(edge) > 7
    end = datetime.fromtimestamp(edge / 1000, tz=UTC)
    window = Window("createdAt", end - timedelta(days=3), end)
    with server(config) as api:
        got = read(api, window)
        expected = truth(api.store, window)
    assert sorted(got.ids) == sorted(expected)
    assert all(ms(r, "createdAt") != edge for batch in got.batches for r in batch)


@pytest.mark.parametrize("page_size", [7, 20])
@pytest.mark.parametrize("sort", SORTS)
def test_the_page_size_is_learned_from_a_window_of_many_pages(sort: Sort, page_size: int) -> None:
    with server(replace(BASE, sort=sort, page_size=page_size)) as api:
        got = read(api, HISTORY)
    assert len(got.ids) == 300
    assert got.learned.page_size == page_size
    assert max(len(batch) for batch in got.batches) <= page_size


@pytest.mark.parametrize("later", [13, 35])
@pytest.mark.parametrize("sort", SORTS)
def test_a_page_size_changing_during_the_read_loses_nothing(sort: Sort, later: int) -> None:
    """A page shorter than the learned size ends nothing by itself: the next page proves it."""
    config = replace(BASE, sort=sort, page_size=20, page_size_later=later, page_size_after=8)
    with server(config) as api:
        got = read(api, HISTORY)
        expected = truth(api.store, HISTORY)
    assert len(api.bodies) > 8, "the size changed after the read: the test proves nothing"
    assert sorted(got.ids) == sorted(expected)


@pytest.mark.parametrize(("one", "two"), [(20, 7), (7, 20)], ids=["shorter", "longer"])
@pytest.mark.parametrize("sort", ["lastSeenAt", "updatedAt"])  # the orders a keyset narrows
def test_a_page_size_that_differs_between_queries_loses_nothing(
    sort: Sort, one: int, two: int
) -> None:
    """A server answering each query from the index it picks, each with its own page size:
    queries with two date ranges (a keyset's, a probe's) get pages of another length than the
    window's own, while contacts come and go."""
    config = replace(BUSY, sort=sort, page_size=one, page_size_two_ranges=two)
    with server(config, act=True) as api:
        got = read(api, HISTORY)
        expected = truth(api.store, HISTORY)
        deleted = {entry["_id"] for entry in api.store.snapshot().deleted}
    assert expected - set(got.ids) == set()
    assert set(got.ids) - expected <= deleted
    assert len(got.ids) == len(set(got.ids))
    shapes = Counter(len(body) for body in api.bodies)
    assert shapes[1] and shapes[2], f"one page size only ({shapes}): the test proves nothing"


@pytest.mark.parametrize("sort", SORTS)
def test_empty_answers_where_records_were_due_are_doubted_not_taken_for_the_end(
    sort: Sort,
) -> None:
    """Answers 3 and 4 say success with no records (a lagging replica): the third comes after
    full pages, and taken for the end it would end the window there. Doubted, a listing known to
    hold records is asked until it answers with them, then the same request again."""
    with server(replace(BASE, sort=sort)) as api:
        fetch, listed = _empty_when(api, lambda _filters, n: n in (3, 4))
        stats = ExtractStats()
        fetcher = WindowFetcher(fetch, HISTORY, Learned(), stats, listed)
        ids = [str(r["_id"]) for batch in fetcher.batches() for r in batch if isinstance(r, dict)]
        assert sorted(ids) == sorted(truth(api.store, HISTORY))
    assert stats.get("empty_answers_doubted") >= 1


def test_ids_minted_at_import_are_not_taken_for_creation_order() -> None:
    """Sorted by `_id`, a listing looks sorted by createdAt while ids follow creation; a bulk
    import whose ids were minted later sorts after the contacts created since, and a keyset
    narrowed past its createdAt never meets it. The listing's end, by page number, shows the
    keyset fell short, and the window is read another way."""
    config = replace(BASE, sort="_id", ids_minted_at_import=True)
    with server(config) as api:
        result = read(api, HISTORY)
        expected = truth(api.store, HISTORY)
    assert sorted(result.ids) == sorted(expected)


def test_one_answer_with_a_record_out_of_id_order_does_not_rule_the_id_order_out() -> None:
    """The first answer holds, after its first record, a copy of it under an `_id` of its own
    (a record served by mistake): sorted by createdAt still, no longer by `_id`. Taken for
    proof the order is not by `_id`, it dropped the proof by page number for the rest of the
    run, and on the zoo's server with ids minted at import (seed 2) a later window lost a whole
    import. Asked again, the answer is in order."""
    config = replace(BASE, sort="_id", ids_minted_at_import=True)
    with server(config) as api:
        fake = "f" * 24

        def fetch(filters: Filters, page: int) -> Reply:
            reply = api.fetch(filters, page)
            if len(api.bodies) > 1 or len(reply.items) < 2 or not isinstance(reply.items[0], dict):
                return reply
            copy = {**reply.items[0], "_id": fake}
            return Reply([reply.items[0], copy, *reply.items[1:]], None, reply.received_at)

        learned = Learned()
        ids = [
            str(r["_id"])
            for batch in WindowFetcher(fetch, HISTORY, learned, ExtractStats()).batches()
            for r in batch
            if isinstance(r, dict)
        ]
        expected = truth(api.store, HISTORY)
    assert set(ids) - expected == {fake}
    assert expected - set(ids) == set()
    assert not learned.not_by_id


def test_keysets_short_of_records_twice_read_the_run_by_split() -> None:
    """Once may be a record a fault put into one answer; twice, the order is not creation's."""
    learned = Learned()
    learned.learn_by_id()
    assert not learned.by_id
    learned.learn_by_id()
    assert learned.by_id
    assert learned.describe()["sort"] == "_id, not in creation order"


@pytest.mark.parametrize("millis", [0, 1, 499, 500, 501, 999])
def test_a_start_is_sent_so_that_any_reading_of_it_starts_no_later(millis: int) -> None:
    """A server may read `startAt` to the millisecond, truncate it to the second, or round it
    to the nearest one: each reading starts at or before the range, and within two seconds of
    it (a probe of one millisecond late in its second once came back empty when rounded)."""
    lo = to_ms(datetime(2024, 5, 1, 12, 0, 7, tzinfo=UTC)) + millis
    sent = to_ms(datetime.fromisoformat(Span(lo, lo + 1).wire()["startAt"]))
    for reading in (sent, sent - sent % 1000, (sent + 500) // 1000 * 1000):
        assert lo - 2000 < reading <= lo


MIDDLE_OUT = Window(
    "lastSeenAt",
    DAY.start,
    DAY.end,
    created_outside=((ANCHOR - timedelta(days=8), ANCHOR - timedelta(days=6)),),
)
"""A nightly's window of the day's activity, with an older day re-verified by its own window:
read as the createdAt ranges around that day, a query each."""


def _empty_when(api: Server, when: Callable[[Filters, int], bool]) -> tuple[Fetch, Fetch]:
    """`fetch`, answering request N (from 1) empty when `when(filters, N)`; and `listed`, the
    client's retries while a listing answers empty."""
    asked = count(1)

    def fetch(filters: Filters, page: int) -> Reply:
        reply = api.fetch(filters, page)
        empty = when(filters, next(asked))
        return Reply([], reply.server_time, reply.received_at) if empty else reply

    def listed(filters: Filters, page: int) -> Reply:
        while not (reply := fetch(filters, page)).items:
            pass
        return reply

    return fetch, listed


def _seasoned() -> Learned:
    """What a run has learned after its first windows: the page size, and records listed."""
    learned = Learned()
    for _ in range(3):
        learned.confirm_full(BASE.page_size, frozenset({"createdAt"}))
    learned.saw_listing(0.0)
    return learned


@pytest.mark.parametrize("false_empties", [True, False], ids=["seen", "not-seen"])
def test_after_a_page_full_at_a_size_that_shrank_an_empty_answer_is_doubted(
    false_empties: bool,
) -> None:
    """The server's pages shrank from 20 to 9: a page of 9 looks short by the size the run
    learned, and the empty answer after it, the end it announced. Once the run has seen the
    server answer empty falsely, that answer is doubted too (this one was false); before, a
    server that never answers falsely pays nothing more for a page that ends a listing."""
    with server(replace(BASE, page_size=9)) as api:
        answers = [False]  # whether page 2 has been answered, falsely empty

        def fetch(filters: Filters, page: int) -> Reply:
            reply = api.fetch(filters, page)
            if page == 2 and not answers[0]:
                answers[0] = True
                return Reply([], reply.server_time, reply.received_at)
            return reply

        learned = _seasoned()
        if false_empties:
            learned.learn_false_empties()
        reader = Reader(fetch, HISTORY, learned, ExtractStats(), fetch)
        first = list(chain.from_iterable(reader.ask(reader.own, 1)))
        second = list(chain.from_iterable(reader.ask(reader.own, 2)))
        assert len(first) == 9
        assert len(second) == (9 if false_empties else 0)


@pytest.mark.parametrize(
    ("sort", "window", "empty"),
    [
        ("lastSeenAt", HISTORY, 4),  # oldest activity first: split, a part's first answer
        ("updatedAt", HISTORY, 4),
        ("lastSeenAt", MIDDLE_OUT, 3),  # a gap's first answer, after the gap before ended
    ],
    ids=["split-part", "split-part-updated", "gap"],
)
def test_an_empty_first_answer_of_any_query_of_a_window_is_doubted(
    sort: Sort, window: Window, empty: int
) -> None:
    """Not only a window's first answer: each query's (a split's part, a gap of a window with
    contacts created outside it) is due records, whatever the query before it ended on."""
    config = replace(BASE, sort=sort, reverse_sort=window is HISTORY)
    with server(config) as api:
        fetch, listed = _empty_when(api, lambda _filters, n: n == empty)
        fetcher = WindowFetcher(fetch, window, _seasoned(), ExtractStats(), listed)
        ids = {str(r["_id"]) for batch in fetcher.batches() for r in batch if isinstance(r, dict)}
        assert ids == truth(api.store, window)


@pytest.mark.parametrize(("later", "after"), [(50, 12), (35, 18), (13, 27), (7, 30)])
def test_a_keyset_short_of_ids_minted_at_import_is_caught_though_the_page_size_changed(
    later: int, after: int
) -> None:
    """The proof by page number reads from the page before the listing's computed end to an
    empty page, every page but the last as long as the page size: with the size changed, no
    position is known, and the window is split rather than taken for read."""
    config = replace(
        BASE,
        sort="_id",
        ids_minted_at_import=True,
        contacts=600,
        page_size_later=later,
        page_size_after=after,
    )
    with server(config) as api:
        result = read(api, HISTORY)
        assert set(result.ids) == truth(api.store, HISTORY)


def test_a_contact_created_during_an_open_window_is_no_evidence_of_an_id_order() -> None:
    """The proof by page number runs only where no contact can be created any more: one created
    during an open window's read is new to it, and is no sign that ids were minted late."""
    today = Window("createdAt", ANCHOR - timedelta(days=11), datetime.now(UTC) + timedelta(days=1))
    with server(replace(BASE, sort="_id", seed=1, create_rate=0.05), act=True) as api:
        result = read(api, today)
    assert not result.learned.by_id


def test_a_page_1_emptied_since_it_was_read_is_doubted_against_the_account_not_itself() -> None:
    """A window's only contact (never active, sorted first) is deleted after its page 1 was
    read: the next pass's page 1 is truly empty. Its doubt asks the account's listing for
    records; asking that same page 1, retried while it lists none, failed a calm run."""
    created = DAY.start + timedelta(hours=10)
    only = {"_id": "1".zfill(24), "createdAt": format_ms(to_ms(created)), "lastSeenAt": None}
    elsewhere = {"_id": "2".zfill(24), "createdAt": "2020-01-01T00:00:00.000Z", "lastSeenAt": None}
    asked: list[int] = []

    def fetch(filters: Filters, page: int) -> Reply:
        if not filters:
            return Reply([elsewhere], None, 0.0)
        asked.append(page)
        return Reply([only] if len(asked) == 1 else [], None, 0.0)

    def listed(filters: Filters, page: int) -> Reply:
        if not (reply := fetch(filters, page)).items:
            raise TransientError("empty", "the client's retries ran out")
        return reply

    read = Reader(fetch, DAY, _seasoned(), ExtractStats(), listed)
    found = [r for batch in _passes(read, _never_active_first, read.own) for r in batch]
    assert found == [only]


@pytest.mark.parametrize("made_active", [False, True], ids=["still", "one-made-active"])
def test_a_never_active_contact_an_updatedat_order_hides_among_active_ones_is_found(
    made_active: bool,
) -> None:
    """Sorted by updatedAt, an inbox whose agents changed nobody looks sorted by lastSeenAt,
    never-active contacts last: one never-active contact, created after many active ones were
    last seen, sorts among them, on a page neither the keyset (a lastSeenAt range leaves it out)
    nor the tail reads. A contact the keyset saw, deleted before the tail, makes the listing's
    length match what the window has seen all the same. The listing of the active contacts
    alone is one short of where the tail places them: the window is read by page number.
    `made_active`: a never-active contact of the tail becomes active just before that listing
    is asked, which makes up for the one hidden: the window's newest contact shows it, and the
    tail and the listing are asked again."""
    config = replace(BASE, sort="updatedAt", page_size=7, never_active_share=0.1, contacts=150)
    with server(config) as api:
        rows = live(api.store)
        never = sorted(
            (r for r in rows if not r.get("lastSeenAt")), key=lambda r: ms(r, "createdAt") or 0
        )
        hidden, last = never[len(never) // 2], never[0]
        kept = {str(hidden["_id"]), *([str(last["_id"])] if made_active else [])}
        api.store.act_on("delete", {"ids": [str(r["_id"]) for r in never if r["_id"] not in kept]})
        if made_active:  # `last` ends the listing: no active contact was last seen before it
            older = [
                r for r in rows if (ms(r, "lastSeenAt") or 1 << 62) < (ms(last, "createdAt") or 0)
            ]
            api.store.act_on("delete", {"ids": [str(r["_id"]) for r in older]})
        rows = live(api.store)
        below = [r for r in rows if (ms(r, "lastSeenAt") or 0) < (ms(hidden, "createdAt") or 0)]
        assert len(below) > config.page_size, "the never-active contact sorts on the last page"
        seen_first = str(max(rows, key=lambda r: ms(r, "updatedAt") or 0)["_id"])
        touched = 0

        def fetch(filters: Filters, page: int) -> Reply:
            nonlocal touched
            if "lastSeenAt" not in filters and page > 1:  # the tail, after the keyset
                api.store.act_on("delete", {"ids": [seen_first]})
            probe = filters.get("lastSeenAt", {}) == {
                "startAt": "1969-12-31T23:59:59.999Z",
                "endsAt": "",
            }
            if made_active and probe and not touched:
                touched = api.store.act_on("touch", {"ids": [str(last["_id"])]})
            return api.fetch(filters, page)

        learned = Learned()
        ids = _handed(fetch, HISTORY, learned)
        assert not learned.not_by_update, "a page showed the order: the test proves nothing"
        assert touched == made_active, "no contact was made active before the probe"
        assert str(hidden["_id"]) in ids
        assert truth(api.store, HISTORY) - set(ids) == set()


def test_a_page_short_only_by_another_kind_of_querys_size_ends_no_keyset() -> None:
    """Queries with two date ranges come in pages of 7, the window's own in pages of 20, which
    the run has confirmed: a keyset page of 7 is not short. Taken for the last, it left the
    active contacts to the tail, paged by number, where a deletion moved one onto a page the
    tail had read, and the tail's next pass began after it."""
    config = replace(BASE, page_size=20, page_size_two_ranges=7, never_active_share=0.05)
    learned = Learned()
    for _ in range(3):  # pages of the window's own kind, from the run's earlier windows
        learned.confirm_full(20, frozenset({"createdAt"}))
    with server(config) as api:
        first_seen = _first_of_history(api)
        deleted = 0

        def fetch(filters: Filters, page: int) -> Reply:
            nonlocal deleted
            reply = api.fetch(filters, page)
            if "lastSeenAt" not in filters and page > 1 and not deleted:
                deleted = api.store.act_on("delete", {"ids": [first_seen]})
            return reply

        handed = _handed(fetch, HISTORY, learned)
        assert deleted, "nothing was deleted while the tail was read: the test proves nothing"
        assert truth(api.store, HISTORY) - set(handed) == set()


def test_the_window_page_a_keyset_is_handed_is_judged_by_its_own_page_size() -> None:
    """The window's own page 1 (pages of 7) starts the keyset on its active contacts (pages of
    20, confirmed by the run): judged by 20, it looked like the last, the keyset ended at once
    and the tail paged every contact by number, from page 3, where a deletion on page 1 moved a
    record onto page 2, which no pass of the tail read."""
    config = replace(BASE, page_size=7, page_size_two_ranges=20, never_active_share=0.05)
    learned = Learned()
    for _ in range(3):  # the two-range pages of the run's earlier windows
        learned.confirm_full(20, frozenset({"createdAt", "lastSeenAt"}))
    with server(config) as api:
        victim = _first_of_history(api)
        deleted = 0

        def fetch(filters: Filters, page: int) -> Reply:
            nonlocal deleted
            if "lastSeenAt" not in filters and page >= 3 and not deleted:
                deleted = api.store.act_on("delete", {"ids": [victim]})
            return api.fetch(filters, page)

        handed = _handed(fetch, HISTORY, learned)
        assert deleted, "nothing was deleted while the tail was read: the test proves nothing"
        assert truth(api.store, HISTORY) - set(handed) == set()


def test_a_window_deleted_whole_after_its_first_page_is_read_not_failed() -> None:
    """An empty answer is doubted against the window's page 1, which a bulk deletion of the
    whole day empties too: the account's listing proves the server serves instead."""
    with server(replace(BASE, page_size=7)) as api:
        asked = 0
        doomed = sorted(truth(api.store, DAY))

        def fetch(filters: Filters, page: int) -> Reply:
            nonlocal asked
            asked += 1
            if asked == 2:  # after the window's page 1: the day is deleted
                api.store.act_on("delete", {"ids": doomed})
            return api.fetch(filters, page)

        def listed(filters: Filters, page: int) -> Reply:
            reply = fetch(filters, page)
            if not reply.items:  # what the client does once its retries run out
                raise TransientError("empty", "a listing that held records answered with none")
            return reply

        handed = _handed(fetch, DAY, Learned(), listed)
    assert len(doomed) > 7, "the day fits one page: the test proves nothing"
    assert 0 < len(handed) <= len(doomed) and set(handed) <= set(doomed)


def _handed(
    fetch: Fetch, window: Window, learned: Learned, listed: Fetch | None = None
) -> list[str]:
    """The `_id`s a window's read hands over, in order."""
    fetcher = WindowFetcher(fetch, window, learned, ExtractStats(), listed)
    return [str(r["_id"]) for batch in fetcher.batches() for r in batch if isinstance(r, dict)]


def _first_of_history(api: Server) -> str:
    """The `_id` heading page 1 of the whole history's listing now."""
    own = Query({"createdAt": Span(to_ms(HISTORY.start), to_ms(HISTORY.end))}).body()
    top = api.fetch(own, 1).items
    return str(top[0]["_id"]) if isinstance(top[0], dict) else ""


def test_differing_copies_of_a_record_in_one_answer_both_go_on_and_copies_do_not() -> None:
    """A server that lists one contact twice in an answer, once changed: which copy is current
    only their updatedAt says, which the transform reads (the newer wins). Dropped by `_id`,
    the later copy, perhaps the current one, was lost. A copy in a later answer, or the same
    content again, is a duplicate."""
    with server(BASE) as api:
        first, other = sorted(live(api.store), key=lambda r: str(r["_id"]))[:2]
        changed = {
            **first,
            "status": "CLOSED",
            "updatedAt": format_ms((ms(first, "createdAt") or 0) + 1),
        }
        answers = [[first, other, changed, dict(first)], [changed, other]]

        def fetch(_: Filters, page: int) -> Reply:
            return Reply(list(answers[page - 1]), None, 0.0)

        reader = Reader(fetch, HISTORY, Learned(), ExtractStats())
        handed = [list(chain.from_iterable(reader.ask(reader.own, page))) for page in (1, 2)]
        assert handed == [[first, other, changed], []]
        assert reader.seen == 2
        assert reader.stats.get("duplicates_dropped") == 3
