"""`make ui-check`: the Dagster UI clicked through in a real browser, as an engineer would.

Starts the sandbox API, a fresh warehouse database and `dagster dev` on a throwaway DAGSTER_HOME,
then in headless Chromium (Debian's, driven by playwright):

1. the asset graph shows the contact assets, and no "join the community" dialog covers it;
2. on the `contacts` asset, *Materialize…* opens the launch dialog, three days are chosen and
   the backfill launched; the check follows it to its end (GraphQL and the backfill page);
3. the backfill's run page, its log filtered to the "window N/M fetched" progress lines;
4. the rows are in the warehouse;
5. the partitions page shows those three days materialized (and only those);
6. a second run (the latest day, launched from the same dialog) gives the metadata plots two
   runs to draw: rows, requests and seconds across runs, on the asset's overview;
7. the checks tab: each of the ten checks has a result, the blocking ones passed;
8. the freshness state: the overview's freshness policy says Passing (the daemon evaluates the
   asset's FreshnessPolicy), and the `freshness` check agrees, with the latest run's time;
9. one bad day: a contact of the middle day edited to a last-seen time a year ahead, the three
   days read again: the run fails (a blocking check), and `no_future_timestamps`' partitions
   show that day failed, the two others passed.

One `PASS: ...` line per assertion; screenshots in tests/ui/screenshots/ (git-ignored), listed
at the end. Every child process runs in a session of its own and is stopped with all it started;
the check fails if any of them is left (see tests/process_groups.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import requests
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect, sync_playwright

from etl_contacts.sandbox import DEMO_TOKEN
from etl_contacts.warehouse.databases import scratch_database
from etl_contacts.warehouse.embedded import embedded_database_url

# tests/process_groups.py, shared with the tests and the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from process_groups import ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
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
CHECKS = (
    "children_have_contacts",
    "no_future_timestamps",
    "window_reconciliation",
    "day_reconciliation",
    "reject_rate",
    "holes_repaired",
    "deletion_guard",
    "no_suspect_days",
    "freshness",
    "verified_within_budget",
)
BLOCKING = CHECKS[:4]  # a failure of these stops the downstream summary: they must pass
PLOTTED = ("dagster/row_count", "requests", "seconds")
BACKFILL_RUNNING = {"REQUESTED", "CANCELING", "FAILING"}
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}
PROGRESS = re.compile(r"^window (\d+)/(\d+) fetched")
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""
BACKFILL_RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status } } }
}"""
RUN_STATUS = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
MATERIALIZATIONS = """
query($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 50) {
        runId
        partition
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
        }
      }
    }
  }
}"""

T = TypeVar("T")
screenshots: list[tuple[str, str]] = []


def check(condition: bool, what: str) -> None:
    print(f"{'PASS' if condition else 'FAIL'}: {what}", flush=True)
    if not condition:
        raise SystemExit(1)


def fail(what: str) -> NoReturn:
    check(False, what)
    raise AssertionError  # unreachable: check raised


def poll(probe: Callable[[], T | None], what: str, seconds: float, every: float = 2.0) -> T:
    """The first answer of `probe` that is not None, asked every `every` seconds until the
    deadline: a wait for a condition, never a sleep standing in for one."""
    deadline = time.monotonic() + seconds
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if time.monotonic() >= deadline:
            fail(f"waited {seconds:.0f} s for {what}")
        time.sleep(every)


def community_dialog(page: Page) -> int:
    """How many "join the community" dialogs (an iframe from dagster.io) the page shows."""
    frames = page.locator("iframe[src*='community_nux']").count()
    return page.get_by_text("Join the Dagster community").count() + frames


def seen(locator: Locator, what: str) -> None:
    """PASS when the page shows `locator` within the timeout, FAIL (not a traceback) if not."""
    try:
        expect(locator).to_be_visible()
    except AssertionError:
        fail(what)
    check(True, what)


