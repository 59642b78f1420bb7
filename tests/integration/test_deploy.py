"""deploy/dagster.yaml for real: PostgreSQL instance storage, a backfill through the run queue."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from process_groups import ProcessGroup
from sqlalchemy.engine import make_url

from etl_contacts.sandbox import SandboxConfig, SandboxServer

TOKEN = "0badc0de0badc0de0badc0de"


def test_a_three_day_backfill_runs_through_the_queue(
    new_database: Callable[[], str],
    repo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(repo_root / "deploy" / "dagster.yaml", home / "dagster.yaml")
    warehouse_url = new_database()
    # dagster-postgres connects through psycopg2
    instance_url = make_url(new_database()).set(drivername="postgresql+psycopg2")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", instance_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ETL_CONTACTS_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("ETL_CONTACTS_START_DATE", "2026-01-01")
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=2)
    bin_dir = Path(sys.executable).parent
    # enough contacts for several batches: the sync's normalizer process starts inside the step
    with SandboxServer(SandboxConfig(contacts=6_000, days=5, token=TOKEN)) as sandbox:
        monkeypatch.setenv("EXPRESS_CHAT_BASE_URL", sandbox.base_url)
        tags = (
            f'{{"dagster/asset_partition_range_start": "{first}", '
            f'"dagster/asset_partition_range_end": "{yesterday}"}}'
        )
        subprocess.run(
            [
                bin_dir / "dagster",
                "job",
                "launch",
                "-w",
                "workspace.yaml",
                "-j",
                "sync_contacts",
                "--tags",
                tags,
            ],
            cwd=repo_root,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with dg.DagsterInstance.get() as instance:
            (queued,) = instance.get_runs()
            assert queued.status == dg.DagsterRunStatus.QUEUED
            # its own group with default signals: stopped whole even under a shell ignoring TERM
            with ProcessGroup(
                [bin_dir / "dagster-daemon", "run", "-w", "workspace.yaml"],
                name="dagster-daemon",
                cwd=repo_root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ):
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    run = instance.get_run_by_id(queued.run_id)
                    if run is not None and run.is_finished:
                        break
                    time.sleep(1)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            partitions = instance.get_materialized_partitions(dg.AssetKey("contacts"))
        low, high = first.isoformat(), (yesterday + timedelta(days=1)).isoformat()
        expected = {
            c["_id"]
            for c in sandbox.truth()["contacts"]
            if low <= c["createdAt"] < high or low <= c["lastSeenAt"] < high
        }
    assert partitions == {str(first + timedelta(days=d)) for d in range(3)}
    with sa.create_engine(warehouse_url).connect() as conn:
        runs = conn.execute(sa.text("SELECT status FROM express_chat.sync_runs")).scalars().all()
        contacts = set(
            conn.execute(sa.text("SELECT contact_id FROM express_chat.contacts")).scalars()
        )
    assert runs == ["success"]
    assert len(expected) > 3_000, "more records than one batch of the sync"
    assert contacts == expected
