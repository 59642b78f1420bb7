"""`make bench`: what users run, what it costs, and against dlt, case by case, on this machine.

    BENCH_CONTACTS=200000 python benchmarks/run.py

First the command a user types, `etl-contacts sync --start .. --end ..` through Dagster, timed
from start to exit, beside the same load called in-process (`run_sync`) and dlt's `rest_api`
source loading the same days of the same sandbox into the same PostgreSQL (`pip install -e
'.[bench]'` installs it); at two densities (contacts per day), then with 30 ms per request,
then the fixed cost of a nightly `etl-contacts sync`. Then the pipeline's own cases.

The sandbox runs in its own process (as the real API would run elsewhere) and listens only once
every contact is encoded; each case runs in a fresh process, so its peak memory (with its child
processes: the normalizer's worker) is its own.
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
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import psycopg
import sqlalchemy as sa

from etl_contacts.pipeline.sync import DEFAULT_BATCH_SIZE, day_windows, run_sync
from etl_contacts.pipeline.transform import normalize
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig
from etl_contacts.source import ClientConfig, ExtractStats, RecordsBatch, Window, extract
from etl_contacts.source.naive import offset_paging
from etl_contacts.warehouse import Warehouse
from etl_contacts.warehouse.databases import scratch_database
from etl_contacts.warehouse.embedded import embedded_database_url

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # process_groups.py
from dlt_peer import dlt_available, load_with_dlt
from process_groups import ProcessGroup
from sandbox_bench import free_port, wait_ready, wait_rendered

DAYS = 90
PAGE_SIZE = SandboxConfig().page_size  # the sandbox's default; the real API's is unknown
LIBRARIES = ("psycopg", "pandas", "requests", "orjson", "phonenumbers", "dagster")
LATENCY_CONTACTS = 2_000
NIGHTLY_CONTACTS = 20_000
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def days_of(history: int = DAYS) -> tuple[date, date]:
    return (ANCHOR - timedelta(days=history)).date(), (ANCHOR - timedelta(days=1)).date()


def windows() -> list[Window]:
    return day_windows(*days_of(), "UTC")


def client(base_url: str, concurrency: int = ClientConfig.max_concurrency) -> ClientConfig:
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
    if name.startswith("dlt"):
        history = int(name.split()[-1])
        figures = load_with_dlt(base_url, DEMO_TOKEN, *days_of(history), url)
        return {"requests": figures.get("requests", 0), "written": figures["records"]}
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
    elif name.startswith("cold load"):
        days = day_windows(*days_of(int(name.split()[-1])), "UTC")
    result = run_sync(
        client=client(base_url, concurrency),
        warehouse=Warehouse(url),
        windows=days,
        account="default",
        run_id=str(uuid.uuid4()),
    )
    written = result.loaded.get("inserted", 0) + result.loaded.get("updated", 0)
    return {"requests": result.extracted["requests"], "written": written}


def load_floor(base_url: str, url: str, stats: ExtractStats) -> dict[str, float]:
    """The batches a sync would load, fetched and normalized to disk before the clock starts,
    then loaded one at a time: the warehouse's own speed, memory bounded by one batch."""
    with tempfile.TemporaryDirectory() as folder:
        paths: list[Path] = []
        buffer: list[object] = []

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
        warehouse.begin_run(
            run_id="load", account="default", started_at=ANCHOR, windows=[], timezone="UTC"
        )
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
                assert isinstance(record, dict), record  # a calm sandbox serves only objects
                conn.execute(
                    sa.text(
                        "INSERT INTO naive (id, doc) VALUES (:id, CAST(:doc AS jsonb)) "
                        "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
                    ),
                    {"id": record["_id"], "doc": json.dumps(record)},
                )
                written += 1
    return {"requests": stats.get("requests"), "written": written}