def shot(page: Page, name: str, shows: str) -> None:
    """Save the page as it is now, and remember what it shows for the closing list. No
    picture is taken with the "join the community" dialog over the page: nux is disabled."""
    if community_dialog(page):
        fail(f"the 'join the community' dialog covers {page.url}: nux is not disabled")
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    screenshots.append((path.name, shows))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterUI:
    """The webserver's address and its GraphQL API: what the page itself asks."""

    def __init__(self, url: str) -> None:
        self.url = url

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        ).json()
        if answer.get("errors"):
            fail(f"GraphQL answered {answer['errors']}")
        return answer["data"]

    def wait_up(self, dagster: ProcessGroup, seconds: float) -> None:
        """Until the webserver answers, or fail at once if `dagster dev` ended."""

        def answers() -> bool | None:
            if dagster.poll() is not None:
                fail(f"dagster dev exited with {dagster.poll()} before serving")
            try:
                return requests.get(f"{self.url}/server_info", timeout=2).ok or None
            except requests.RequestException:
                return None

        poll(answers, f"the webserver to answer at {self.url}", seconds, every=1)

    def run_status(self, run_id: str) -> str:
        return self.graphql(RUN_STATUS, id=run_id)["runOrError"]["status"]


def page_text(page: Page) -> str:
    return page.locator("body").inner_text()


def asset_tab(page: Page, name: str) -> Locator:
    """A tab of the asset page; an opened check has tabs of its own (Overview among them)."""
    return page.get_by_role("tablist").first.get_by_role("tab", name=name)


def check_asset_graph(page: Page, ui: DagsterUI) -> None:
    page.goto(f"{ui.url}/asset-groups/express_chat")
    page.get_by_text("contact_tags").first.wait_for(timeout=60_000)
    names = ("contacts", "contact_tags", "contact_attributes", "contact_segments")
    shown = all(page.get_by_text(name, exact=True).count() > 0 for name in names)
    check(shown, "the asset graph shows the four contact assets")
    nux = "no 'join the community' dialog over the UI (nux: enabled: false), nor in any picture"
    check(not community_dialog(page), nux)
    shot(page, "01-asset-graph", "the express_chat asset graph, no dialog over it")


def partition_box(page: Page) -> Locator:
    """The launch dialog's partition field: typing a range in it makes a custom selection."""
    return page.get_by_role("dialog").get_by_role("textbox").first


def open_launch_dialog(page: Page, ui: DagsterUI) -> None:
    """Materialize… on the contacts asset. The four tables are one multi-asset, so the UI
    first says the other three come along (Confirm), then opens the partition dialog."""
    page.goto(f"{ui.url}/assets/contacts")
    page.get_by_role("button", name="Materialize…").click()
    confirm = page.get_by_role("button", name="Confirm")
    partitions = partition_box(page)
    expect(confirm.or_(partitions).first).to_be_visible()
    if confirm.is_visible():
        check(
            page.get_by_text("Additional assets will be materialized").count() == 1,
            "Materialize… says the other three tables of the multi-asset come along",
        )
        confirm.click()
    expect(partitions).to_be_visible()


def launched_from_toast(page: Page, prefix: str) -> str:
    """The id in the toast's View link (/runs/b/<backfill> or /runs/<run>), after it is clicked."""
    expect(page.get_by_text(re.compile(f"^{prefix}"))).to_be_visible()
    view = page.get_by_role("link", name="View", exact=True)
    href = view.get_attribute("href") or ""
    view.click()
    return href.rstrip("/").rsplit("/", 1)[-1]


def launch_backfill(page: Page, ui: DagsterUI, days: list[str], *, picture: bool = True) -> str:
    open_launch_dialog(page, ui)
    box = partition_box(page)
    box.fill(f"[{days[0]}...{days[-1]}]")
    box.press("Enter")
    seen(
        page.get_by_text(f"{len(days)} partitions", exact=True),
        f"the launch dialog selects {len(days)} partitions, {days[0]} to {days[-1]}",
    )
    if picture:
        shot(page, "02-launch-dialog", f"the launch dialog with the range {days[0]}...{days[-1]}")
    page.get_by_role("button", name="Launch backfill").click()
    backfill = launched_from_toast(page, "Created backfill")
    check(bool(backfill), f"Launch backfill created backfill {backfill}")
    return backfill


def backfill_end(ui: DagsterUI, backfill: str) -> str:
    """The backfill's status once it has ended, followed on GraphQL."""

    def finished() -> str | None:
        status = ui.graphql(BACKFILL_STATUS, id=backfill)["partitionBackfillOrError"]["status"]
        return None if status in BACKFILL_RUNNING else status

    return poll(finished, f"backfill {backfill} to finish", 300)


