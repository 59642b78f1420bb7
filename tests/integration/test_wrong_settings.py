"""A wrong setting, met by each command a user runs: one line naming the variable, the value and
a valid example, exit code 2, no traceback. Real processes, because a traceback comes from what
a module does when it is imported, which an in-process runner has already done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).with_name("etl-contacts"))
COMMANDS = ("sync", "status", "doctor", "migrate", "psql", "demo")
WRONG = {
    "ETL_CONTACTS_TIMEZONE=CET": "use an Area/City name (Europe/Berlin)",
    "ETL_CONTACTS_TIMEZONE=Mars/Olympus": "use an IANA name (Europe/Berlin)",
    "ETL_CONTACTS_REVERIFY_DAYS=abc": "is not a positive number of days (e.g. 7)",
    "ETL_CONTACTS_START_DATE=yesterday": "use YYYY-MM-DD (e.g. 2024-01-01)",
    "ETL_CONTACTS_MAX_DAYS_PER_RUN=0": "is not a positive number of days (e.g. ",
    "ETL_CONTACTS_ACCOUNTS=acme": "e.g. acme=ACME_EXPRESS_CHAT_TOKEN",
    "ETL_CONTACTS_MAX_DELETE_PERCENT=all": "is not a number from 0 to 100 (e.g. 1)",
}


def _run(argv: list[str], setting: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    name, _, value = setting.partition("=")
    env = {
        key: val
        for key, val in os.environ.items()
        if not key.startswith(("ETL_CONTACTS_", "EXPRESS_CHAT_", "DAGSTER_"))
    }
    env.update(
        {name: value, "DAGSTER_HOME": str(tmp_path), "ETL_CONTACTS_HOME": str(tmp_path / "home")}
    )
    env["COLUMNS"] = "80"  # the line must stay one line where a terminal would wrap it
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )


@pytest.mark.parametrize("setting", WRONG)
@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_answers_a_wrong_setting_in_one_line(
    command: str, setting: str, tmp_path: Path
) -> None:
    done = _run([COMMAND, command], setting, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    error, remedy = output.strip().splitlines()
    assert error.startswith(f"error: {setting.partition('=')[0]}=")
    assert repr(setting.partition("=")[2]) in error
    assert WRONG[setting] in error
    assert remedy == "fix: correct the variable in your environment and run again"
    assert not (tmp_path / "home").exists(), "nothing is created before the settings are valid"


def test_the_code_location_shows_the_same_line(tmp_path: Path, repo_root: Path) -> None:
    """What the UI shows when the location cannot load: Dagster's loader reports the error, and
    its message is ours, not an import-time traceback of the module."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    argv = [dagster, "definitions", "validate", "-w", str(repo_root / "workspace.yaml")]
    done = _run(argv, "ETL_CONTACTS_TIMEZONE=CET", tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "ETL_CONTACTS_TIMEZONE='CET' is ambiguous" in output
    assert "ConfigError" in output
