"""What the freshness promise costs: the requests of one nightly run, by account size.

    python benchmarks/nightly_bench.py --contacts 200000 1000000 --days 365

A calm sandbox holding `--days` of history, every day verified once, the oldest verifications
first in line: the nightly reads yesterday, the last `lookback` days' activity and about
1 / budget of the history. Expected: about contacts / (budget x page size) plus yesterday's.
Its floor is the pages those records fill, `ceil(records received / page size)`: the contacts
re-verified, yesterday's and the lookback's active ones. Each size runs twice: with the
sandbox's 10 % of contacts in bulk imports, and with 30 % (imports of 100-400 contacts sharing
one createdAt millisecond, a quarter of them one lastSeenAt too).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from datetime import UTC, datetime, timedelta

from etl_contacts.pipeline.nightly import plan_nightly
from etl_contacts.pipeline.sync import day_windows
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.settings import DEFAULT_LOOKBACK_DAYS, DEFAULT_REVERIFY_DAYS, Freshness
from etl_contacts.source import ClientConfig, ExtractStats, extract

BULK_SHARES = (0.1, 0.3)


def nightly_requests(
    contacts: int, days: int, budget: int, page_size: int, bulk_share: float
) -> tuple[int, int]:
    """Requests and records of the nightly run, the history verified in the order of its
    days."""
    config = SandboxConfig(
        contacts=contacts, days=days, page_size=page_size, bulk_import_share=bulk_share
    )
    yesterday = config.anchor_time.date() - timedelta(days=1)
    freshness = Freshness(yesterday - timedelta(days=days - 1), budget, DEFAULT_LOOKBACK_DAYS)
    verified_at = datetime(2000, 1, 1, tzinfo=UTC)
    verified = {
        day: verified_at + timedelta(minutes=n)
        for n, day in enumerate(freshness.history(yesterday))
    }
    plan = plan_nightly(yesterday, yesterday, verified=verified, freshness=freshness)
    windows = day_windows(
        yesterday, yesterday, "UTC", reverify=plan.reverify, active_from=plan.lookback_from
    )
    stats = ExtractStats()
    with SandboxServer(config) as sandbox:
        client = ClientConfig(base_url=sandbox.base_url, token=DEMO_TOKEN, max_concurrency=4)
        for _ in extract(client, windows, stats=stats):
            pass
    return stats.get("requests"), stats.get("records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--budget", type=int, default=DEFAULT_REVERIFY_DAYS)
    parser.add_argument("--page-size", type=int, default=20)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"nightly with budget {args.budget} days, lookback {DEFAULT_LOOKBACK_DAYS} days, "
        f"{args.days} days of history, pages of {args.page_size}"
    )
    print(
        "| contacts | in bulk imports | requests | records received "
        "| contacts / (budget x page size) + a day's | page floor of those records | x floor |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for contacts in args.contacts:
        for share in BULK_SHARES:
            requests, records = nightly_requests(
                contacts, args.days, args.budget, args.page_size, share
            )
            days_read = math.ceil(args.days / args.budget) + 1
            expected = math.ceil(contacts * days_read / args.days / args.page_size)
            floor = math.ceil(records / args.page_size)
            print(
                f"| {contacts:,} | {share:.0%} | {requests:,} | {records:,} | {expected:,} "
                f"| {floor:,} | {requests / floor:.2f} |"
            )


if __name__ == "__main__":
    main()