def wait_backfill(page: Page, ui: DagsterUI, backfill: str, days: list[str]) -> list[str]:
    """Follow the backfill to its end on GraphQL, then see its page say so; its runs' ids."""
    status = backfill_end(ui, backfill)
    check(status in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {backfill} ended {status}")

    def page_says() -> str | None:
        page.reload()
        expect(page.get_by_text("Partition selection")).to_be_visible()
        shown = re.search(r"\nStatus\n([^\n]+)\n", page_text(page))
        return shown.group(1) if shown and shown.group(1) != "In progress" else None

    shown = poll(page_says, "the backfill page to show the end", 60)
    check(shown == "Succeeded", f"the backfill page shows status {shown}")
    done = f"{len(days)}/{len(days)}"
    shot(page, "03-backfill", f"backfill {backfill}: Succeeded, each asset {done} partitions")
    filter_ = {"tags": [{"key": "dagster/backfill", "value": backfill}]}
    runs = ui.graphql(BACKFILL_RUNS, filter=filter_)["runsOrError"]["results"]
    check(
        bool(runs) and all(run["status"] == "SUCCESS" for run in runs),
        f"its {len(runs)} run(s) succeeded: {', '.join(run['runId'][:8] for run in runs)}",
    )
    return [run["runId"] for run in runs]


def check_progress_lines(page: Page, run_id: str) -> None:
    """(e) From the backfill's Runs tab to the run, its log filtered to the progress lines."""
    page.get_by_role("tab", name="Runs").click()
    page.get_by_role("link", name=run_id[:8]).click()  # its name is "run <id>"
    expect(page).to_have_url(re.compile(f"/runs/{run_id}"))
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    page.get_by_placeholder("Filter…").fill("fetched")
    lines = page.get_by_text(PROGRESS)
    expect(lines.first).to_be_visible()
    texts = lines.all_inner_texts()
    counts = [(int(m[1]), int(m[2])) for m in map(PROGRESS.match, texts) if m]
    totals = {total for _, total in counts}
    check(
        len(totals) == 1 and any(done == total for done, total in counts),
        f"run {run_id[:8]} logs its progress, ending at "
        f"{max(done for done, _ in counts)}/{totals.pop()}: {texts[-1]}",
    )
    shot(page, "04-run-progress", f"run {run_id[:8]}, its log filtered to the window lines")


def check_warehouse(warehouse_url: str, first: str) -> None:
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT count(*) FROM express_chat.contacts WHERE created_at >= :first"),
            {"first": first},
        ).scalar_one()
    engine.dispose()
    check(rows > 0, f"the rows are in the warehouse ({rows} contacts created since {first})")


def check_partitions(page: Page, ui: DagsterUI, days: list[str], backfill_run: str) -> None:
    """(a) The partitions tab: those days materialized, and with Missing unticked, only they."""
    page.goto(f"{ui.url}/assets/contacts")
    asset_tab(page, "Partitions").click()
    materialized = page.get_by_text(re.compile(r"^Materialized \(\d+\)$"))
    expect(materialized).to_have_text(f"Materialized ({len(days)})")
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Missing"))).not_to_be_checked()
    expect(page.get_by_text(f"{len(days)} Partitions Selected")).to_be_visible()
    earlier = str(date.fromisoformat(days[0]) - timedelta(days=1))
    check(
        all(page.get_by_title(day, exact=True).count() == 1 for day in days)
        and page.get_by_title(earlier, exact=True).count() == 0,
        f"the partitions page lists {', '.join(days)} as materialized, and no other day",
    )
    runs = set()
    for day in [*days, days[1]]:  # each one opened; the middle one left open for the picture
        page.get_by_title(day, exact=True).click()
        detail = re.compile(rf"\n{day}\nMaterialized\nLatest materialization\n.*?\nRun\n(\w+)")

        def opened(detail: re.Pattern[str] = detail) -> re.Match[str] | None:
            return detail.search(page_text(page))

        runs.add(poll(opened, f"partition {day} to show its materialization", 30, every=0.5)[1])
    check(
        runs == {backfill_run[:8]},
        f"each of them, opened, shows Materialized by the backfill's run {', '.join(runs)}",
    )
    shot(page, "05-partitions", f"partitions: {len(days)} materialized, {days[1]} opened")


