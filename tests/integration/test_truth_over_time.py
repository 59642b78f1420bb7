"""Weeks of nights against a sandbox that lives on: customers active, agents changing contacts
(updatedAt moves, lastSeenAt does not), contacts created and deleted at any age, a few faults.
After every nightly run the warehouse is compared with the sandbox's truth."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import requests
import sqlalchemy as sa

from etl_contacts.pipeline.deletions import DeletePolicy
from etl_contacts.pipeline.nightly import plan_nightly
from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.settings import Freshness
from etl_contacts.source import ClientConfig, Window
from etl_contacts.timestamps import parse_ms
from etl_contacts.warehouse import Warehouse

TOKEN = "0badc0de0badc0de0badc0de"
HISTORY_DAYS = 20
DAY_MS = 86_400_000
A_DAY = {"touch": 30, "change": 25, "create": 15, "delete": 6}


@dataclass
class Month:
    """What the nights did: delays (days) from a change or deletion to the warehouse."""

    delays: list[float] = field(default_factory=list)
    never_active_deletions: list[float] = field(default_factory=list)
    """Delays of deletions of contacts never active: these wait for a whole rotation more."""
    stale_after_budget: list[int] = field(default_factory=list)
    wrongly_deleted: list[int] = field(default_factory=list)

    def summary(self) -> str:
        if not self.delays:
            return "no change reached the warehouse"
        cuts = statistics.quantiles(self.delays, n=20)
        return (
            f"{len(self.delays)} changes and deletions reached the warehouse after p50 "
            f"{statistics.median(self.delays):.2f} d, p95 {cuts[-1]:.2f} d, max "
            f"{max(self.delays):.2f} d; {len(self.never_active_deletions)} deletions of contacts "
            f"never active after max {max(self.never_active_deletions, default=0):.2f} d"
        )


def _warehouse_rows(warehouse: Warehouse) -> tuple[dict[str, str], set[str], set[str]]:
    """Live contacts' updatedAt as stored, the ids stored as deleted, and those never active."""
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT contact_id, raw->>'updatedAt', deleted_at IS NULL, last_seen_at IS NULL "
                "FROM express_chat.contacts"
            )
        ).all()
    return (
        {i: u for i, u, live, _ in rows if live},
        {i for i, _, live, _ in rows if not live},
        {i for i, _, _, never in rows if never},
    )


