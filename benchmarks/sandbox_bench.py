"""How fast the sandbox serves, and how much memory it holds, in its own process.

    python benchmarks/sandbox_bench.py --contacts 1000000 --seconds 10

One client on a keep-alive connection asks for pages of a date window, one after another, as
the extractor would; the figure is pages per second. Memory is the server's resident set.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from etl_contacts.sandbox import DEMO_TOKEN

HEADERS = {
    "Authorization": f"Bearer {DEMO_TOKEN}",
    "authtype": "Key",
    "Content-Type": "application/json",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the sandbox did not start in time")


def wait_rendered(port: int, deadline: float) -> float:
    """When every contact's JSON is ready (the sandbox renders them in the background)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    while time.monotonic() < deadline:
        conn.request("GET", "/_sandbox/status")
        status = orjson.loads(conn.getresponse().read())
        if status["rendered"] >= status["contacts"]:
            return time.monotonic()
        time.sleep(0.5)
    raise SystemExit("the sandbox did not finish rendering in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    cli = Path(sys.executable).with_name("etl-contacts")
    command = [str(cli), "sandbox", "serve", "--port", str(port), "--contacts", str(args.contacts),
               "--days", str(args.days)]  # fmt: skip
    started = time.monotonic()
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, started + 600)
        startup = time.monotonic() - started
        warm = wait_rendered(port, started + 900) - started
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        window = {"startAt": (today - timedelta(days=30)).isoformat(), "endsAt": today.isoformat()}
        conn = http.client.HTTPConnection("127.0.0.1", port)
        pages, page, begin = 0, 1, time.monotonic()
        while time.monotonic() - begin < args.seconds:
            conn.request(
                "POST", "/inbox/users", orjson.dumps({"createdAt": window, "page": page}), HEADERS
            )
            body = conn.getresponse().read()
            page = page + 1 if orjson.loads(body)["data"] else 1
            pages += 1
        elapsed = time.monotonic() - begin
        print(
            f"machine: {os.cpu_count()} cores; contacts: {args.contacts:,}; "
            f"listening after {startup:.1f} s, every contact rendered after {warm:.1f} s"
        )
        print(f"pages/s (20 contacts, one client, keep-alive): {pages / elapsed:,.0f}")
        print(f"server resident memory: {rss_mb(server.pid):,.0f} MB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
