"""A sync whose processes all died stops blocking its account's pool (issue #17).

Each sync run claims its account's pool (`express_chat_<account>`, limit 1, `granularity: run`).
At run granularity the queue counts the pool's runs in STARTING, STARTED or CANCELING: no slot is
claimed, so the pool is held exactly as long as the run storage says the run is in progress.

If only the run worker is SIGKILLed, the code server that spawned it sees it die and fails the run
within a second, no monitoring involved (its step process lives on, still syncing and holding the
warehouse's account lock, so the next run waits on that lock instead). If the whole machine goes
(daemon, code server, run worker, step process: a lost VM, a restarted container), nothing is left
to notice: the run stays STARTED and the account's later runs queue behind it forever. The default
run launcher has no worker health check, so only run monitoring's `max_runtime_seconds` fails such
a run. That is the case tested here, on a copy of dagster_home/dagster.yaml with shorter timings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import yaml
from process_groups import ProcessGroup, alive

from etl_contacts.sandbox import SandboxConfig, SandboxServer

TOKEN = "deadbeefdeadbeefdeadbeef"
POOL = "express_chat_default"
NAME_TAG = "etl_contacts_test/name"
# the test's values; production keeps the shipped ones (21600 s, the default 120 s poll)
MAX_RUNTIME_SECONDS = 25
POLL_INTERVAL_SECONDS = 1
ACTIVE = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
PID_EVENT = re.compile(r"Started process for run \(pid: (\d+)\)")
BIN = Path(sys.executable).parent
T = TypeVar("T")


@contextmanager
def session(command: Sequence[str], cwd: Path, log: Path) -> Iterator[ProcessGroup]:
    """A child leading a session of its own (its code servers and run workers join it),
    output to `log`; killed, with all it started, when the block ends."""
    with log.open("ab") as out:
        process = ProcessGroup(
            command, name=Path(command[0]).name, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.kill()


def wait_for(what: str, condition: Callable[[], T | None], timeout: float, log: Path) -> T:
    """Poll `condition` until it returns something truthy; fail with the daemon's log if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"no {what} after {timeout:.0f} s; daemon log ends with:\n{tail}")


def launch(repo_root: Path, log: Path, name: str, first: date, last: date) -> None:
    """Queue a `sync_contacts` run over [first, last] as `dagster job launch` does."""
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        NAME_TAG: name,
    }
    command = [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "sync_contacts"]
    with session([*command, "--tags", json.dumps(tags)], repo_root, log) as cli:
        assert cli.wait(timeout=120) == 0, log.read_text(errors="replace")[-3000:]


def need(value: T | None, what: str) -> T:
    assert value is not None, f"no {what}"
    return value


def the_run(instance: dg.DagsterInstance, name: str) -> dg.DagsterRun:
    (run,) = instance.get_runs(dg.RunsFilter(tags={NAME_TAG: name}))
    return run


def event(
    instance: dg.DagsterInstance, run: dg.DagsterRun, kind: dg.DagsterEventType, text: str = ""
) -> dg.EventLogEntry | None:
    """The run's first event of this kind (whose message holds `text`), if any yet."""
    entries = instance.all_logs(run.run_id, of_type=kind)
    return next((e for e in entries if text in (e.message or "")), None)


