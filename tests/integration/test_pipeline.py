"""The whole path through Dagster: sandbox over HTTP -> source -> transform -> embedded Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from etl_contacts.defs.assets import build_contact_assets
from etl_contacts.defs.partitions import daily_partitions
from etl_contacts.defs.resources import ExpressChatResource, WarehouseResource
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.settings import Settings

TOKEN = "0123456789abcdef01234567"
DAYS = 6


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(contacts=900, days=DAYS, seed=11, token=TOKEN)) as server:
        yield server


def _materialize(
    sandbox: SandboxServer, database_url: str, first: date, last: date
) -> dg.ExecuteInProcessResult:
    settings = Settings.from_env(
        {"ETL_CONTACTS_START_DATE": (first - timedelta(days=30)).isoformat()}
    )
    assets = build_contact_assets(daily_partitions(settings), freshness=settings.freshness)
    return dg.materialize(
        [assets],
        resources={
            "express_chat": ExpressChatResource(base_url=sandbox.base_url, token=TOKEN),
            "warehouse": WarehouseResource(database_url=database_url),
        },
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def _metadata(result: dg.ExecuteInProcessResult, table: str) -> dict[str, object]:
    for materialization in result.asset_materializations_for_node("load_contacts_default"):
        if materialization.asset_key == dg.AssetKey(table):
            return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError(f"no materialization of {table}")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_three_days_match_the_source_and_a_rerun_changes_nothing(
    sandbox: SandboxServer, database_url: str
) -> None:
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=4), today - timedelta(days=2)
    result = _materialize(sandbox, database_url, first, last)
    assert result.success

    lo = datetime(first.year, first.month, first.day, tzinfo=UTC)
    hi = lo + timedelta(days=3)
    truth = sandbox.truth()["contacts"]
    expected = {c["_id"]: c for c in truth if lo <= _parse(c["createdAt"]) < hi}
    assert len(expected) > 50, "the sandbox should create contacts on each of those days"

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = {
            r.contact_id: r
            for r in conn.execute(
                sa.text("SELECT contact_id, status, created_at, email FROM express_chat.contacts")
            )
        }
        tags = conn.execute(sa.text("SELECT count(*) FROM express_chat.contact_tags")).scalar()
    missing = set(expected) - set(rows)
    assert not missing, f"{len(missing)} contacts created in the range were not loaded"
    for contact_id, source in expected.items():
        row = rows[contact_id]
        assert row.status == source.get("status")
        assert row.created_at == _parse(source["createdAt"])
        email = ((source.get("profile") or {}).get("userDetails") or {}).get("contact", {}) or {}
        if isinstance(email.get("email"), str) and email["email"].strip():
            assert row.email == email["email"].strip().lower()
    expected_tags = sum(
        len(set((c.get("profile") or {}).get("userDetails", {}).get("tags") or []))
        for c in truth
        if c["_id"] in rows
    )
    assert tags == expected_tags
    first_run = _metadata(result, "contacts")
    assert first_run["inserted"] == len(rows)
    assert first_run["dagster/row_count"] == len(rows)

    versions = "SELECT contact_id, xmin::text FROM express_chat.contacts"
    with engine.connect() as conn:
        before: dict[str, str] = dict(conn.execute(sa.text(versions)).all())
    again = _materialize(sandbox, database_url, first, last)
    assert again.success
    second_run = _metadata(again, "contacts")
    assert second_run["inserted"] == 0
    assert second_run["updated"] == 0
    # a contact both created and seen in the range arrives twice: once per stream
    unchanged = second_run["unchanged"]
    assert isinstance(unchanged, int) and unchanged >= len(rows), unchanged
    with engine.connect() as conn:
        assert dict(conn.execute(sa.text(versions)).all()) == before, "no row was rewritten"


def test_the_definitions_load() -> None:
    from etl_contacts.defs.definitions import SYNC_JOB, build_definitions

    defs = build_definitions(Settings.from_env({}))
    job = defs.resolve_job_def(SYNC_JOB)
    assert job.partitions_def is not None
    assert defs.resolve_schedule_def("nightly_sync_contacts").cron_schedule == "0 2 * * *"
