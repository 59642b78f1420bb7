"""`make bench`: what a night costs, case by case, on this machine.

    BENCH_CONTACTS=200000 python benchmarks/run.py

The sandbox runs in its own process (as the real API would run elsewhere), warmed up before any
case is timed; each case runs in a fresh process, so its peak memory (with the normalizer's
worker process, which the pipeline starts as a child) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql

from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig
from etl_contacts.source import ClientConfig, ExtractStats, RecordsBatch, Window, extract
from etl_contacts.source.naive import offset_paging
from etl_contacts.sync import DEFAULT_BATCH_SIZE, day_windows, run_sync
from etl_contacts.transform import normalize
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.embedded import embedded_database_url

sys.path.insert(0, str(Path(__file__).parent))
from sandbox_bench import free_port, wait_ready, wait_rendered

DAYS = 90
PAGE_SIZE = SandboxConfig().page_size  # the sandbox's default; the real API's is unknown
LIBRARIES = ("psycopg", "pandas", "requests", "orjson", "phonenumbers", "dagster")
LATENCY_CONTACTS = 2_000
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def windows() -> list[Window]:
    return day_windows(
        (ANCHOR - timedelta(days=DAYS)).date(), (ANCHOR - timedelta(days=1)).date(), "UTC"
    )


def client(base_url: str, concurrency: int = 4) -> ClientConfig:
    return ClientConfig(base_url=base_url, token=DEMO_TOKEN, max_concurrency=concurrency)


class PeakMemory:
    """The most this process and its children (the normalizer) held at once, sampled every
    20 ms, and never less than this process's own high-water mark."""

    def __init__(self) -> None:
        self.mb = 0.0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.mb = max(self.mb, own)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.mb = max(self.mb, _tree_rss_kb(os.getpid()) / 1024)


def _tree_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except (FileNotFoundError, ProcessLookupError):  # it ended while we looked
        return 0
    # a process that has exited but not been reaped has no VmRSS line
    rss = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")]
    return sum(rss) + sum(_tree_rss_kb(child) for child in children)


def case(name: str, base_url: str, url: str, concurrency: int) -> dict[str, float]:
    """One case; its own clock, so process start and imports are not counted."""
    started = time.monotonic()
    figures = work(name, base_url, url, concurrency)
    return {"seconds": time.monotonic() - started, **figures}


def work(name: str, base_url: str, url: str, concurrency: int) -> dict[str, float]:
    stats = ExtractStats()
    if name == "fetch floor":
        for _ in extract(client(base_url), windows(), stats=stats):
            pass
        return {"requests": stats.get("requests")}
    if name == "load floor":
        return load_floor(base_url, url, stats)
    if name == "naive baseline":
        return naive(base_url, url, stats)
    days = windows()
    if name == "incremental":  # the day the sandbox was just told to touch 5 % of contacts
        days = day_windows(ANCHOR.date(), ANCHOR.date(), "UTC")
    result = run_sync(client=client(base_url, concurrency), warehouse=Warehouse(url),
                      windows=days, account="default", run_id=str(uuid.uuid4()))  # fmt: skip
    written = result.loaded.get("inserted", 0) + result.loaded.get("updated", 0)
    return {"requests": result.extracted["requests"], "written": written}


def load_floor(base_url: str, url: str, stats: ExtractStats) -> dict[str, float]:
    """The batches a sync would load, fetched and normalized to disk before the clock starts,
    then loaded one at a time: the warehouse's own speed, memory bounded by one batch."""
    with tempfile.TemporaryDirectory() as folder:
        paths, buffer = [], []

        def spill() -> None:
            paths.append(Path(folder, f"{len(paths)}.pickle"))
            paths[-1].write_bytes(pickle.dumps(normalize(buffer, account="default")))
            buffer.clear()

        for event in extract(client(base_url), windows(), stats=stats):
            if isinstance(event, RecordsBatch):
                buffer.extend(event.records)
                if len(buffer) >= DEFAULT_BATCH_SIZE:
                    spill()
        spill()
        warehouse = Warehouse(url)
        warehouse.begin_run(run_id="load", account="default", started_at=ANCHOR, windows=[])
        started = time.monotonic()
        written = sum(
            warehouse.load(
                pickle.loads(path.read_bytes()), run_id="load", account="default"
            ).inserted
            for path in paths
        )
    return {"requests": 0, "written": written, "seconds": time.monotonic() - started}


