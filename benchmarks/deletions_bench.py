"""What proving deletions costs: the requests of the two looks, on data with bulk imports.

    python benchmarks/deletions_bench.py --contacts 4000 --deleted 30

A sandbox of `--days` days with 30 % of its contacts in bulk imports (100-400 contacts sharing
one createdAt millisecond), loaded whole; then contacts are deleted at the source, two thirds
of them from bulk imports, and two runs read the days they were created on: the first run's
first look records them missing, the second run's second look deletes them. Printed per run:
its requests, those of the looks (`probe_requests`) and what it found.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import orjson
import requests

from etl_contacts.pipeline.deletions import DeletePolicy
from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.databases import scratch_database
from etl_contacts.warehouse.embedded import embedded_database_url

BULK = 40  # contacts sharing one createdAt millisecond, at least, to count as a bulk import


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=4_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--deleted", type=int, default=30)
    parser.add_argument("--page-size", type=int, default=25)
    args = parser.parse_args()
    config = SandboxConfig(
        contacts=args.contacts, days=args.days, page_size=args.page_size, bulk_import_share=0.3
    )
    print(
        f"machine: {os.cpu_count()} cores; {args.contacts:,} contacts over {args.days} days, "
        f"30 % in bulk imports, pages of {args.page_size}"
    )
    server_url = embedded_database_url(Path(".etl_contacts"), database="postgres")
    with (
        scratch_database(server_url, prefix="deletions_bench") as url,
        SandboxServer(config) as sandbox,
    ):
        warehouse = Warehouse(url)
        warehouse.migrate()
        client = ClientConfig(base_url=sandbox.base_url, token=DEMO_TOKEN)

        def sync(run_id: str, days: list[date]) -> None:
            windows = day_windows(min(days), max(days), "UTC", reverify=days)
            result = run_sync(
                client=client,
                warehouse=warehouse,
                windows=windows,
                account="default",
                run_id=run_id,
                policy=DeletePolicy(suspect_pause_seconds=0.05),
            )
            figures = {k: int(v) for k, v in result.extracted.items()}
            print(
                f"| {run_id} | {len(days)} | {figures.get('requests', 0):,} "
                f"| {figures.get('probe_requests', 0):,} | {figures.get('missing', 0)} "
                f"| {figures.get('deleted', 0)} |",
                flush=True,
            )

        first = (config.anchor_time - timedelta(days=args.days)).date()
        print("| run | days read | requests | of which the looks | missing | deleted |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        sync("load", [first + timedelta(days=n) for n in range(args.days)])
        contacts = sandbox.truth()["contacts"]
        shared = Counter(c["createdAt"] for c in contacts)
        chosen = random.Random(3)
        in_bulk = [c for c in contacts if shared[c["createdAt"]] >= BULK]
        victims = chosen.sample(in_bulk, 2 * args.deleted // 3)
        victims += chosen.sample(contacts, args.deleted - len(victims))
        ids = sorted({str(v["_id"]) for v in victims})
        print(f"| deleted at the source | | | | {len(ids)} | |")
        requests.post(
            f"{sandbox.base_url}/_sandbox/delete", data=orjson.dumps({"ids": ids}), timeout=60
        ).raise_for_status()
        days = sorted({date.fromisoformat(str(v["createdAt"])[:10]) for v in victims})
        sync("first look", days)
        sync("second look", days)
        warehouse.engine.dispose()


if __name__ == "__main__":
    main()
