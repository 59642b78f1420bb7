"""Requests our extraction needs versus plain offset paging, and what concurrency buys.

    python benchmarks/extraction_bench.py --contacts 5000 --days 30

Calm sandbox (nothing changes), the same daily windows for both; then a cold fetch with 100 ms
of latency per request at concurrency 1 and 4.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from datetime import timedelta

from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig, ExtractStats, Window, extract
from etl_contacts.source.naive import offset_paging


def windows(config: SandboxConfig) -> list[Window]:
    anchor = config.anchor_time
    return [
        Window(field, anchor - timedelta(days=d + 1), anchor - timedelta(days=d))
        for d in range(config.days)
        for field in ("createdAt", "lastSeenAt")
    ]


def ours(config: SandboxConfig, concurrency: int) -> tuple[int, float]:
    with SandboxServer(config) as sandbox:
        client = ClientConfig(
            base_url=sandbox.base_url, token=DEMO_TOKEN, max_concurrency=concurrency
        )
        stats = ExtractStats()
        started = time.monotonic()
        for _ in extract(client, windows(config), stats=stats):
            pass
        return stats.get("requests"), time.monotonic() - started


def naive(config: SandboxConfig) -> int:
    with SandboxServer(config) as sandbox:
        client = ClientConfig(base_url=sandbox.base_url, token=DEMO_TOKEN)
        stats = ExtractStats()
        for window in windows(config):
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
    print("| page size | sort | ours (requests) | offset paging | ratio |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for page_size in (7, 20, 100):
        for sort in ("lastSeenAt", "createdAt", "_id"):
            config = SandboxConfig(
                contacts=args.contacts,
                days=args.days,
                page_size=page_size,
                sort=sort,  # type: ignore[arg-type]
            )
            mine, _ = ours(config, 4)
            theirs = naive(config)
            print(f"| {page_size} | {sort} | {mine} | {theirs} | {mine / theirs:.2f} |")
    slow = replace(
        SandboxConfig(contacts=args.contacts // 5, days=args.days), latency_ms=args.latency_ms
    )
    timings = {c: ours(slow, c)[1] for c in (1, 4, 8)}
    print(f"\nwith {args.latency_ms:.0f} ms per request ({slow.contacts:,} contacts):")
    for concurrency, seconds in timings.items():
        print(f"  concurrency {concurrency}: {seconds:.1f} s ({timings[1] / seconds:.1f}x)")


if __name__ == "__main__":
    main()
