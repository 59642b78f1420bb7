"""Deletes a team can trust, against a sandbox that plays outages, mass deletions and data fixes:
an absence is proven across two runs, an outage deletes nothing, a mass delete waits for an
explicit allowance, contacts created before the start date are verified too, and a run that
loses its account lock stops."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
import requests
import sqlalchemy as sa

from etl_contacts.pipeline import deletions
from etl_contacts.pipeline.deletions import DeletePolicy
from etl_contacts.pipeline.nightly import account_staleness, plan_nightly
from etl_contacts.pipeline.sync import SyncResult, day_windows, run_sync
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.settings import Freshness
from etl_contacts.source import CREATED_AT, ClientConfig, Event, ExtractionFailed, Window, extract
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.warehouse import LockLostError

TOKEN = "0123456789abcdef01234567"
DAYS = 10
ACCOUNT = "default"
# no pause worth waiting for in a test: the sandbox's outage is counted in requests
POLICY = DeletePolicy(suspect_pause_seconds=0.05)


@dataclass
class Setup:
    sandbox: SandboxServer
    warehouse: Warehouse
    client: ClientConfig
    first: date
    last: date

    def sync(
        self,
        run_id: str,
        first: date | None = None,
        last: date | None = None,
        *,
        policy: DeletePolicy = POLICY,
    ) -> SyncResult:
        start, end = first or self.first, last or first or self.last
        return run_sync(
            client=self.client,
            warehouse=self.warehouse,
            windows=day_windows(start, end, "UTC"),
            account=ACCOUNT,
            run_id=run_id,
            policy=policy,
        )

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        answer = requests.post(
            f"{self.sandbox.base_url}/_sandbox/{path}", data=orjson.dumps(body), timeout=30
        )
        answer.raise_for_status()
        result: dict[str, object] = answer.json()
        return result

    def stored(self) -> dict[str, bool]:
        """Every stored contact: whether it is live."""
        with self.warehouse.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT contact_id, deleted_at IS NULL FROM express_chat.contacts")
            )
            return dict(rows.tuples().all())

    def scalar(self, query: str, **params: object) -> Any:
        with self.warehouse.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar_one()

    def run_counter(self, run_id: str, column: str) -> Any:
        return self.scalar(
            f"SELECT {column} FROM express_chat.sync_runs WHERE run_id = :r",
            r=run_id,
        )

    def truth_ids(self) -> tuple[set[str], set[str]]:
        truth = self.sandbox.truth()
        return {str(c["_id"]) for c in truth["contacts"]}, {str(c["_id"]) for c in truth["deleted"]}


@contextmanager
def _setup(database_url: str, config: SandboxConfig) -> Iterator[Setup]:
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    anchor = config.anchor_time
    with SandboxServer(config) as sandbox:
        yield Setup(
            sandbox,
            warehouse,
            ClientConfig(base_url=sandbox.base_url, token=TOKEN, backoff_initial=0.01),
            (anchor - timedelta(days=DAYS)).date(),
            (anchor - timedelta(days=1)).date(),
        )
    warehouse.engine.dispose()


@pytest.fixture
def loaded(database_url: str) -> Iterator[Setup]:
    """1,200 contacts over ten days, loaded completely once."""
    config = SandboxConfig(contacts=1_200, days=DAYS, seed=17, token=TOKEN, page_size=20)
    with _setup(database_url, config) as setup:
        setup.sync("backfill")
        yield setup


def test_an_outage_of_empty_answers_during_a_re_read_deletes_nothing(loaded: Setup) -> None:
    """60 empty answers outlast the client's retries of the account's own listing: the run
    fails, saying so, and records nothing of the day."""
    day = loaded.first + timedelta(days=4)
    before = loaded.stored()
    loaded.post("outage", {"requests": 60})
    with pytest.raises(ExtractionFailed, match="run again later"):
        loaded.sync("during-outage", day)
    assert loaded.stored() == before, "nothing deleted"
    assert loaded.warehouse.missing_count(ACCOUNT) == 0, "nothing taken for missing"
    verified_by = loaded.scalar(
        "SELECT run_id FROM express_chat.day_verifications WHERE day = :d", d=day
    )
    assert verified_by == "backfill", "the day stays unverified by the outage"

    loaded.post("outage", {"requests": 0})
    loaded.sync("calm", day)
    assert loaded.stored() == before
    assert loaded.run_counter("calm", "suspect_days") == 0
    verified_by = loaded.scalar(
        "SELECT run_id FROM express_chat.day_verifications WHERE day = :d", d=day
    )
    assert verified_by == "calm", "the next calm run verifies the day"


def test_an_outage_that_ends_before_the_second_read_is_only_a_pause(loaded: Setup) -> None:
    """Empty answers for a while: the read after the pause finds the day whole."""
    day = loaded.first + timedelta(days=2)
    before = loaded.stored()
    loaded.post("outage", {"requests": 1})  # the day's first answer only
    loaded.sync("blip", day)
    assert loaded.stored() == before
    assert loaded.warehouse.missing_count(ACCOUNT) == 0
    assert loaded.run_counter("blip", "suspect_days") == 0
    assert (
        loaded.scalar("SELECT run_id FROM express_chat.day_verifications WHERE day = :d", d=day)
        == "blip"
    )


@pytest.mark.parametrize("outlasting", [False, True])
def test_a_first_load_through_an_outage_of_empty_answers_stores_every_contact(
    database_url: str, outlasting: bool
) -> None:
    """Success with no records for a while, from the run's first request: 6 answers end some
    windows' first reads, or the outage outlasts the first read of every window (each asks its
    page and the account's listing) and four retries of the account's listing. Nothing is
    stored yet to show a loss, so an empty answer where records were due is proven across time:
    a listing that holds records, then the same request again."""
    config = SandboxConfig(contacts=600, days=DAYS, seed=5, token=TOKEN, page_size=20)
    with _setup(database_url, config) as setup:
        windows = len(day_windows(setup.first, setup.last, "UTC"))
        empty_answers = 2 * windows + 4 if outlasting else 6
        setup.post("outage", {"requests": empty_answers})
        result = setup.sync("first")
        live, _ = setup.truth_ids()
        assert set(setup.stored()) == live
        assert all(setup.stored().values())
        assert result.extracted["empty_answers_doubted"] >= 1
        assert setup.sandbox.truth()["empty_answers"] == empty_answers


def test_deletions_whose_confirmation_waited_are_weighed_by_the_run_that_found_them(
    loaded: Setup,
) -> None:
    """Two runs each find 8 contacts missing, within the guard's 1 % of 1,200 (12). The
    second's confirmation of the first's waits: it read an old day alone, its read of activity
    ends over a week before the newest stored. The next run confirms the 16 and deletes them."""
    truth = loaded.sandbox.truth()["contacts"]

    def created_on(day: date) -> list[str]:
        return [
            str(c["_id"])
            for c in truth
            if datetime.fromisoformat(str(c["createdAt"])).date() == day
        ][:8]

    deleted: set[str] = set()
    for night, day in enumerate((loaded.first + timedelta(days=1), loaded.first)):
        ids = created_on(day)
        loaded.post("delete", {"ids": ids})
        deleted |= set(ids)
        loaded.sync(f"night-{night}", day)
        assert loaded.run_counter(f"night-{night}", "missing") == len(ids)
    assert loaded.run_counter("night-1", "deleted") == 0, "its second look waited"

    loaded.sync("tonight", loaded.last)
    assert loaded.run_counter("tonight", "deletions_held") == 0
    assert loaded.run_counter("tonight", "deleted") == len(deleted) == 16
    assert {i for i, live in loaded.stored().items() if not live} == deleted


def test_a_third_of_a_day_deleted_at_the_source_waits_for_confirmation_and_the_guard(
    loaded: Setup,
) -> None:
    day = loaded.first + timedelta(days=6)
    deleted = loaded.post("delete", {"created_on": day.isoformat(), "share": 1 / 3})["deleted"]
    assert isinstance(deleted, int) and deleted > 12, "more than 1 % of the account"
    _, gone = loaded.truth_ids()

    loaded.sync("first-look", day)
    assert loaded.run_counter("first-look", "missing") == deleted
    assert not {i for i, live in loaded.stored().items() if not live}, "missing is not deleted"

    loaded.sync("second-look", day)
    assert loaded.run_counter("second-look", "deletions_held") == deleted
    assert loaded.run_counter("second-look", "deleted") == 0, "the guard holds them all"

    loaded.sync("allowed", day, policy=replace(POLICY, allow_mass_delete=True))
    assert loaded.run_counter("allowed", "deleted") == deleted
    assert {i for i, live in loaded.stored().items() if not live} == gone
    # deleted as of when they were first missed
    first_missed = loaded.scalar(
        "SELECT finished_at FROM express_chat.sync_runs WHERE run_id = 'first-look'"
    )
    latest = loaded.scalar("SELECT max(deleted_at) FROM express_chat.contacts")
    assert latest is not None and first_missed is not None and latest <= first_missed
    assert loaded.warehouse.missing_count(ACCOUNT) == 0


def _five_of_a_day_missing(loaded: Setup) -> list[str]:
    """Five contacts of one day deleted at the source, and found missing by the day's run."""
    day = loaded.first + timedelta(days=3)
    of_day = sorted(
        str(c["_id"])
        for c in loaded.sandbox.truth()["contacts"]
        if str(c["createdAt"]).startswith(day.isoformat())
    )[:5]
    loaded.post("delete", {"ids": of_day})
    loaded.sync("first-look", day)
    assert loaded.run_counter("first-look", "missing") == 5
    return of_day