def launch_latest(page: Page, ui: DagsterUI) -> str:
    """A second run, so that plots over runs have two points: the latest day, re-read."""
    open_launch_dialog(page, ui)
    page.get_by_role("button", name="Latest", exact=True).click()
    expect(page.get_by_text("1 partition", exact=True)).to_be_visible()
    page.get_by_role("button", name="Launch 1 run").click()
    run_id = launched_from_toast(page, "Launched run")

    def done() -> str | None:
        status = ui.run_status(run_id)
        return status if status in RUN_DONE else None

    status = poll(done, f"run {run_id[:8]} to finish", 240)
    check(status == "SUCCESS", f"a second run (the latest day) launched from the dialog: {status}")
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    return run_id


def check_plots(page: Page, ui: DagsterUI) -> None:
    """(b) The overview's metadata as plots over events: rows, requests, seconds by run."""
    found = ui.graphql(MATERIALIZATIONS, key={"path": ["contacts"]})
    per_run: dict[str, dict[str, float]] = {}
    for event in found["assetOrError"]["assetMaterializations"]:
        values = {
            entry["label"]: entry.get("intValue", entry.get("floatValue"))
            for entry in event["metadataEntries"]
        }
        per_run.setdefault(event["runId"][:8], {k: values[k] for k in PLOTTED if k in values})
    series = "; ".join(
        f"{key} " + " -> ".join(str(values.get(key)) for values in reversed(per_run.values()))
        for key in PLOTTED
    )
    check(
        len(per_run) >= 2 and all(len(values) == len(PLOTTED) for values in per_run.values()),
        f"the asset's metadata has {len(per_run)} runs to plot: {series}",
    )
    page.goto(f"{ui.url}/assets/contacts")
    asset_tab(page, "Overview").click()
    # the buttons' names start with their icon's label ("asset_plot Plots")
    page.get_by_role("button", name=re.compile(r"\bPlots$")).click()
    page.get_by_role("button", name=re.compile(r"\bEvents$")).click()  # x: time, not partition
    page.set_viewport_size({"width": 1500, "height": 2100})
    for key in PLOTTED:
        expect(page.get_by_text(key, exact=True)).to_be_visible()
    plots = page.locator("canvas").count()
    check(plots >= len(PLOTTED), f"the overview draws {plots} metadata plots, {PLOTTED} among them")
    page.get_by_text("Metadata", exact=True).evaluate("heading => heading.scrollIntoView()")
    expect(page.get_by_text("requests", exact=True)).to_be_in_viewport()
    shot(page, "06-metadata-plots", f"overview metadata plots over {len(per_run)} runs: {series}")
    page.set_viewport_size({"width": 1500, "height": 950})


