"""`etl-contacts sync` and `status` end to end: through Dagster, on a DAGSTER_HOME instance."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl_contacts.cli.app import app
from etl_contacts.sandbox import SandboxConfig, SandboxServer

TOKEN = "1eaf1eaf1eaf1eaf1eaf1eaf"


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    with SandboxServer(SandboxConfig(contacts=300, days=4, token=TOKEN)) as sandbox:
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        monkeypatch.setenv("EXPRESS_CHAT_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("ETL_CONTACTS_DATABASE_URL", database_url)
        monkeypatch.setenv("ETL_CONTACTS_START_DATE", "2026-01-01")
        monkeypatch.delenv("ETL_CONTACTS_ACCOUNTS", raising=False)
        yield CliRunner()


def test_sync_loads_the_days_and_status_shows_the_run(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    result = cli.invoke(app, ["sync", "--start", day, "--end", day])
    assert result.exit_code == 0, result.output
    assert "window 2/2 fetched" in result.output, "progress, as plain lines off a terminal"
    last_lines = " ".join(result.output.strip().splitlines()[-3:])  # rich wraps at 80 columns
    assert f"loaded {day}:" in last_lines
    status = cli.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "success" in status.output
    # one day of a history since 2026-01-01 was read: the others were never verified
    history = (datetime.now(UTC).date() - timedelta(days=1) - date(2026, 1, 1)).days + 1
    assert f"{history - 1} of {history} days never verified" in " ".join(status.output.split())


@pytest.mark.usefixtures("cli")  # the sandbox and the environment; the command runs apart
def test_on_a_terminal_sync_draws_a_bar_with_rate_and_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "160")
    first = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    last = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    main, terminal = pty.openpty()
    command: list[str | Path] = [
        Path(sys.executable).with_name("etl-contacts"),
        "sync",
        "--start",
        first,
        "--end",
        last,
    ]
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other end closed: the command is done
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))  # colours
    # three createdAt windows, one for the contacts active in those days but created before
    assert "4/4 windows" in text
    assert "contacts/s" in text
    assert "left" in text
    assert "window 4/4 fetched" not in text, "a bar on a terminal, not the plain lines"
    assert f"loaded {first}..{last}:" in text


def test_a_wrong_token_fails_with_the_cause_and_exit_code_1(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "0" * 24)
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    result = cli.invoke(app, ["sync", "--start", day, "--end", day])
    assert result.exit_code == 1
    assert f"days {day} were not loaded" in result.output
    assert "rejected the token" in result.output
    assert "0" * 24 not in result.output
    assert "Traceback" not in result.output


def test_doctor_names_each_problem_with_its_fix(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    healthy = cli.invoke(app, ["migrate"])
    assert healthy.exit_code == 0, healthy.output
    assert "not known yet" in " ".join(cli.invoke(app, ["doctor"]).output.split())
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert cli.invoke(app, ["sync", "--start", day, "--end", day]).exit_code == 0
    good = cli.invoke(app, ["doctor"])
    assert good.exit_code == 0, good.output
    assert "accepts the token" in good.output
    assert "newest migration" in good.output
    assert "the server ANDs lastSeenAt and createdAt ranges" in " ".join(good.output.split())
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "f" * 24)
    bad = cli.invoke(app, ["doctor"])
    assert bad.exit_code == 1
    assert "rejected the token" in bad.output
    assert "fix: check EXPRESS_CHAT_API_TOKEN" in bad.output