def test_a_few_deletions_are_confirmed_by_the_next_run_without_help(loaded: Setup) -> None:
    live, _ = loaded.truth_ids()
    gone = _five_of_a_day_missing(loaded)
    loaded.sync("second-look", loaded.last)  # any later run looks again
    assert loaded.run_counter("second-look", "deleted") == 5
    assert {i for i, alive in loaded.stored().items() if not alive} == set(gone)
    assert len(live) - 5 == sum(loaded.stored().values())


def test_a_run_in_which_the_source_answered_empty_falsely_deletes_nothing(
    loaded: Setup,
) -> None:
    """The run's first answer comes empty and, asked again, lists records: a server that does
    that may answer any probe of the second look empty by chance (a replica behind a load
    balancer), so no empty answer of this run proves an absence. The next run deletes."""
    _five_of_a_day_missing(loaded)
    loaded.post("outage", {"requests": 1})
    loaded.sync("flaky", loaded.last)
    assert loaded.run_counter("flaky", "deleted") == 0
    assert loaded.warehouse.missing_count(ACCOUNT) == 5, "still missing, for the next run"
    loaded.sync("calm", loaded.last)
    assert loaded.run_counter("calm", "deleted") == 5


def test_a_missing_contact_is_asked_for_once_a_run_among_those_seen_since_it_was(
    loaded: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first look asks for a candidate by its createdAt millisecond among the contacts last
    seen at or after it was (lastSeenAt only moves forward: a bulk import's other contacts stay
    out of the answer); a run that meets a contact already missing leaves it to its second
    look, which asks for it once, by createdAt and by lastSeenAt."""
    asked: list[Window] = []

    def spy(client: ClientConfig, windows: Sequence[Window], **kwargs: Any) -> Iterator[Event]:
        asked.extend(windows)
        return extract(client, windows, **kwargs)

    monkeypatch.setattr(deletions, "extract", spy)
    day = loaded.first + timedelta(days=3)
    of_day = [
        c for c in loaded.sandbox.truth()["contacts"] if str(c["createdAt"]).startswith(str(day))
    ]
    victims = sorted(of_day, key=lambda c: str(c["_id"]))[:5]
    assert any(v.get("lastSeenAt") for v in victims), "no active victim: the test proves less"
    loaded.post("delete", {"ids": [str(v["_id"]) for v in victims]})

    def asked_for(victim: dict[str, Any]) -> list[Window]:
        moment = datetime.fromisoformat(str(victim["createdAt"]))
        return [w for w in asked if w.field == CREATED_AT and w.start == moment]

    loaded.sync("first-look", day)
    assert loaded.run_counter("first-look", "missing") == 5
    for victim in victims:
        (window,) = asked_for(victim)
        seen = victim.get("lastSeenAt")
        assert window.active_since == (seen and datetime.fromisoformat(str(seen)))
    asked.clear()
    loaded.sync("second-look", day)  # reads the day again: the five are candidates again
    assert loaded.run_counter("second-look", "deleted") == 5
    for victim in victims:
        (window,) = asked_for(victim)
        assert window.active_since is None, "the second look asks for the whole millisecond"


def test_a_contact_whose_created_at_moved_is_found_again_not_deleted(loaded: Setup) -> None:
    day = loaded.first + timedelta(days=5)
    of_day = sorted(
        str(c["_id"])
        for c in loaded.sandbox.truth()["contacts"]
        if str(c["createdAt"]).startswith(day.isoformat())
    )[:4]
    moved = loaded.post("move_created", {"ids": of_day, "by_ms": -3 * 86_400_000})["moved"]
    assert moved == 4
    loaded.sync("first-look", day)
    loaded.sync("second-look", loaded.last)
    assert all(loaded.stored()[i] for i in of_day), "none deleted"
    truth = {str(c["_id"]): c for c in loaded.sandbox.truth()["contacts"]}
    with loaded.warehouse.engine.connect() as conn:
        raw: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "SELECT contact_id, raw->>'createdAt' FROM express_chat.contacts "
                    "WHERE contact_id = ANY(:ids)"
                ),
                {"ids": of_day},
            )
            .tuples()
            .all()
        )
    assert raw == {i: truth[i]["createdAt"] for i in of_day}, "stored with the moved createdAt"
    assert loaded.warehouse.missing_count(ACCOUNT) == 0


def _never_active_of(loaded: Setup, day: date, count: int) -> list[str]:
    return sorted(
        str(c["_id"])
        for c in loaded.sandbox.truth()["contacts"]
        if str(c["createdAt"]).startswith(day.isoformat()) and not c.get("lastSeenAt")
    )[:count]


def test_contacts_never_active_are_deleted_once_every_day_is_read_again(database_url: str) -> None:
    """A data fix moves the createdAt of three contacts never active three days back, onto a
    day already read; two others are deleted. Neither stored millisecond nor any activity finds
    the three: until every day has been read since they were missed, none of the five is
    deleted. The read of every day finds the three where they moved to, and deletes the two."""
    config = SandboxConfig(
        contacts=1_200, days=DAYS, seed=17, token=TOKEN, page_size=20, never_active_share=0.1
    )
    with _setup(database_url, config) as loaded:
        loaded.sync("backfill")
        day = loaded.first + timedelta(days=5)
        moved, gone = _never_active_of(loaded, day, 3), _never_active_of(loaded, day, 5)[3:]
        assert len(gone) == 2
        assert loaded.post("move_created", {"ids": moved, "by_ms": -3 * 86_400_000})["moved"] == 3
        assert loaded.post("delete", {"ids": gone})["deleted"] == 2
        loaded.sync("first-look", day)
        assert loaded.warehouse.missing_count(ACCOUNT) == 5
        loaded.sync("second-look", loaded.last)
        assert all(loaded.stored()[i] for i in moved + gone), "none deleted yet"
        loaded.sync("every-day", loaded.first, loaded.last)
        stored = loaded.stored()
        assert all(stored[i] for i in moved), "found where the data fix moved them"
        assert not any(stored[i] for i in gone)
        assert loaded.warehouse.missing_count(ACCOUNT) == 0


def _moved_a_month_back_and_missed(loaded: Setup, count: int) -> list[str]:
    """That many contacts of a day, last active on a later one (else the run's read of the
    day's activity finds them again), their createdAt moved a month back by a data fix, before
    every day any run reads; then the day's run, which records them missing."""
    day = loaded.first + timedelta(days=5)
    of_day = sorted(
        str(c["_id"])
        for c in loaded.sandbox.truth()["contacts"]
        if str(c["createdAt"]).startswith(day.isoformat())
        and str(c.get("lastSeenAt") or "") > (day + timedelta(days=1)).isoformat()
    )[:count]
    moved = loaded.post("move_created", {"ids": of_day, "by_ms": -30 * 86_400_000})["moved"]
    assert moved == count
    loaded.sync("first-look", day)
    assert loaded.warehouse.missing_count(ACCOUNT) == count
    return of_day


def test_a_contact_moved_out_of_every_read_day_and_active_since_is_not_deleted(
    loaded: Setup,
) -> None:
    """A data fix moves createdAt a month back, before every day any run reads, and the contact
    is active today, after the second run's read of activity ends (yesterday): neither stored
    millisecond finds it, its activity since that read does."""
    of_day = _moved_a_month_back_and_missed(loaded, 3)
    assert loaded.post("touch", {"ids": of_day})["touched"] == 3
    loaded.sync("second-look", loaded.last)
    assert all(loaded.stored()[i] for i in of_day), "none deleted"
    assert loaded.warehouse.missing_count(ACCOUNT) == 0


def test_a_lagging_lastseenat_index_during_the_second_look_deletes_nothing(
    loaded: Setup,
) -> None:
    """The contact of the test above, while every query with a lastSeenAt range answers empty
    (that index lagging): its probes by lastSeenAt come back empty, and a control by createdAt
    alone would pass. The control by lastSeenAt does not: nothing is deleted."""
    of_day = _moved_a_month_back_and_missed(loaded, 1)
    assert loaded.post("touch", {"ids": of_day})["touched"] == 1
    loaded.post("outage", {"seconds": 600, "only": "lastSeenAt"})
    loaded.sync("second-look", loaded.last)
    assert loaded.stored()[of_day[0]], "not deleted"
    assert loaded.warehouse.missing_count(ACCOUNT) == 1, "still missing, for the next run"
    loaded.post("outage", {"requests": 0})
    loaded.sync("calm", loaded.last)
    assert loaded.warehouse.missing_count(ACCOUNT) == 0


def test_contacts_created_before_the_start_date_are_true_after_budget_nights(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account older than the start date: contacts created before it but active inside the
    loaded days are stored; agents change some and some are deleted at the source. A night
    asks for a deleted one once at most."""
    asked: list[Window] = []

    def spy(client: ClientConfig, windows: Sequence[Window], **kwargs: Any) -> Iterator[Event]:
        asked.extend(windows)
        return extract(client, windows, **kwargs)

    monkeypatch.setattr(deletions, "extract", spy)
    config = SandboxConfig(contacts=1_500, days=2 * DAYS, seed=23, token=TOKEN, page_size=20)
    with _setup(database_url, config) as setup:
        freshness = Freshness(setup.first, reverify_days=3, lookback_days=1)
        setup.sync("backfill")
        start_ms = setup.first.isoformat()
        with setup.warehouse.engine.connect() as conn:
            older = sorted(
                conn.execute(
                    sa.text("SELECT contact_id FROM express_chat.contacts WHERE created_at < :s"),
                    {"s": start_ms},
                ).scalars()
            )
        assert len(older) > 100, "the test needs contacts stored from before the start date"
        # spread over the days (ids sort by creation): a day losing most of its contacts at
        # once would be taken for an outage
        changed, deleted = older[0::2][:80], older[1::8][:15]
        created = {
            datetime.fromisoformat(str(c["createdAt"]))
            for c in setup.sandbox.truth()["contacts"]
            if c["_id"] in deleted
        }
        setup.post("change", {"ids": changed})
        setup.post("delete", {"ids": deleted})
        policy = replace(POLICY, max_delete_percent=5)
        for night in range(freshness.reverify_days + 1):
            asked.clear()
            plan = plan_nightly(
                setup.last,
                setup.last,
                verified=setup.warehouse.verified_days(ACCOUNT),
                freshness=freshness,
                before=setup.warehouse.days_before(ACCOUNT, freshness.history_start, "UTC"),
            )
            run_sync(
                client=setup.client,
                warehouse=setup.warehouse,
                windows=day_windows(
                    setup.last, setup.last, "UTC", reverify=plan.reverify, active_from=setup.last
                ),
                account=ACCOUNT,
                run_id=f"night-{night}",
                prestart=plan.prestart,
                policy=policy,
            )
            looks = Counter(w.start for w in asked if w.field == CREATED_AT and w.start in created)
            assert max(looks.values(), default=0) <= 1, "a deleted contact was asked for twice"
        truth = {str(c["_id"]): c for c in setup.sandbox.truth()["contacts"]}
        with setup.warehouse.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT contact_id, raw, deleted_at IS NULL FROM express_chat.contacts "
                    "WHERE contact_id = ANY(:ids)"
                ),
                {"ids": older},
            ).all()
            unverified = conn.execute(
                sa.text(
                    "SELECT count(*) FROM express_chat.contacts_current "
                    "WHERE contact_id = ANY(:ids) AND verified_at IS NULL"
                ),
                {"ids": older},
            ).scalar_one()
        stale = [i for i, raw, live in rows if live and raw != truth.get(i)]
        assert not stale, f"{len(stale)} contacts created before the start date are stale"
        assert {i for i, _, live in rows if not live} == set(deleted)
        assert unverified == 0, "each shows when its day was last verified"
        staleness = account_staleness(setup.warehouse, ACCOUNT, freshness, "UTC")
        assert staleness.days > 2 * DAYS - 5, "the days before the start date are counted"
        assert not staleness.unverified


def test_a_run_that_loses_its_account_lock_stops_before_its_next_write(
    database_url: str,
) -> None:
    config = SandboxConfig(
        contacts=3_000, days=DAYS, seed=29, token=TOKEN, page_size=20, latency_ms=50
    )
    with _setup(database_url, config) as setup:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                setup.sync("doomed")
            except BaseException as exc:  # noqa: BLE001 (the test asserts what it was)
                failure.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        with setup.warehouse.engine.connect() as conn:
            holder = None
            while holder is None and worker.is_alive():
                holder = conn.execute(
                    sa.text(
                        "SELECT l.pid FROM pg_locks l JOIN express_chat.sync_runs r "
                        "ON r.run_id = 'doomed' WHERE l.locktype = 'advisory' AND l.granted"
                    )
                ).scalar()
                conn.commit()
            assert holder is not None, "the run took its lock"
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": holder})
            conn.commit()
        worker.join(timeout=120)
        assert not worker.is_alive()
        assert len(failure) == 1 and isinstance(failure[0], LockLostError), failure
        assert setup.run_counter("doomed", "status") == "failed"
        written = setup.scalar("SELECT count(*) FROM express_chat.contacts")
        setup.sync("next")  # the lock is free for the next run, which loads everything
        assert setup.scalar("SELECT count(*) FROM express_chat.contacts") >= written
        live, _ = setup.truth_ids()
        assert {i for i, alive in setup.stored().items() if alive} == live
