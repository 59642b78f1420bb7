"""kill -9 a sync at random moments; after one clean rerun nothing may be lost or doubled.

    python benchmarks/chaos.py --kills 20

Each round: a fresh warehouse, a sync process killed with SIGKILL somewhere between its start
and its end (fetch, COPY, commit, between windows), then two checks. Right after the kill,
`sync_state` may only claim windows that are completely loaded. After one clean rerun, the
warehouse must hold every contact of the range exactly once.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig, Window
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.databases import create_database, drop_database
from etl_contacts.warehouse.embedded import embedded_database_url

DAYS = 20
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def windows() -> list[Window]:
    return day_windows(
        (ANCHOR - timedelta(days=DAYS)).date(), (ANCHOR - timedelta(days=1)).date(), "UTC"
    )


def sync(url: str, base_url: str, run_id: str) -> None:
    client = ClientConfig(base_url=base_url, token=DEMO_TOKEN, max_concurrency=4)
    run_sync(
        client=client, warehouse=Warehouse(url), windows=windows(), account="default", run_id=run_id
    )


def fresh_database(server_url: str, template: str | None) -> str:
    return create_database(server_url, f"chaos_{uuid.uuid4().hex[:10]}", template=template)


def database_name(url: str) -> str:
    """The database of a URL `fresh_database` made: it always names one."""
    name = sa.make_url(url).database
    assert name, url
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--worker", nargs=3, metavar=("URL", "BASE_URL", "RUN_ID"))
    args = parser.parse_args()
    if args.worker:
        sync(*args.worker)
        return
    server_url = embedded_database_url(Path(".etl_contacts"), database="postgres")
    blueprint = Warehouse(fresh_database(server_url, None))
    template = str(blueprint.engine.url.database)
    blueprint.migrate()
    blueprint.engine.dispose()  # a template database must have no open session
    config = SandboxConfig(contacts=args.contacts, days=DAYS, seed=12, anchor=ANCHOR)
    rng = random.Random(7)
    lost = doubled = false_claims = 0
    with SandboxServer(config) as sandbox:
        expected = {c["_id"] for c in sandbox.truth()["contacts"]}
        started = time.monotonic()
        clean = fresh_database(server_url, template)
        sync(clean, sandbox.base_url, "clean")
        clean_seconds = time.monotonic() - started
        drop_database(server_url, database_name(clean))
        for round_number in range(args.kills):
            url = fresh_database(server_url, template)
            command = [sys.executable, __file__, "--worker", url, sandbox.base_url, "killed"]
            worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, clean_seconds + 1.5))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                marks = conn.execute(
                    sa.text("SELECT stream, watermark FROM express_chat.sync_state")
                ).all()
                stored = set(
                    conn.execute(sa.text("SELECT contact_id FROM express_chat.contacts")).scalars()
                )
            truth = sandbox.truth()["contacts"]
            for stream, mark in marks:
                claimed = {
                    c["_id"] for c in truth if c[stream] < mark.isoformat().replace("+00:00", "Z")
                }
                false_claims += len(claimed - stored)
            sync(url, sandbox.base_url, f"rerun-{round_number}")
            with engine.connect() as conn:
                ids = (
                    conn.execute(sa.text("SELECT contact_id FROM express_chat.contacts"))
                    .scalars()
                    .all()
                )
                tags = conn.execute(
                    sa.text(
                        "SELECT count(*) - count(DISTINCT (contact_id, tag)) "
                        "FROM express_chat.contact_tags"
                    )
                ).scalar_one()
            engine.dispose()
            drop_database(server_url, database_name(url))
            lost += len(expected - set(ids))
            doubled += len(ids) - len(set(ids)) + int(tags)
            print(f"round {round_number + 1}: killed, rerun: {len(set(ids))} contacts", flush=True)
    drop_database(server_url, template)
    print(
        f"machine: {os.cpu_count()} cores; {args.contacts} contacts over {DAYS} days; "
        f"a clean sync takes {clean_seconds:.1f} s"
    )
    print(
        f"{args.kills} kills, {lost} lost, {doubled} duplicated, "
        f"{false_claims} contacts behind a watermark that were not loaded"
    )
    sys.exit(1 if lost or doubled or false_claims else 0)


if __name__ == "__main__":
    main()
