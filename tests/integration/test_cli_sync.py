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

import orjson
import pytest
import requests
import sqlalchemy as sa
from typer.testing import CliRunner

from etl_contacts.cli.app import app
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.warehouse import Warehouse

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
    assert "fix: check EXPRESS_CHAT_API_TOKEN: it must hold an API key" in result.output
    assert "0" * 24 not in result.output
    assert "Traceback" not in result.output


def _failed_sync(cli: CliRunner, monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """`sync` of one day with these variables changed: it must fail (exit 1) and name the day
    to rerun; its output, as one line."""
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    result = cli.invoke(app, ["sync", "--start", day, "--end", day])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert f"then rerun `etl-contacts sync --start {day} --end {day}`" in output
    assert "Traceback" not in output
    return output


def test_an_untrusted_certificate_fails_with_what_to_check(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # https to the sandbox's plain HTTP port: the TLS handshake fails at once, never retried
    plain = os.environ["EXPRESS_CHAT_BASE_URL"]
    output = _failed_sync(
        cli, monkeypatch, EXPRESS_CHAT_BASE_URL=plain.replace("http://", "https://")
    )
    assert "TLS verification of https://" in output
    assert "fix: point EXPRESS_CHAT_CA_BUNDLE at the CA that signed" in output


def test_an_unreachable_warehouse_fails_with_what_to_check(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://etl:secret@127.0.0.1:1/nowhere"
    output = _failed_sync(cli, monkeypatch, ETL_CONTACTS_DATABASE_URL=url)
    assert "Connection refused" in output
    assert "fix: check that PostgreSQL is running and ETL_CONTACTS_DATABASE_URL is right" in output
    assert "secret" not in output


def test_an_unreachable_api_fails_with_what_to_check(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = _failed_sync(cli, monkeypatch, EXPRESS_CHAT_BASE_URL="http://127.0.0.1:1")
    assert "connection: the connection failed" in output
    assert "fix: check that EXPRESS_CHAT_BASE_URL is right and reachable" in output


def test_doctor_names_each_problem_with_its_fix(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
    healthy = cli.invoke(app, ["migrate"])
    assert healthy.exit_code == 0, healthy.output
    first = " ".join(cli.invoke(app, ["doctor"]).output.split())
    assert "not known yet (no run has read contacts active in its days)" in first
    assert "what the server does is not known yet (no run)" in first
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert cli.invoke(app, ["sync", "--start", day, "--end", day]).exit_code == 0
    good = cli.invoke(app, ["doctor"])
    assert good.exit_code == 0, good.output
    assert "accepts the token" in good.output
    assert "newest migration" in good.output
    assert "the server ANDs lastSeenAt and createdAt ranges" in " ".join(good.output.split())
    # what the run found, against what the sandbox does: newest activity first, pages of 20
    found = " ".join(good.output.split())
    assert "the last run found sort: lastSeenAt descending" in found, found
    assert "page size: 20" in found, found
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "f" * 24)
    bad = cli.invoke(app, ["doctor"])
    assert bad.exit_code == 1
    assert "rejected the token" in bad.output
    assert "fix: check EXPRESS_CHAT_API_TOKEN" in bad.output


def test_a_mass_deletion_at_the_source_waits_for_allow_mass_delete(
    cli: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third of a day deleted at the source: missing after the first look, held by the guard
    at the second, deleted once a run is allowed; `status` says which state it is in."""
    config = SandboxConfig(contacts=600, days=4, token=TOKEN, seed=3)
    with SandboxServer(config) as sandbox:
        monkeypatch.setenv("EXPRESS_CHAT_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", TOKEN)
        anchor = config.anchor_time
        first, last = (anchor - timedelta(days=4)).date(), (anchor - timedelta(days=1)).date()
        day = str(last - timedelta(days=1))
        loaded = cli.invoke(app, ["sync", "--start", str(first), "--end", str(last)])
        assert loaded.exit_code == 0, loaded.output
        answer = requests.post(
            f"{sandbox.base_url}/_sandbox/delete",
            data=orjson.dumps({"created_on": day, "share": 0.34}),
            timeout=30,
        )
        deleted = answer.json()["deleted"]
        assert deleted > 6, "more than 1 % of the account"

        def sync(*flags: str) -> str:
            result = cli.invoke(app, ["sync", "--start", day, "--end", day, *flags])
            assert result.exit_code == 0, result.output
            return " ".join(result.output.split())

        assert f"0 deleted, {deleted} missing" in sync()
        held = sync()
        assert f"0 deleted, 0 missing, {deleted} deletions held" in held
        assert "etl-contacts sync --allow-mass-delete" in held
        status = cli.invoke(app, ["status"])
        shown = " ".join(status.output.split())
        assert f"{deleted} contacts missing, awaiting a second look" in shown
        assert f"the last run held {deleted} deletions back" in shown
        assert f"{deleted} deleted, 0 missing, 0 deletions held" in sync("--allow-mass-delete")
        gone = {str(c["_id"]) for c in sandbox.truth()["deleted"]}
        with Warehouse(database_url).engine.connect() as conn:
            stored = set(
                conn.execute(
                    sa.text(
                        "SELECT contact_id FROM express_chat.contacts WHERE deleted_at IS NOT NULL"
                    )
                ).scalars()
            )
        assert stored == gone
        status = cli.invoke(app, ["status"])
        assert "0 contacts missing" in " ".join(status.output.split())