def _anchor(nights: int) -> datetime:
    """Where the generated history ends: far enough back that the simulated nights end in the
    past (the transform refuses timestamps from the future)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=nights + 5)


def _live_a_month(nights: int, freshness: Freshness | None, database_url: str) -> Month:
    """The nightly after each simulated day; `freshness` None: only yesterday, as before."""
    anchor = _anchor(nights)
    config = SandboxConfig(
        contacts=1_500,
        days=HISTORY_DAYS,
        seed=21,
        token=TOKEN,
        anchor=anchor,
        never_active_share=0.05,
        faults={"500": 0.02, "hide": 0.01},
        clock_offset_ms=int((anchor.timestamp() - time.time()) * 1000),
    )
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    month = Month()
    behind: dict[str, int] = {}  # contact -> since when (ms) its row is behind the source
    with SandboxServer(config) as sandbox:
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN, backoff_initial=0.01)

        def sync(windows: list[Window], run_id: str) -> None:
            # at the default guard: a night in which an answer came back empty where records
            # were (the hide fault leaves a one-record page empty) holds its deletions for the
            # next, which weighs each night's finds alone
            run_sync(
                client=client,
                warehouse=warehouse,
                windows=windows,
                account="default",
                run_id=run_id,
            )

        first = anchor.date() - timedelta(days=HISTORY_DAYS)
        sync(day_windows(first, anchor.date() - timedelta(days=1), "UTC"), "backfill")
        for night in range(nights):
            answer = requests.post(
                f"{sandbox.base_url}/_sandbox/day", data=orjson.dumps(A_DAY), timeout=30
            )
            now_ms = parse_ms(answer.json()["now"])
            assert now_ms is not None
            yesterday = (anchor + timedelta(days=night)).date()
            if freshness is None:
                windows = day_windows(yesterday, yesterday, "UTC")
            else:
                verified = warehouse.verified_days("default")
                plan = plan_nightly(yesterday, yesterday, verified=verified, freshness=freshness)
                windows = day_windows(
                    yesterday,
                    yesterday,
                    "UTC",
                    reverify=plan.reverify,
                    active_from=plan.lookback_from,
                )
            sync(windows, f"night-{night}")
            truth = sandbox.truth()
            stored, deleted, never = _warehouse_rows(warehouse)
            changes = {str(c["_id"]): str(c["updatedAt"]) for c in truth["contacts"]}
            deletions = {str(c["_id"]): str(c["deletedAt"]) for c in truth["deleted"]}
            rotating = never & deletions.keys()  # deleted once every day is read again
            for contact, when in [*changes.items(), *deletions.items()]:
                current = (
                    contact in deleted if contact in deletions else stored.get(contact) == when
                )
                moment = parse_ms(when) or now_ms
                delays = month.never_active_deletions if contact in rotating else month.delays
                if current and contact in behind:
                    delays.append((now_ms - behind.pop(contact)) / DAY_MS)
                elif current and moment > now_ms - DAY_MS:  # today's change, loaded tonight
                    delays.append((now_ms - moment) / DAY_MS)
                elif not current and (contact in stored or contact in deleted):
                    behind[contact] = min(behind.get(contact, moment), moment)
            # a deletion needs a second look, the night after the one that found it missing;
            # one of a contact never active, a whole rotation after that one
            budget = freshness.reverify_days if freshness else 3
            limit = now_ms - (budget + 1) * DAY_MS
            late = {c for c, since in behind.items() if since < limit}
            month.stale_after_budget.append(
                len(late - rotating)
                + sum(behind[c] < limit - budget * DAY_MS for c in late & rotating)
            )
            month.wrongly_deleted.append(len(deleted & changes.keys()))
    return month


def test_a_month_of_nights_keeps_every_row_within_the_budget(database_url: str) -> None:
    nights = 30
    freshness = Freshness(_anchor(nights).date() - timedelta(days=HISTORY_DAYS), 3, 2)
    month = _live_a_month(nights, freshness, database_url)
    print(f"\nbudget 3, lookback 2, {nights} nights: {month.summary()}")
    assert month.delays, "no change reached the warehouse: the test proves nothing"
    assert month.stale_after_budget == [0] * nights, "changes older than the budget are missing"
    assert month.wrongly_deleted == [0] * nights
    assert max(month.delays) <= 3 + 1 + 1
    assert month.never_active_deletions, "no contact never active was deleted: proves nothing"
    assert max(month.never_active_deletions) <= 3 + 1 + 3 + 1


def test_reading_only_yesterday_leaves_agents_changes_and_deletions_behind(
    database_url: str,
) -> None:
    """The scenario above has teeth: what the nightly did before the freshness budget fails it."""
    nights = 6
    month = _live_a_month(nights, None, database_url)
    print(
        f"\nyesterday only, {nights} nights: {month.summary()}; "
        f"behind more than 3 days, night by night: {month.stale_after_budget}"
    )
    assert month.stale_after_budget[-1] > 0


def test_the_nightly_run_budget_plus_one_times_leaves_the_warehouse_equal_to_the_source(
    database_url: str,
) -> None:
    config = SandboxConfig(contacts=800, days=12, seed=5, token=TOKEN, never_active_share=0.05)
    anchor = config.anchor_time
    freshness = Freshness(anchor.date() - timedelta(days=12), reverify_days=4, lookback_days=2)
    yesterday = anchor.date() - timedelta(days=1)
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    with SandboxServer(config) as sandbox:
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN)
        run_sync(
            client=client,
            warehouse=warehouse,
            account="default",
            run_id="backfill",
            windows=day_windows(freshness.history_start, yesterday, "UTC"),
        )
        for action, count in (("change", 120), ("delete", 25)):
            requests.post(
                f"{sandbox.base_url}/_sandbox/{action}",
                data=orjson.dumps({"contacts": count}),
                timeout=30,
            )
        # budget nights verify every day; deletions found on the last need the next night's
        # look, those of contacts never active every day read again since they were missed
        for night in range(2 * freshness.reverify_days + 1):
            verified = warehouse.verified_days("default")
            plan = plan_nightly(yesterday, yesterday, verified=verified, freshness=freshness)
            run_sync(
                client=client,
                warehouse=warehouse,
                account="default",
                run_id=f"n{night}",
                # 25 of 800 contacts deleted at once: 3 %, past the default guard of 1 %
                policy=DeletePolicy(max_delete_percent=5),
                windows=day_windows(
                    yesterday,
                    yesterday,
                    "UTC",
                    reverify=plan.reverify,
                    active_from=plan.lookback_from,
                ),
            )
        truth = sandbox.truth()
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT contact_id, raw, deleted_at IS NULL FROM express_chat.contacts")
        ).all()
        tags = conn.execute(
            sa.text(
                "SELECT contact_id, tag FROM express_chat.contact_tags "
                "JOIN express_chat.contacts_current USING (account, contact_id) ORDER BY 1, 2"
            )
        ).all()
        unverified = conn.execute(
            sa.text("SELECT count(*) FROM express_chat.contacts_current WHERE verified_at IS NULL")
        ).scalar_one()
    assert unverified == 0, "every row shows when its day was last read completely"
    live = {i: raw for i, raw, alive in rows if alive}
    assert live == {str(c["_id"]): c for c in truth["contacts"]}
    assert {i for i, _, alive in rows if not alive} == {str(c["_id"]) for c in truth["deleted"]}
    # the child rows are those of the source's records as they stand
    expected = normalize(truth["contacts"], account="default").tags
    assert [tuple(t) for t in tags] == sorted(zip(expected.contact_id, expected.tag, strict=True))
