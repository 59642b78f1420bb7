"""`etl-contacts demo`, the README's first command, run as a user runs it: a real process on a
throwaway Dagster instance, whose sandbox and load must leave every served contact in Postgres."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from etl_contacts.cli.demo import DEMO_CONTACTS, DEMO_DAYS
from etl_contacts.warehouse.tables import CONTACT_TABLES

SCHEMA = "express_chat"


def _demo_environment(tmp_path: Path, repo_root: Path, database_url: str) -> dict[str, str]:
    """The caller's environment minus every setting of ours, on a private Dagster home and
    warehouse: the demo must need nothing configured, and must not touch the repository's."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(repo_root / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ETL_CONTACTS_", "EXPRESS_CHAT_", "DAGSTER_"))
    }
    env.update(
        DAGSTER_HOME=str(dagster_home),
        ETL_CONTACTS_HOME=str(tmp_path / "etl_contacts_home"),
        ETL_CONTACTS_DATABASE_URL=database_url,
        COLUMNS="200",  # rich wraps its lines at 80 columns off a terminal
    )
    return env


def _etl_contacts(command: str, *, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """The command as a user runs it: its exit code and everything it printed."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("etl-contacts")), command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_demo_loads_every_sandbox_contact_and_says_so(
    tmp_path: Path, repo_root: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole product on one machine: sandbox, Dagster run, warehouse, the analyst query."""
    before = datetime.now(UTC).date()
    environment = _demo_environment(tmp_path, repo_root, database_url)
    code, output = _etl_contacts("demo", env=environment, cwd=tmp_path)
    assert code == 0, output
    assert "Traceback" not in output

    # what it announces, the rows per table it loaded, and the closing line
    announced = re.search(
        rf"sandbox: {DEMO_CONTACTS} contacts over {DEMO_DAYS} days \((\S+)\.\.(\S+)\)", output
    )
    assert announced, output
    first, last = (date.fromisoformat(day) for day in announced.groups())
    # the last DEMO_DAYS complete days (the run may straddle midnight UTC)
    assert last in {before - timedelta(days=1), datetime.now(UTC).date() - timedelta(days=1)}
    assert (last - first).days == DEMO_DAYS - 1
    printed = {
        table: int(match.group(1))
        for table in CONTACT_TABLES
        if (match := re.search(rf"│ {table}\s+│\s+(\d+) │", output))
    }
    assert printed.keys() == set(CONTACT_TABLES), output
    assert printed["contacts"] == DEMO_CONTACTS
    assert re.search(r"loaded in [\d.]+ s, \d+ requests", output), output
    closing = re.search(
        rf"^loaded {first}\.\.{last}: (\d+) inserted, 0 updated, 0 unchanged, 0 rejected "
        r"in [\d.]+ s \(run ([0-9a-f-]{36})\)$",
        output,
        re.MULTILINE,
    )
    assert closing, output
    assert int(closing.group(1)) == DEMO_CONTACTS, "a fresh warehouse: every contact is new"
    assert "etl-contacts psql" in output[closing.end() :], "the next step: ask your own question"
    assert "contacts per channel" in output
    shown_channels = dict(
        re.findall(r"│ ([\w()]+)\s+│\s+(\d+) │", output.split("contacts per channel")[1])
    )

    # what it left in the warehouse: every contact served, the other tables as printed
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = {
                table: conn.execute(sa.text(f"SELECT count(*) FROM {SCHEMA}.{table}")).scalar_one()
                for table in CONTACT_TABLES
            }
            per_channel = conn.execute(
                sa.text(
                    f"SELECT coalesce(channel, '(none)'), count(*) FROM {SCHEMA}.contacts "
                    "WHERE deleted_at IS NULL GROUP BY 1"
                )
            ).all()
            runs = conn.execute(sa.text(f"SELECT status FROM {SCHEMA}.sync_runs")).scalars().all()
    finally:
        engine.dispose()
    assert stored == printed
    assert {channel: str(count) for channel, count in per_channel} == shown_channels
    assert sum(count for _, count in per_channel) == DEMO_CONTACTS
    assert runs == ["success"]

    # the load went through Dagster, on the instance DAGSTER_HOME names, like any other run
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(closing.group(2))
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.job_name == "sync_contacts"

    # `status` as the next steps print it: true and calm about the demo's account
    shown = re.search(
        r"^  (ETL_CONTACTS_START_DATE=(\S+)) \.venv/bin/etl-contacts status$", output, re.M
    )
    assert shown and shown.group(2) == str(first), output
    code, said = _etl_contacts(
        "status", env={**environment, "ETL_CONTACTS_START_DATE": str(first)}, cwd=tmp_path
    )
    assert code == 0, said
    assert "default: every day up to yesterday is loaded" in said, said
    assert re.search(r"default: every row is at most [\d.]+ days behind the source", said), said
    assert "never verified" not in said and "not loaded" not in said, said
