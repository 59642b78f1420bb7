"""`make ui-check`: the Dagster UI in a real browser, driven as a person (and the UI) would.

Starts the sandbox and `dagster dev` on embedded defaults in a throwaway DAGSTER_HOME, then with
headless Chromium (Debian's, through playwright): the asset graph must show the contact assets,
the partitions page must list days, and a backfill launched through the UI's own GraphQL API
must complete with its rows in the warehouse. Screenshots go to .ui-check/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa
from playwright.sync_api import sync_playwright

from etl_contacts.sandbox import DEMO_TOKEN
from etl_contacts.warehouse.databases import create_database, drop_database
from etl_contacts.warehouse.embedded import embedded_database_url
from etl_contacts.warehouse.tables import CONTACT_TABLES

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".ui-check"
# without the background-networking flags Chromium keeps calling home, and this network refuses
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SystemExit(f"FAIL: {url} did not answer within {seconds:.0f} s")


def check(condition: bool, what: str) -> None:
    print(f"{'PASS' if condition else 'FAIL'}: {what}", flush=True)
    if not condition:
        raise SystemExit(1)


def main() -> None:
    SHOTS.mkdir(exist_ok=True)
    server_url = embedded_database_url(ROOT / ".etl_contacts", database="postgres")
    database = f"ui_check_{uuid.uuid4().hex[:8]}"
    warehouse_url = create_database(server_url, database)
    home = Path(tempfile.mkdtemp(prefix="ui-check-"))
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    today = datetime.now(UTC).date()
    days = [str(today - timedelta(days=n)) for n in (3, 2, 1)]
    sandbox_port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "EXPRESS_CHAT_API_TOKEN": DEMO_TOKEN,
        "EXPRESS_CHAT_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "ETL_CONTACTS_DATABASE_URL": warehouse_url,
        "ETL_CONTACTS_START_DATE": str(today - timedelta(days=30)),
    }
    bin_dir = Path(sys.executable).parent
    sandbox = [
        bin_dir / "etl-contacts",
        "sandbox",
        "serve",
        "--port",
        str(sandbox_port),
        "--contacts",
        "2000",
        "--days",
        "10",
    ]
    dagster = [bin_dir / "dagster", "dev", "-w", "workspace.yaml", "-p", str(ui_port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(sandbox, env=env, **quiet),
        subprocess.Popen(dagster, cwd=ROOT, env=env, **quiet),
    ]
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        wait_http(f"{ui}/server_info", 180)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(f"{ui}/asset-groups/express_chat")
            page.get_by_text("contact_tags").first.wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "asset-graph.png"))
            shown = all(page.get_by_text(n).count() > 0 for n in ("contacts", "contact_segments"))
            check(shown, "the asset graph shows the contact assets")
            page.goto(f"{ui}/assets/contacts?view=partitions")
            page.get_by_text(days[-1]).first.wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "partitions.png"))
            check(page.get_by_text(days[-1]).count() > 0, f"the partitions page lists {days[-1]}")
            browser.close()
        assets = [{"path": [name]} for name in CONTACT_TABLES]
        params = {"partitionNames": days, "assetSelection": assets}
        launched = requests.post(
            f"{ui}/graphql", json={"query": LAUNCH, "variables": {"params": params}}, timeout=60
        ).json()
        result = launched["data"]["launchPartitionBackfill"]
        check(result["__typename"] == "LaunchBackfillSuccess", f"backfill launched: {result}")
        deadline, status = time.monotonic() + 300, "REQUESTED"
        while time.monotonic() < deadline and status in ("REQUESTED", "CANCELING", "FAILING"):
            time.sleep(3)
            answer = requests.post(
                f"{ui}/graphql",
                json={"query": STATUS, "variables": {"id": result["backfillId"]}},
                timeout=30,
            ).json()
            status = answer["data"]["partitionBackfillOrError"]["status"]
        check(
            status in ("COMPLETED", "COMPLETED_SUCCESS"),
            f"the backfill of {days} completed ({status})",
        )
        with sa.create_engine(warehouse_url).connect() as conn:
            rows = conn.execute(
                sa.text("SELECT count(*) FROM express_chat.contacts WHERE created_at >= :first"),
                {"first": days[0]},
            ).scalar()
        check(rows > 0, f"its rows are in the warehouse ({rows} contacts created in those days)")
        print(f"screenshots: {SHOTS}/asset-graph.png, {SHOTS}/partitions.png")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        drop_database(server_url, database)


if __name__ == "__main__":
    main()
