"""Counting where it happens, rejects once per content, deletes only from proof (real Postgres)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox.data import render
from etl_contacts.warehouse import LoadCounts, Seen, Warehouse
from etl_contacts.warehouse.absences import Candidate
from etl_contacts.warehouse.warehouse import MIGRATIONS

T0 = 1_700_000_000_000
START = datetime.fromtimestamp(T0 / 1000, UTC)
END = START + timedelta(minutes=1)


def contact(index: int, *, seen: int = 0, status: int = 0, created: int | None = None) -> dict:
    created = T0 + index if created is None else created
    return render(7, index, created, created + seen, created + seen, status)


def iso(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def created(record: dict) -> datetime:
    return datetime.fromisoformat(str(record["createdAt"]))


@pytest.fixture
def warehouse(database_url: str) -> Warehouse:
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    return warehouse


def begin(warehouse: Warehouse, run_id: str) -> None:
    warehouse.begin_run(
        run_id=run_id, account="a", started_at=datetime.now(UTC), windows=[], timezone="UTC"
    )


def load(
    warehouse: Warehouse, run_id: str, records: Sequence[object], unchanged: Sequence[Seen] = ()
) -> LoadCounts:
    frames = normalize(records, account="a")
    return warehouse.load(frames, run_id=run_id, account="a", unchanged=unchanged)


def rows(warehouse: Warehouse, query: str, **params: object) -> list[tuple[object, ...]]:
    with warehouse.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params)]


def test_each_record_is_counted_where_it_happens(warehouse: Warehouse) -> None:
    changed, same, newer, known = contact(1), contact(2), contact(3, seen=1000), contact(4)
    begin(warehouse, "setup")
    load(warehouse, "setup", [changed, same, newer, known])
    begin(warehouse, "run")
    batch = [
        contact(10),  # new
        contact(10),  # an identical copy of it
        contact(11, seen=50, status=5),  # new
        contact(11, seen=5, status=0),  # an older, different copy of it
        contact(1, seen=100, status=5),  # changed
        same,
        contact(3, seen=10, status=2),  # older than the stored row, and different
        {"no": "id"},
        {**contact(12), "createdAt": "never"},
    ]
    counts = load(warehouse, "run", batch, unchanged=[(known["_id"], created(known))])
    assert counts == LoadCounts(inserted=2, updated=1, unchanged=3, refused_older=2, rejected=2)
    received = len(batch) + 1
    assert sum(counts.__dict__.values()) == received
    (run,) = rows(
        warehouse,
        "SELECT inserted, updated, unchanged, refused_older, rejected "
        "FROM express_chat.sync_runs WHERE run_id = 'run'",
    )
    assert run == (2, 1, 3, 2, 2)
    found = rows(warehouse, "SELECT contact_id, status FROM express_chat.contacts")
    statuses = {row[0]: row[1] for row in found}
    assert statuses[contact(11)["_id"]] == "CLOSED" and statuses[newer["_id"]] == "OPEN"


def test_an_older_record_is_quarantined_whole_with_both_times(warehouse: Warehouse) -> None:
    begin(warehouse, "run")
    load(warehouse, "run", [contact(3, seen=1000, status=1)])
    older = contact(3, seen=10, status=2)
    assert load(warehouse, "run", [older]).refused_older == 1
    stored, incoming = iso(T0 + 3 + 1000), iso(T0 + 3 + 10)
    query = "SELECT contact_id, reason, detail, record, run_id FROM express_chat.contact_rejects"
    assert rows(warehouse, query) == [
        (
            older["_id"],
            "older_than_stored",
            f"updatedAt {incoming}, lastSeenAt {incoming}: older than the stored row "
            f"(updatedAt {stored}, lastSeenAt {stored})",
            orjson.loads(orjson.dumps(older)),
            "run",
        )
    ]


def test_a_newer_copy_in_the_same_batch_quarantines_the_older_one(warehouse: Warehouse) -> None:
    begin(warehouse, "run")
    older, newer = contact(5, seen=5, status=0), contact(5, seen=50, status=5)
    counts = load(warehouse, "run", [newer, older])
    assert (counts.inserted, counts.refused_older) == (1, 1)
    first, kept = iso(T0 + 5 + 5), iso(T0 + 5 + 50)
    assert rows(warehouse, "SELECT reason, detail, record FROM express_chat.contact_rejects") == [
        (
            "superseded_in_batch",
            f"updatedAt {first}, lastSeenAt {first}: "
            "not newer than the copy kept from the same batch "
            f"(updatedAt {kept}, lastSeenAt {kept})",
            orjson.loads(orjson.dumps(older)),
        )
    ]


def test_a_record_is_quarantined_once_but_counted_in_every_run(warehouse: Warehouse) -> None:
    begin(warehouse, "setup")
    load(warehouse, "setup", [contact(3, seen=1000)])
    malformed = {**contact(6), "createdAt": "never"}
    # the same content with its keys in another order is the same content
    reordered = dict(reversed(list(malformed.items())))
    for run_id, record in (("first", malformed), ("second", reordered)):
        begin(warehouse, run_id)
        counts = load(warehouse, run_id, [record, contact(3, seen=10, status=2)])
        assert (counts.rejected, counts.refused_older) == (1, 1)
    assert rows(
        warehouse, "SELECT rejected, refused_older FROM express_chat.sync_runs ORDER BY run_id"
    ) == [(1, 1), (1, 1), (0, 0)]  # first, second, setup
    assert rows(
        warehouse, "SELECT reason, run_id FROM express_chat.contact_rejects ORDER BY reason"
    ) == [("older_than_stored", "first"), ("unparseable_date", "first")]


def test_the_migration_keeps_the_first_of_each_duplicate_reject(database_url: str) -> None:
    warehouse = Warehouse(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with warehouse.engine.begin() as conn:
        config.attributes.update(connection=conn, schema="express_chat")
        command.upgrade(config, "0002")
        conn.execute(
            sa.text(
                "INSERT INTO express_chat.contact_rejects "
                "(account, run_id, contact_id, reason, detail, record) VALUES "
                "('a', 'r1', NULL, 'missing_id', 'no _id', '{\"x\": 1, \"y\": 2}'), "
                "('a', 'r2', NULL, 'missing_id', 'no _id', '{\"y\": 2, \"x\": 1}'), "
                "('b', 'r3', NULL, 'missing_id', 'no _id', '{\"x\": 1, \"y\": 2}'), "
                "('a', 'r4', NULL, 'missing_id', 'no _id', '{\"x\": 2}')"
            )
        )
        command.upgrade(config, "head")
    assert rows(
        warehouse, "SELECT account, run_id FROM express_chat.contact_rejects ORDER BY id"
    ) == [("a", "r1"), ("b", "r3"), ("a", "r4")]
    # the loader's digest is the migration's: the same record loaded again is no new row
    begin(warehouse, "r5")
    assert load(warehouse, "r5", [{"y": 2, "x": 1}]).rejected == 1
    assert len(rows(warehouse, "SELECT 1 FROM express_chat.contact_rejects")) == 3


def _window_loaded(warehouse: Warehouse) -> list[dict]:
    """Contacts 0-7 created in the window (7 already marked deleted) and 8 created after it,
    loaded by run `setup`."""
    records = [*(contact(i) for i in range(8)), contact(8, created=T0 + 120_000)]
    begin(warehouse, "setup")
    load(warehouse, "setup", records)
    with warehouse.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE express_chat.contacts SET deleted_at = now() WHERE contact_id = :i"),
            {"i": records[7]["_id"]},
        )
    return records


def test_candidates_are_the_live_contacts_of_the_window_the_run_did_not_receive(
    warehouse: Warehouse,
) -> None:
    records = _window_loaded(warehouse)
    begin(warehouse, "run")
    load(
        warehouse,
        "run",
        # received: loaded, rejected with a usable id (its createdAt unknown), or unchanged
        [records[0], records[1], {**records[3], "createdAt": "never"}],
        unchanged=[(records[2]["_id"], created(records[2])), (records[5]["_id"], None)],
    )
    expected = [(records[i]["_id"], created(records[i])) for i in (4, 6)]
    assert _where(warehouse.deletion_candidates("a", "run", START, END)) == expected
    assert _where(warehouse.deletion_candidates("a", "run", END, END + timedelta(minutes=2))) == [
        (records[8]["_id"], START + timedelta(minutes=2))
    ]
    assert warehouse.deletion_candidates("other", "run", START, END) == []


def _where(candidates: list[Candidate]) -> list[tuple[str, datetime]]:
    return [(c.contact_id, c.created_at) for c in candidates]


def test_mark_deleted_marks_the_unseen_and_closes_their_history(warehouse: Warehouse) -> None:
    records = _window_loaded(warehouse)
    begin(warehouse, "run")
    load(warehouse, "run", records[:4], unchanged=[(records[5]["_id"], created(records[5]))])
    candidates = [c.contact_id for c in warehouse.deletion_candidates("a", "run", START, END)]
    assert candidates == [records[4]["_id"], records[6]["_id"]]
    load(warehouse, "run", [records[4]])  # the source still had it: a hole, loaded
    assert warehouse.mark_deleted("a", "run", candidates) == 1
    gone = records[6]["_id"]
    deleted = rows(
        warehouse, "SELECT contact_id FROM express_chat.contacts WHERE deleted_at IS NOT NULL"
    )
    assert sorted(deleted) == sorted([(gone,), (records[7]["_id"],)])
    history = rows(
        warehouse,
        "SELECT h.is_current, h.valid_to = c.deleted_at FROM express_chat.contact_history h "
        "JOIN express_chat.contacts c USING (account, contact_id) WHERE contact_id = :i",
        i=gone,
    )
    assert history == [(False, True)]
    assert warehouse.mark_deleted("a", "run", candidates) == 0, "marked once"
    assert rows(warehouse, "SELECT deleted FROM express_chat.sync_runs WHERE run_id = 'run'") == [
        (1,)
    ]


def test_a_contact_that_comes_back_is_live_with_a_new_current_version(
    warehouse: Warehouse,
) -> None:
    record = contact(1)
    begin(warehouse, "setup")
    load(warehouse, "setup", [record])
    begin(warehouse, "run")
    assert warehouse.mark_deleted("a", "run", [record["_id"]]) == 1
    begin(warehouse, "later")
    # the very same record: equal tracked fields, equal source times
    assert load(warehouse, "later", [record]).updated == 1
    assert rows(warehouse, "SELECT deleted_at FROM express_chat.contacts") == [(None,)]
    history = rows(
        warehouse,
        "SELECT is_current, valid_to IS NULL, valid_from >= lag(valid_to) OVER w, "
        "tracked_hash = lag(tracked_hash) OVER w FROM express_chat.contact_history "
        "WINDOW w AS (ORDER BY valid_from) ORDER BY valid_from",
    )
    assert history == [(False, False, None, None), (True, True, True, True)]
    assert load(warehouse, "later", [record]).unchanged == 1


def test_finish_run_records_holes_and_whether_ranges_combine(warehouse: Warehouse) -> None:
    for run_id, stats in (
        ("combined", {"holes_repaired": 2, "ranges_combined": True}),
        ("separate", {"ranges_combined": False}),
        ("unknown", {"requests": 1}),
    ):
        begin(warehouse, run_id)
        warehouse.finish_run(run_id=run_id, status="success", stats=stats, error=None)
    assert rows(
        warehouse,
        "SELECT run_id, holes_repaired, ranges_combined FROM express_chat.sync_runs "
        "ORDER BY run_id",
    ) == [("combined", 2, True), ("separate", 0, False), ("unknown", 0, None)]