def instance_config(repo_root: Path) -> str:
    """dagster_home/dagster.yaml as shipped, with only the monitoring timings shortened."""
    config = yaml.safe_load((repo_root / "dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert config["run_monitoring"]["enabled"] is True
    config["run_monitoring"].update(
        max_runtime_seconds=MAX_RUNTIME_SECONDS, poll_interval_seconds=POLL_INTERVAL_SECONDS
    )
    # free_slots_after_run_end_seconds stays as shipped: at run granularity no slot is claimed,
    # so it has nothing to free (asserted at the end)
    return yaml.safe_dump(config)


def test_a_run_killed_with_its_machine_is_failed_and_the_accounts_next_run_starts(
    new_database: Callable[[], str],
    repo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync in progress when its machine dies blocks its account until monitoring fails it
    (after max_runtime_seconds); then the account's next run leaves the queue and succeeds."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_config(repo_root))
    today = datetime.now(UTC).date()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ETL_CONTACTS_DATABASE_URL", new_database())
    monkeypatch.setenv("ETL_CONTACTS_START_DATE", (today - timedelta(days=90)).isoformat())
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    monkeypatch.delenv("ETL_CONTACTS_ACCOUNTS", raising=False)  # one account: "default"
    cli_log, first_log, second_log = (tmp_path / f"{n}.log" for n in ("cli", "daemon1", "daemon2"))
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    # every request waits a second: A (28 days, ~200 contacts a day) syncs for minutes, while B
    # (one day before the account's history: nothing to read) needs a few requests
    sandbox_config = SandboxConfig(contacts=6_000, days=30, token=TOKEN, latency_ms=1_000)
    with dg.DagsterInstance.get() as instance, SandboxServer(sandbox_config) as sandbox:
        monkeypatch.setenv("EXPRESS_CHAT_BASE_URL", sandbox.base_url)
        # the queue `dagster dev` and the daemon use: dagster.yaml names no coordinator
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        launch(repo_root, cli_log, "A", today - timedelta(days=28), today - timedelta(days=1))
        a = the_run(instance, "A")
        with session(daemon, repo_root, first_log) as first_daemon:
            # B is queued only once A is out of the queue: in the queue's pass that first meets
            # a pool, Dagster 1.13 creates the pool's limit but does not apply it yet
            wait_for(
                "launch of A",
                lambda: event(instance, a, dg.DagsterEventType.RUN_STARTING),
                90,
                first_log,
            )
            launch(repo_root, cli_log, "B", today - timedelta(days=60), today - timedelta(days=60))
            b = the_run(instance, "B")
            # the daemon's log line (Dagster 1.13) with the pool's counts
            blocked = wait_for(
                "B blocked by A's pool",
                lambda: re.search(
                    f"Run {b.run_id} is blocked by global concurrency limits: (.*)",
                    first_log.read_text(errors="replace"),
                ),
                60,
                first_log,
            )
            assert json.loads(blocked.group(1))[POOL]["slot_count"] == 1
            # A is mid-sync: its step process is reading the API
            wait_for(
                "A's step",
                lambda: event(instance, a, dg.DagsterEventType.STEP_START),
                60,
                first_log,
            )
            started = need(
                event(instance, a, dg.DagsterEventType.ENGINE_EVENT, "Started process for run"),
                "pid of A's run worker",
            )
            worker = int(need(PID_EVENT.search(started.message or ""), "pid").group(1))
            assert worker in {member.pid for member in alive(first_daemon.pid)}
            assert the_run(instance, "A").status == dg.DagsterRunStatus.STARTED, (
                "A must still run when its machine is lost: raise MAX_RUNTIME_SECONDS"
            )
            # the machine is lost: daemon, code server, A's run worker and step process at once
            first_daemon.kill()
        assert worker not in {member.pid for member in alive(first_daemon.pid)}
        # nothing saw A die: the run storage still has it running, and B waits behind it
        assert the_run(instance, "A").status == dg.DagsterRunStatus.STARTED
        assert the_run(instance, "B").status == dg.DagsterRunStatus.QUEUED
        with session(daemon, repo_root, second_log):  # the machine is back
            wait_for(
                "end of B",
                lambda: the_run(instance, "B").is_finished,
                MAX_RUNTIME_SECONDS + 75,
                second_log,
            )
        a, b = the_run(instance, "A"), the_run(instance, "B")
        assert a.status == dg.DagsterRunStatus.FAILURE
        # monitoring gave up on A after max_runtime_seconds; with its code server gone there was
        # nothing to terminate, so it marked A failed
        timeout = f"exceeding maximum runtime of {MAX_RUNTIME_SECONDS} seconds"
        need(event(instance, a, dg.DagsterEventType.RUN_CANCELING, timeout), "timeout of A")
        failed = need(event(instance, a, dg.DagsterEventType.RUN_FAILURE), "failure of A")
        assert "forcibly marked as failed" in (failed.message or "")
        assert b.status == dg.DagsterRunStatus.SUCCESS
        assert b.run_op_concurrency is not None and b.run_op_concurrency.all_pools == {POOL}
        # B left the queue only after monitoring had failed A
        b_launched = need(event(instance, b, dg.DagsterEventType.RUN_STARTING), "launch of B")
        assert b_launched.timestamp >= failed.timestamp
        # and A holds nothing now: no run counts against the pool, no slot or pending step is left
        assert not instance.get_run_records(dg.RunsFilter(statuses=ACTIVE))
        pool = instance.event_log_storage.get_concurrency_info(POOL)
        assert (pool.slot_count, pool.claimed_slots, pool.pending_steps) == (1, [], [])