def check_results(page: Page, ui: DagsterUI) -> None:
    """(c) and (d): the checks tab, each check opened; the freshness check's detail."""
    page.goto(f"{ui.url}/assets/contacts")
    asset_tab(page, "Checks").click()
    expect(page.get_by_text(f"Checks ({len(CHECKS)})")).to_be_visible()
    results: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for name in CHECKS:
        page.get_by_title(name, exact=True).click()
        pattern = re.compile(
            rf"\n{name}\nExecute\n.*?Latest execution\nEvaluation result\n(\w+)\n.*?"
            r"Metadata\n(.*?)\nPlots",
            re.DOTALL,
        )

        def shown(pattern: re.Pattern[str] = pattern) -> re.Match[str] | None:
            return pattern.search(page_text(page))

        match = poll(shown, f"the {name} check's result to show", 30, every=0.5)
        results[name], metadata[name] = match[1], " ".join(match[2].split())
        blocking = name in BLOCKING
        check(
            results[name] in ("Passed", "Failed", "Warning")
            and (results[name] == "Passed" or not blocking),
            f"check {name}{' (blocking: must pass)' if blocking else ''}: "
            f"{results[name]} ({metadata[name]})",
        )
    page.get_by_title("verified_within_budget", exact=True).click()
    expect(page.get_by_role("cell", name="never_verified")).to_be_visible()
    shot(
        page,
        "07-checks",
        f"checks tab: the {len(CHECKS)} results; verified_within_budget opened: "
        f"{results['verified_within_budget']} ({metadata['verified_within_budget']})",
    )
    # (d) the freshness state Dagster's freshness daemon evaluates from the asset's policy
    asset_tab(page, "Overview").click()
    # the sidebar's section (a button that folds it), not the status row's label
    policy = page.get_by_role("button", name="freshness Freshness policy")
    expect(policy).to_be_visible(timeout=60_000)
    policy.scroll_into_view_if_needed()
    expect(page.get_by_text("Passing", exact=True).first).to_be_visible(timeout=120_000)
    check(
        page.get_by_text("Fails if more than 36 hours since last materialization").count() == 1,
        "the overview's freshness policy says Passing: fails after 36 h, warns after 26 h",
    )
    shot(page, "08-freshness-state", "the overview's freshness policy: Passing (36 h / 26 h)")
    asset_tab(page, "Checks").click()
    page.get_by_title("freshness", exact=True).click()
    expect(page.get_by_role("cell", name="last_success")).to_be_visible()
    # a timestamp metadata value, shown in the browser's zone (UTC here) as "Dec 7, 11:09:16
    # AM UTC": its clock time is what the check needs
    stamp = re.search(r"\nlast_success\s+(.+?)\n", page_text(page))
    last = _shown_time(stamp[1]) if stamp else None
    age = (datetime.now(UTC) - last).total_seconds() if last else None
    check(
        results["freshness"] == "Passed" and age is not None and 0 <= age < 600,
        f"the freshness check passed: last success {last} ({age or 0:.0f} s ago: the latest run)",
    )
    shot(page, "09-freshness-check", f"the freshness check opened: Passed, last_success {last}")


def check_a_failed_day(page: Page, ui: DagsterUI, days: list[str], warehouse_url: str) -> None:
    """(e) a contact of the middle day given a last-seen time a year ahead (an edit: a load
    rejects such a record), then the three days read again: no_future_timestamps fails on
    that day and passes on the two others, each result on its partition."""
    bad = days[1]
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        planted = conn.execute(
            sa.text(
                "UPDATE express_chat.contacts SET last_seen_at = now() + interval '1 year' "
                "WHERE contact_id = (SELECT min(contact_id) FROM express_chat.contacts "
                "WHERE created_at >= CAST(:day AS date) "
                "AND created_at < CAST(:day AS date) + 1) RETURNING contact_id"
            ),
            {"day": bad},
        ).scalar_one()
    engine.dispose()
    backfill = launch_backfill(page, ui, days, picture=False)
    backfill_end(ui, backfill)
    filter_ = {"tags": [{"key": "dagster/backfill", "value": backfill}]}
    runs = ui.graphql(BACKFILL_RUNS, filter=filter_)["runsOrError"]["results"]
    check(
        [run["status"] for run in runs] == ["FAILURE"],
        f"contact {planted} of {bad} given a last-seen time a year ahead, the three days read "
        f"again: the run failed (a blocking check): {runs}",
    )
    page.goto(f"{ui.url}/assets/contacts")
    asset_tab(page, "Checks").click()
    page.get_by_title("no_future_timestamps", exact=True).click()
    page.get_by_role("tablist").last.get_by_role("tab", name="Partitions").click()
    seen(page.get_by_text("Failed (1)", exact=True), "no_future_timestamps' partitions: Failed (1)")
    seen(page.get_by_text("Passed (2)", exact=True), "and Passed (2): the other days read")
    page.get_by_title(bad, exact=True).first.click()
    detail = re.compile(rf"\n{bad}\nFailed\nLatest execution\n.*?\nfuture_rows\n(\d+)", re.DOTALL)

    def opened() -> re.Match[str] | None:
        return detail.search(page_text(page))

    rows = poll(opened, f"partition {bad} to show its result", 30, every=0.5)[1]
    check(rows == "1", f"{bad}, opened: Failed, future_rows {rows} (the planted contact)")
    shot(
        page, "10-failed-day", f"no_future_timestamps per day: {bad} failed, the two others passed"
    )


