"""The peer for `make bench`: the same contacts into the same PostgreSQL, as a dlt user would.

    pip install -e '.[bench]'
    python benchmarks/dlt_peer.py --contacts 20000 --days 30 [--latency-ms 30]

dlt's `rest_api` source, configured from its documentation and nothing else: a POST endpoint,
the filters in the JSON body (one `createdAt` range over the whole history, every other filter
neutral), page numbers in the body from 1 until the first empty page, `data` as the records,
bearer auth plus `authtype: Key`, merged on `_id` into the `postgres` destination. Every dlt
setting is its default (nesting, workers, buffers, retries); only where dlt keeps its pipeline
state (a temporary folder, not ~/.dlt) and its anonymous telemetry (off) are set.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import sqlalchemy as sa

from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.source.http import ENDPOINT, NEUTRAL_BODY
from etl_contacts.timestamps import format_ms, to_ms
from etl_contacts.warehouse.databases import scratch_database
from etl_contacts.warehouse.embedded import embedded_database_url

INSTALL = "pip install -e '.[bench]'"
DATASET = "dlt_contacts"
TABLE = "contacts"


def dlt_available() -> bool:
    """Whether dlt (with its postgres destination's driver, psycopg2) is installed."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("dlt", "psycopg2"))
    except (ImportError, ValueError):  # a module blocked or half-imported
        return False


def dlt_postgres_url(database_url: str) -> str:
    """Our SQLAlchemy URL (`postgresql+psycopg://user@/db?host=/socket/dir`) as dlt's postgres
    destination (psycopg2) takes it: `postgresql://user:password@host:port/db`.

    dlt requires a host and a password. A Unix socket's directory in `?host=` becomes the host,
    percent-encoded (libpq decodes it: `%2Fsocket%2Fdir`); a URL without a password gets a
    placeholder, which libpq sends only if the server asks for one (the embedded server trusts
    local connections, so it never does).
    """
    url = sa.make_url(database_url)
    query = dict(url.query)
    socket = query.pop("host", None) if not url.host else None
    host = quote(str(socket), safe="") if socket else url.host or "localhost"
    user = quote(url.username or "postgres", safe="")
    password = quote(url.password or "unused", safe="")
    port = f":{url.port}" if url.port else ""
    rest = f"?{urlencode(query, doseq=True)}" if query else ""
    return f"postgresql://{user}:{password}@{host}{port}/{url.database}{rest}"


def contacts_body(first: date, last: date) -> dict[str, Any]:
    """Every filter neutral but `createdAt`: [first 00:00 UTC, last + 1 day 00:00 UTC)."""
    body = copy.deepcopy(NEUTRAL_BODY)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = start + timedelta(days=(last - first).days + 1)
    body["createdAt"] = {"startAt": format_ms(to_ms(start)), "endsAt": format_ms(to_ms(end))}
    return body


def load_with_dlt(
    base_url: str, token: str, first: date, last: date, database_url: str
) -> dict[str, float]:
    """Load the contacts created from `first` to `last` (UTC days) with dlt's rest_api source.

    seconds: wall time of `pipeline.run` (extract, normalize, load); records: rows in the
    contacts table afterwards; requests: HTTP responses dlt's client received.
    """
    if not dlt_available():
        raise RuntimeError(f"dlt is not installed; install the peer with: {INSTALL}")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no calls home, no ~/.dlt
    import dlt
    from dlt.sources.rest_api import RESTAPIConfig, rest_api_source

    requests = 0

    def count(_response: Any, *_args: Any, **_kwargs: Any) -> None:  # a requests hook
        nonlocal requests
        requests += 1

    config: RESTAPIConfig = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": token},
            "headers": {"authtype": "Key", "Content-Type": "application/json"},
        },
        "resources": [
            {
                "name": TABLE,
                "primary_key": "_id",
                "write_disposition": "merge",
                "endpoint": {
                    "path": ENDPOINT.lstrip("/"),
                    "method": "POST",
                    "json": contacts_body(first, last),
                    "paginator": {
                        "type": "page_number",
                        "base_page": 1,
                        "page_body_path": "page",
                        "total_path": None,  # the API gives no total: stop at an empty page
                        "stop_after_empty_page": True,
                    },
                    "data_selector": "data",
                    "response_actions": [count],  # counts; the default error handling stays
                },
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="dlt_peer_") as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="dlt_peer",
            pipelines_dir=pipelines_dir,
            destination=dlt.destinations.postgres(credentials=dlt_postgres_url(database_url)),
            dataset_name=DATASET,
        )
        started = time.monotonic()
        pipeline.run(rest_api_source(config))
        seconds = time.monotonic() - started
        with pipeline.sql_client() as client:
            rows = client.execute_sql(
                f"SELECT count(*) FROM {client.make_qualified_table_name(TABLE)}"
            )
        assert rows, "a count is one row"
    return {"seconds": seconds, "records": float(rows[0][0]), "requests": float(requests)}


def wait_encoded(base_url: str, deadline: float) -> None:
    """Until the sandbox has every contact's JSON ready (it encodes them in the background)."""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base_url}/_sandbox/status", timeout=30) as response:
            if orjson.loads(response.read())["ready"]:
                return
        time.sleep(0.2)
    raise SystemExit("the sandbox did not finish encoding in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's database")
    args = parser.parse_args()
    if not dlt_available():
        raise SystemExit(f"dlt is not installed; install the peer with: {INSTALL}")

    server_url = embedded_database_url(Path(".etl_contacts"), database="postgres")
    config = SandboxConfig(contacts=args.contacts, days=args.days, latency_ms=args.latency_ms)
    anchor = config.anchor_time
    first, last = (anchor - timedelta(days=args.days)).date(), (anchor - timedelta(days=1)).date()
    with (
        scratch_database(server_url, prefix="bench_dlt", keep=args.keep) as url,
        SandboxServer(config) as sandbox,
    ):
        wait_encoded(sandbox.base_url, time.monotonic() + 600)
        served = int(sandbox.truth()["requests"])
        figures = load_with_dlt(sandbox.base_url, config.token, first, last, url)
        truth = sandbox.truth()
        served = int(truth["requests"]) - served
        expected = len(truth["contacts"])

    seconds, rows = figures["seconds"], int(figures["records"])
    print(
        f"dlt {version('dlt')} rest_api -> postgres: {args.contacts:,} contacts over "
        f"{args.days} days ({first} to {last}), latency {args.latency_ms:g} ms, "
        f"page size {config.page_size}"
    )
    print(
        f"{seconds:.1f} s, {expected / seconds:,.0f} contacts/s, {rows:,} rows in "
        f"{DATASET}.{TABLE}, {int(figures['requests']):,} requests "
        f"(the sandbox counted {served:,})"
    )
    if rows != expected:
        raise SystemExit(f"row count mismatch: {rows:,} rows loaded, the sandbox has {expected:,}")
    print(f"row count check: {rows:,} = the sandbox's {expected:,} contacts")


if __name__ == "__main__":
    main()
