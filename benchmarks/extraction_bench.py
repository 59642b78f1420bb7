"""Requests a backfill needs against the page floor, and what concurrency buys.

    python benchmarks/extraction_bench.py --contacts 5000 --days 30

Calm sandbox (nothing changes, 2 % of contacts never active), the windows a run over those days
reads; the page floor is `ceil(contacts / page size) + 2 per day`, and plain offset paging over
one createdAt window per day is shown beside it. Then a cold fetch with 100 ms of latency per
request at concurrency 1, 4 and 8.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import replace
from datetime import timedelta

from etl_contacts.pipeline.sync import day_windows
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.sandbox.config import SORTS
from etl_contacts.source import ClientConfig, ExtractStats, Window, extract
from etl_contacts.source.naive import offset_paging


def windows(config: SandboxConfig) -> list[Window]:
    anchor = config.anchor_time
    return day_windows(
        (anchor - timedelta(days=config.days)).date(), (anchor - timedelta(days=1)).date(), "UTC"
    )


def ours(config: SandboxConfig, concurrency: int) -> tuple[ExtractStats, float]:
    with SandboxServer(config) as sandbox:
        client = ClientConfig(
            base_url=sandbox.base_url, token=DEMO_TOKEN, max_concurrency=concurrency
        )
        stats = ExtractStats()
        started = time.monotonic()
        for _ in extract(client, windows(config), stats=stats):
            pass
        return stats, time.monotonic() - started


def naive(config: SandboxConfig) -> int:
    with SandboxServer(config) as sandbox:
        client = ClientConfig(base_url=sandbox.base_url, token=DEMO_TOKEN)
        stats = ExtractStats()
        for window in windows(config):
            if window.field == "createdAt":
                for _ in offset_paging(client, window, stats):
                    pass
        return stats.get("requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {args.contacts:,} contacts over {args.days} days")
    print(
        "| page size | sort | requests | records received | requests per contact "
        "| page floor | x floor | offset paging |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for page_size in (7, 20, 100):
        for sort in SORTS:
            config = SandboxConfig(
                contacts=args.contacts,
                days=args.days,
                page_size=page_size,
                sort=sort,
                never_active_share=0.02,
            )
            stats, _ = ours(config, 4)
            requests = stats.get("requests")
            floor = math.ceil(args.contacts / page_size) + 2 * args.days
            print(
                f"| {page_size} | {sort} | {requests:,} | {stats.get('records'):,} "
                f"| {requests / args.contacts:.3f} | {floor:,} | {requests / floor:.3f} "
                f"| {naive(config):,} |"
            )
    slow = replace(
        SandboxConfig(contacts=args.contacts // 5, days=args.days), latency_ms=args.latency_ms
    )
    timings = {c: ours(slow, c)[1] for c in (1, 4, 8)}
    print(f"\nwith {args.latency_ms:.0f} ms per request ({slow.contacts:,} contacts):")
    for concurrency, seconds in timings.items():
        print(f"  concurrency {concurrency}: {seconds:.1f} s ({timings[1] / seconds:.1f}x)")


if __name__ == "__main__":
    main()
