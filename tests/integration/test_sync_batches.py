"""The sync loop's batches: normalized on a worker process or in-process, the warehouse is one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse

TOKEN = "0123456789abcdef01234567"
TABLES = {
    "contacts": "contact_id, content_hash, deleted_at IS NULL",
    "contact_tags": "contact_id, tag",
    "contact_attributes": "contact_id, key, value_json::text",
    "contact_segments": "contact_id, segment",
    "contact_history": "contact_id, tracked_hash, is_current",
}


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    with sa.create_engine(url).connect() as conn:
        return {
            table: sorted(
                conn.execute(sa.text(f"SELECT {columns} FROM express_chat.{table}")).all()
            )
            for table, columns in TABLES.items()
        }


def test_a_worker_process_and_this_process_load_the_same_warehouse(
    new_database: Callable[[], str],
) -> None:
    config = SandboxConfig(contacts=1_500, days=10, seed=11, token=TOKEN)
    urls = {"worker": new_database(), "in-process": new_database()}
    runs = {}
    with SandboxServer(config) as sandbox:
        anchor = config.anchor_time
        windows = day_windows(
            (anchor - timedelta(days=10)).date(), (anchor - timedelta(days=1)).date(), "UTC"
        )
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN, max_concurrency=2)
        for mode, url in urls.items():
            warehouse = Warehouse(url)
            warehouse.migrate()
            # a batch smaller than the run starts the worker; one batch for all stays here
            batch_size = 200 if mode == "worker" else 1_000_000
            runs[mode] = run_sync(
                client=client,
                warehouse=warehouse,
                windows=windows,
                account="default",
                run_id=mode,
                batch_size=batch_size,
            )
    worker, here = runs["worker"], runs["in-process"]
    assert worker.loaded == here.loaded
    assert worker.loaded["inserted"] == config.contacts
    # every contact is received once: by the day it was created
    assert worker.extracted["records"] == config.contacts
    assert _tables(urls["worker"]) == _tables(urls["in-process"])


def test_a_rerun_loads_what_changed_and_still_sees_the_rest(database_url: str) -> None:
    config = SandboxConfig(contacts=1_000, days=5, seed=12, token=TOKEN)
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    with SandboxServer(config) as sandbox:
        anchor = config.anchor_time
        windows = day_windows(
            (anchor - timedelta(days=5)).date(), (anchor - timedelta(days=1)).date(), "UTC"
        )
        client = ClientConfig(base_url=sandbox.base_url, token=TOKEN, max_concurrency=2)

        def sync(run_id: str) -> dict[str, int]:
            return run_sync(
                client=client,
                warehouse=warehouse,
                windows=windows,
                account="default",
                run_id=run_id,
                batch_size=300,
            ).loaded

        sync("first")
        with warehouse.engine.begin() as conn:
            undeleted = conn.execute(
                sa.text(
                    "UPDATE express_chat.contacts SET deleted_at = now() "
                    "WHERE contact_id = (SELECT min(contact_id) FROM express_chat.contacts) "
                    "RETURNING contact_id"
                )
            ).scalar_one()
        touched = requests.post(
            f"{sandbox.base_url}/_sandbox/touch", data=b'{"contacts": 10}', timeout=60
        ).json()["touched"]
        again = sync("again")
        truth = {c["_id"]: c for c in sandbox.truth()["contacts"]}
    assert touched == 10
    # the ten touched contacts changed; the one marked deleted comes back; nothing else is written
    assert again["inserted"] == 0
    assert again["updated"] == 11
    with warehouse.engine.connect() as conn:
        deleted = conn.execute(
            sa.text("SELECT deleted FROM express_chat.sync_runs WHERE run_id = 'again'")
        ).scalar_one()
    assert deleted == 0, "records skipped as unchanged still count as seen"
    with warehouse.engine.connect() as conn:
        rows: dict[str, object] = dict(
            conn.execute(
                sa.text(
                    "SELECT contact_id, raw FROM express_chat.contacts WHERE deleted_at IS NULL"
                )
            ).all()
        )
    assert undeleted in rows
    assert rows == truth


SYNC_SCRIPT = """
import sys
from datetime import date

from etl_contacts.source import ClientConfig
from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.warehouse import Warehouse

if __name__ == "__main__":
    base_url, url, token, first, last = sys.argv[1:]
    windows = day_windows(date.fromisoformat(first), date.fromisoformat(last), "UTC")
    run_sync(client=ClientConfig(base_url=base_url, token=token, max_concurrency=2),
             warehouse=Warehouse(url), windows=windows, account="default", run_id="killed",
             batch_size=100)
"""


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def test_the_normalizer_process_ends_with_a_killed_run(database_url: str) -> None:
    Warehouse(database_url).migrate()
    config = SandboxConfig(contacts=3_000, days=10, seed=13, token=TOKEN, latency_ms=20)
    with SandboxServer(config) as sandbox:
        anchor = config.anchor_time
        first, last = (anchor - timedelta(days=10)).date(), (anchor - timedelta(days=1)).date()
        command = [
            sys.executable,
            "-c",
            SYNC_SCRIPT,
            sandbox.base_url,
            database_url,
            TOKEN,
            first.isoformat(),
            last.isoformat(),
        ]
        run = subprocess.Popen(command)
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while not workers and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
            workers = [c for c in _children(run.pid) if "spawn_main" in _command(c)]
        assert workers, "the run never started its normalizer"
        run.kill()
        run.wait()
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.2)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "the worker outlived its run"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""