def _shown_time(text: str) -> datetime | None:
    """A timestamp as the UI shows it in en-US and UTC: "Dec 7, 11:09:16 AM UTC", with the year
    only when it is not this one (ICU may put a narrow space before AM)."""
    plain = text.replace("\u202f", " ").strip()
    match = re.fullmatch(r"(\w{3} \d{1,2})(?:, (\d{4}))?, (\d{1,2}:\d{2}:\d{2} [AP]M) UTC", plain)
    if not match:
        return None
    year = match[2] or str(datetime.now(UTC).year)
    return datetime.strptime(f"{match[1]} {year} {match[3]} +0000", "%b %d %Y %I:%M:%S %p %z")


def run_browser(ui: DagsterUI, days: list[str], warehouse_url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        try:
            check_asset_graph(page, ui)
            backfill = launch_backfill(page, ui, days)
            runs = wait_backfill(page, ui, backfill, days)
            check_progress_lines(page, runs[0])
            check_warehouse(warehouse_url, days[0])
            check_partitions(page, ui, days, runs[0])
            launch_latest(page, ui)
            check_plots(page, ui)
            check_results(page, ui)
            check_a_failed_day(page, ui, days, warehouse_url)
        except BaseException:
            page.screenshot(path=str(SHOTS / "failure.png"))
            print(f"the page at the failure ({page.url}): {SHOTS / 'failure.png'}", flush=True)
            raise
        finally:
            browser.close()


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like an error, so the `with` blocks stop the children and drop the
    database; by default it ends this process at once. Left alone when ignored on purpose."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda number, _frame: sys.exit(128 + number))


def main() -> None:
    exit_on_sigterm()
    SHOTS.mkdir(exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    started = time.monotonic()
    today = datetime.now(UTC).date()
    days = [str(today - timedelta(days=n)) for n in (3, 2, 1)]
    server_url = embedded_database_url(ROOT / ".etl_contacts", database="postgres")
    bin_dir = Path(sys.executable).parent
    sandbox_port, ui_port = free_port(), free_port()
    ui = DagsterUI(f"http://127.0.0.1:{ui_port}")
    with ExitStack() as stack:
        warehouse_url = stack.enter_context(scratch_database(server_url, prefix="ui_check"))
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ui-check-")))
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        log_path = home / "processes.log"
        log = stack.enter_context(log_path.open("wb"))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "EXPRESS_CHAT_API_TOKEN": DEMO_TOKEN,
            "EXPRESS_CHAT_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "ETL_CONTACTS_DATABASE_URL": warehouse_url,
            "ETL_CONTACTS_START_DATE": str(today - timedelta(days=30)),
        }
        sandbox: list[str | Path] = [bin_dir / "etl-contacts", "sandbox", "serve"]
        sandbox += ["--port", str(sandbox_port)]
        sandbox += ["--contacts", "2000", "--days", "10"]
        dagster: list[str | Path] = [bin_dir / "dagster", "dev", "-w", "workspace.yaml"]
        dagster += ["-p", str(ui_port)]
        children: dict[str, Any] = {"env": env, "stdout": log, "stderr": subprocess.STDOUT}
        groups = [
            stack.enter_context(ProcessGroup(sandbox, name="sandbox", **children)),
            stack.enter_context(ProcessGroup(dagster, name="dagster dev", cwd=ROOT, **children)),
        ]
        try:
            ui.wait_up(groups[1], 180)
            run_browser(ui, days, warehouse_url)
        except BaseException:
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("the last lines of the sandbox and dagster dev:\n  " + "\n  ".join(tail))
            raise
    # leaving the block stopped both groups and proved them empty, or raised naming survivors
    stops = ", ".join(
        f"{group.name} {group.stop_seconds:.1f} s after SIGTERM"
        + (" and SIGKILL" if group.killed else "")
        for group in groups
    )
    check(
        all(group.stopped for group in groups),
        f"sandbox and dagster dev stopped with every process they started, none left ({stops})",
    )
    print(f"\nscreenshots in {SHOTS} ({time.monotonic() - started:.0f} s in all):")
    for name, shows in screenshots:
        print(f"  {name}: {shows}")


if __name__ == "__main__":
    main()