def naive(base_url: str, url: str, stats: ExtractStats) -> dict[str, float]:
    """What a quick loader does: page numbers, DataFrame.to_sql, one upsert per row."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE naive (id text PRIMARY KEY, doc jsonb)"))
    written = 0
    for window in (w for w in windows() if w.field == "createdAt"):
        records = [r for page in offset_paging(client(base_url), window, stats) for r in page]
        frame = pd.json_normalize([r for r in records if isinstance(r, dict)])
        if frame.empty:
            continue
        frame.astype(str).to_sql("naive_stage", engine, if_exists="replace", index=False)
        with engine.begin() as conn:
            for record in records:
                conn.execute(
                    sa.text("INSERT INTO naive (id, doc) VALUES (:id, CAST(:doc AS jsonb)) "
                            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"),
                    {"id": record["_id"], "doc": json.dumps(record)},
                )  # fmt: skip
                written += 1
    return {"requests": stats.get("requests"), "written": written}


def touch(base_url: str, contacts: int) -> int:
    """Make that many contacts active now, in the sandbox; how many it touched."""
    request = urllib.request.Request(
        f"{base_url}/_sandbox/touch", data=json.dumps({"contacts": contacts}).encode()
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return int(json.loads(response.read())["touched"])


def fresh_database(admin: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def start_sandbox(contacts: int, latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cli = Path(sys.executable).with_name("etl-contacts")
    command = [str(cli), "sandbox", "serve", "--port", str(port), "--contacts", str(contacts),
               "--days", str(DAYS), "--latency-ms", str(latency_ms)]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    wait_ready(port, started + 600)
    wait_rendered(port, started + 3600)
    return server, f"http://127.0.0.1:{port}"


def measure(
    name: str, base_url: str, url: str, contacts: int, concurrency: int = 4, note: str = ""
) -> str:
    command = [sys.executable, __file__, "--case", name, base_url, url, str(concurrency)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    seconds = figures["seconds"]
    written = f"{int(figures['written']):,}" if "written" in figures else "-"
    return (f"| {name}{note} | {contacts / seconds:,.0f} | {int(figures['requests']):,} | "
            f"{figures['peak_mb']:,.0f} | {seconds:.1f} | {written} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", nargs=4, metavar=("NAME", "BASE_URL", "URL", "CONCURRENCY"))
    args = parser.parse_args()
    if args.case:
        name, base_url, url, concurrency = args.case
        with PeakMemory() as peak:
            figures = case(name, base_url, url, int(concurrency))
        figures["peak_mb"] = peak.mb
        print(json.dumps(figures))
        return
    contacts = int(os.environ.get("BENCH_CONTACTS", "200000"))
    server_url = embedded_database_url(Path(".etl_contacts"), database="postgres")
    admin = server_url.replace("postgresql+psycopg", "postgresql")

    def database() -> str:
        url = server_url.replace("/postgres?", f"/{fresh_database(admin)}?")
        Warehouse(url).migrate()
        return url

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(admin) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    libraries = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    print(f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
          f"PostgreSQL {server}, {libraries}; {contacts:,} contacts over {DAYS} days, "
          f"page size {PAGE_SIZE}")  # fmt: skip
    print("\n| case | contacts/s | requests | peak MB | seconds | rows written |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    server, base_url = start_sandbox(contacts, 0.0)
    try:
        print(measure("fetch floor", base_url, database(), contacts), flush=True)
        print(measure("load floor", base_url, database(), contacts), flush=True)
        warm = database()
        print(measure("cold load", base_url, warm, contacts), flush=True)
        print(measure("warm re-load", base_url, warm, contacts), flush=True)
        changed = touch(base_url, contacts // 20)
        note = f" ({changed:,} of {contacts:,} contacts changed today)"
        print(measure("incremental", base_url, warm, changed, note=note), flush=True)
        print(measure("naive baseline", base_url, database(), contacts), flush=True)
    finally:
        server.terminate()
    server, base_url = start_sandbox(LATENCY_CONTACTS, 100.0)
    try:
        for concurrency in (1, 4, 8):
            note = f" ({LATENCY_CONTACTS:,} contacts, 100 ms per request)"
            row = measure(f"latency c={concurrency}", base_url, database(), LATENCY_CONTACTS,
                          concurrency, note=note)  # fmt: skip
            print(row, flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
