"""How fast the sandbox serves, and how much memory it holds, in its own process.

    python benchmarks/sandbox_bench.py --contacts 1000000 --seconds 10

One client on a keep-alive connection asks for pages of 20 contacts of a 30-day createdAt
window, one after another, as an extractor would; the figure is pages per second, with a lean
client (http.client) and with requests.Session. A third figure is requests.Session against a
server that answers every request with the same ready page over the sandbox's HTTP layer: the
most any sandbox could give that client on this machine. Memory is the server's resident set.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import requests

from etl_contacts.sandbox import DEMO_TOKEN
from etl_contacts.sandbox.wire import Connection, Request, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # process_groups.py
from process_groups import ProcessGroup

# `etl-contacts sandbox serve` without the rest of the CLI (Dagster and all), which would add
# a few hundred MB that are not the sandbox's to the resident set measured here.
SERVE = [sys.executable, "-c", "from etl_contacts.sandbox.command import app; app()", "serve"]
HEADERS = {
    "Authorization": f"Bearer {DEMO_TOKEN}",
    "authtype": "Key",
    "Content-Type": "application/json",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set now and at its peak, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    resident, peak = (int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))
    return resident, peak


def wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the sandbox did not start in time")


def wait_rendered(port: int, deadline: float) -> float:
    """When every contact's JSON is ready (the sandbox encodes them in the background)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    while time.monotonic() < deadline:
        conn.request("GET", "/_sandbox/status")
        if orjson.loads(conn.getresponse().read())["ready"]:
            return time.monotonic()
        time.sleep(0.2)
    raise SystemExit("the sandbox did not finish encoding in time")


def window_body(page: int) -> bytes:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=30), today
    window = {"startAt": start.isoformat(), "endsAt": end.isoformat()}
    return orjson.dumps({"createdAt": window, "page": page})


def pages_per_second(fetch: Callable[[int], bytes], seconds: float) -> float:
    """Pages of the window in order, from page 1 again after the last, for `seconds`."""
    pages, page, begin = 0, 1, time.monotonic()
    while time.monotonic() - begin < seconds:
        data = orjson.loads(fetch(page))["data"]
        page = page + 1 if data else 1
        pages += 1
    return pages / (time.monotonic() - begin)


def lean_client(port: int) -> Callable[[int], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def fetch(page: int) -> bytes:
        conn.request("POST", "/inbox/users", window_body(page), HEADERS)
        return conn.getresponse().read()

    return fetch


def requests_client(port: int) -> Callable[[int], bytes]:
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/inbox/users"
    return lambda page: session.post(url, data=window_body(page), headers=HEADERS).content


def serve_ready_page(port: int) -> None:
    """The floor: the sandbox's HTTP layer answering every request with one ready page."""
    record = {"_id": "0" * 24, "padding": "x" * 800}
    page = orjson.dumps({"success": True, "message": "", "data": [record] * 20, "code": 200})

    def respond(request: Request, connection: Connection) -> bool:
        connection.send(200, page if orjson.loads(request.body)["page"] < 50 else b'{"data":[]}')
        return True

    Server(("127.0.0.1", port), respond).serve_forever()


def start(command: list[str], port: int) -> ProcessGroup:
    """The sandbox in a process group of its own (see tests/process_groups.py): stopped whole, even
    from a shell that ignores SIGTERM, and stopped if it never gets ready."""
    server = ProcessGroup(command, name="sandbox", stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, time.monotonic() + 600)
    except BaseException:
        server.terminate()
        raise
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ready-page-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ready_page_server:
        serve_ready_page(args.ready_page_server)
        return
    port = free_port()
    started = time.monotonic()
    server = start(
        [*SERVE, "--port", str(port), "--contacts", str(args.contacts), "--days", str(args.days)],
        port,
    )
    try:
        listening = time.monotonic() - started
        ready = wait_rendered(port, started + 3600) - started
        lean = pages_per_second(lean_client(port), args.seconds)
        with_requests = pages_per_second(requests_client(port), args.seconds)
        resident, peak = memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
    floor_port = free_port()
    floor = start([sys.executable, __file__, "--ready-page-server", str(floor_port)], floor_port)
    try:
        ceiling = pages_per_second(requests_client(floor_port), args.seconds)
    finally:
        floor.terminate()
        floor.wait()
    print(f"machine: {os.cpu_count()} cores; {args.contacts:,} contacts over {args.days} days")
    print(f"listening after {listening:.1f} s; every record encoded after {ready:.1f} s")
    print("pages/s of 20 contacts, one sequential keep-alive client, 30-day createdAt window:")
    print(f"  http.client:       {lean:,.0f}")
    print(f"  requests.Session:  {with_requests:,.0f}")
    print(f"  requests.Session against a ready-page server (the client's ceiling): {ceiling:,.0f}")
    print(f"server memory: {resident:,.0f} MB resident, {peak:,.0f} MB peak")


if __name__ == "__main__":
    main()