def touch(base_url: str, contacts: int) -> int:
    """Make that many contacts active now, in the sandbox; how many it touched."""
    request = urllib.request.Request(
        f"{base_url}/_sandbox/touch", data=json.dumps({"contacts": contacts}).encode()
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return int(json.loads(response.read())["touched"])


def command(base_url: str, url: str, history: int, *, nightly: bool = False) -> dict[str, float]:
    """`etl-contacts sync` as a user runs it, on its own Dagster instance: seconds from start to
    exit, and the peak memory of its process tree."""
    first, last = days_of(history)
    home = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    (home / "dagster.yaml").write_text(Path("dagster_home/dagster.yaml").read_text())
    env = {
        **os.environ,
        "EXPRESS_CHAT_BASE_URL": base_url,
        "EXPRESS_CHAT_API_TOKEN": DEMO_TOKEN,
        "ETL_CONTACTS_DATABASE_URL": url,
        "ETL_CONTACTS_START_DATE": first.isoformat(),
        "DAGSTER_HOME": str(home),
    }
    cli = str(Path(sys.executable).with_name("etl-contacts"))
    runs = [["--start", first.isoformat(), "--end", last.isoformat()]]
    if nightly:  # a backfill first, untimed; then the nightly, timed
        subprocess.run([cli, "sync", *runs[0]], env=env, check=True, capture_output=True)
        runs = [[]]
    started = time.monotonic()
    process = subprocess.Popen(
        [cli, "sync", *runs[0]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _tree_rss_kb(process.pid) / 1024)
        time.sleep(0.02)
    seconds = time.monotonic() - started
    output = process.stdout.read() if process.stdout else ""
    if process.returncode:
        raise SystemExit(f"etl-contacts sync failed:\n{output}")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        requests = conn.execute(
            "SELECT requests FROM express_chat.sync_runs WHERE status = 'success' "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        written = conn.execute("SELECT count(*) FROM express_chat.contacts").fetchone()
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "requests": requests[0] if requests else 0,
        "written": written[0] if written else 0,
    }


def start_sandbox(
    contacts: int, latency_ms: float, history: int = DAYS
) -> tuple[subprocess.Popen, str]:
    """The sandbox in a session of its own, SIGTERM and SIGINT at their defaults even under a
    shell that ignores them (it would ignore `terminate()` too, and outlive the benchmark). The
    Popen returned is a ProcessGroup (tests/process_groups.py, shared with `make ui-check`): its
    `terminate()` stops the whole group, waits, escalates to SIGKILL and fails if any is left."""
    port = free_port()
    cli = Path(sys.executable).with_name("etl-contacts")
    command = [
        str(cli),
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--contacts",
        str(contacts),
        "--days",
        str(history),
        "--latency-ms",
        str(latency_ms),
    ]
    server = ProcessGroup(command, name="sandbox", stderr=subprocess.DEVNULL)
    started = time.monotonic()
    try:
        wait_ready(port, started + 600)  # it listens once every contact is encoded
        wait_rendered(port, started + 3600)
    except BaseException:  # the callers stop it only once it is returned
        server.terminate()
        raise
    return server, f"http://127.0.0.1:{port}"


def measure(
    name: str,
    base_url: str,
    url: str,
    contacts: int,
    concurrency: int = ClientConfig.max_concurrency,
    note: str = "",
) -> tuple[str, float]:
    """One case in a fresh process: its table row, and its contacts per second."""
    command = [sys.executable, __file__, "--case", name, base_url, url, str(concurrency)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return row(name + note, contacts, json.loads(output.strip().splitlines()[-1]))


def row(name: str, contacts: int, figures: dict[str, float]) -> tuple[str, float]:
    seconds = figures["seconds"]
    written = f"{int(figures['written']):,}" if "written" in figures else "-"
    line = (
        f"| {name} | {contacts / seconds:,.0f} | {int(figures['requests']):,} | "
        f"{figures['peak_mb']:,.0f} | {seconds:.1f} | {written} |"
    )
    return line, contacts / seconds


def users_path(contacts: int, history: int, latency_ms: float, database: Callable[[], str]) -> None:
    """The command, the pipeline inside it and dlt, on the same days of one sandbox."""
    server, base_url = start_sandbox(contacts, latency_ms, history)
    label = f"{contacts:,} contacts, {contacts // history:,} a day, {latency_ms:.0f} ms"
    try:
        ours, ours_rate = row(
            f"etl-contacts sync ({label})", contacts, command(base_url, database(), history)
        )
        print(ours, flush=True)
        inside, _ = measure(f"cold load {history}", base_url, database(), contacts)
        print(inside.replace("cold load", "run_sync in-process, same days"), flush=True)
        if not dlt_available():
            print("| dlt rest_api | install it with `pip install -e '.[bench]'` | | | | |")
            return
        theirs, theirs_rate = measure(f"dlt rest_api {history}", base_url, database(), contacts)
        print(theirs, flush=True)
        print(f"| **ratio, command / dlt** | **{ours_rate / theirs_rate:.2f}x** | | | | |")
    finally:
        server.terminate()


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
    with ExitStack() as made:

        def database() -> str:
            url = made.enter_context(scratch_database(server_url, prefix="bench"))
            Warehouse(url).migrate()
            return url

        report(contacts, server_url, database)


def report(contacts: int, server_url: str, database: Callable[[], str]) -> None:
    """Every case, each on a fresh database from `database`."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    engine = sa.create_engine(server_url)
    with engine.connect() as conn:
        server = conn.execute(sa.text("SHOW server_version")).scalar()
    engine.dispose()
    libraries = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    print(
        f"machine: {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
        f"PostgreSQL {server}, {libraries}; {contacts:,} contacts over {DAYS} days, "
        f"page size {PAGE_SIZE}"
    )
    header = "| case | contacts/s | requests | peak MB | seconds | rows written |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
    print(f"\n### What users run\n\n{header}\n{rule}")
    users_path(contacts, DAYS, 0.0, database)
    users_path(contacts, DAYS // 3, 0.0, database)
    users_path(LATENCY_CONTACTS * 10, 30, 30.0, database)
    server, base_url = start_sandbox(NIGHTLY_CONTACTS, 0.0)
    try:
        nightly = command(base_url, database(), DAYS, nightly=True)
        print(
            f"| nightly `etl-contacts sync` ({NIGHTLY_CONTACTS:,} contacts over {DAYS} days: "
            f"yesterday, lookback, a seventh re-verified) | - | {int(nightly['requests']):,} | "
            f"{nightly['peak_mb']:,.0f} | {nightly['seconds']:.1f} | - |"
        )
    finally:
        server.terminate()
    print(f"\n### The pipeline's own cases\n\n{header}\n{rule}")
    server, base_url = start_sandbox(contacts, 0.0)
    try:
        print(measure("fetch floor", base_url, database(), contacts)[0], flush=True)
        print(measure("load floor", base_url, database(), contacts)[0], flush=True)
        warm = database()
        print(measure(f"cold load {DAYS}", base_url, warm, contacts)[0], flush=True)
        print(measure("warm re-load", base_url, warm, contacts)[0], flush=True)
        changed = touch(base_url, contacts // 20)
        note = f" ({changed:,} of {contacts:,} contacts changed today)"
        print(measure("incremental", base_url, warm, changed, note=note)[0], flush=True)
        print(measure("naive baseline", base_url, database(), contacts)[0], flush=True)
    finally:
        server.terminate()
    server, base_url = start_sandbox(LATENCY_CONTACTS, 100.0)
    try:
        for concurrency in (1, 4, 8):
            note = f" ({LATENCY_CONTACTS:,} contacts, 100 ms per request)"
            line, _ = measure(
                f"latency c={concurrency}",
                base_url,
                database(),
                LATENCY_CONTACTS,
                concurrency,
                note=note,
            )
            print(line, flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
