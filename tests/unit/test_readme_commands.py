"""Every command the README tells a user to type exists as written.

What each command does is tested where it is built (the demo, psql, sync, status and doctor
tests run them as real processes); here the README itself is read, so that a renamed option or
a removed `make` target cannot leave the documentation promising it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl_contacts.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# an invocation in a code span or at the start of a code block line, up to the end of the span,
# a comment or a table cell
COMMAND = re.compile(r"(?:`|^)(etl-contacts(?: [^`#|\n]*)?)", re.MULTILINE)
MAKE_TARGET = re.compile(r"(?:`|^)make ([a-z][a-z-]*)", re.MULTILINE)


def _invocations() -> list[list[str]]:
    found = {tuple(shlex.split(match)) for match in COMMAND.findall(README)}
    return sorted(list(words) for words in found)


def _subcommand(words: list[str]) -> list[str]:
    """The words naming the (sub)command: those before the first option or argument value."""
    path = []
    for word in words[1:]:
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    return path


def test_the_readme_names_the_commands_a_user_runs() -> None:
    named = {" ".join(_subcommand(words)) for words in _invocations()}
    assert {"sync", "status", "doctor", "migrate", "psql", "sandbox serve"} <= named


@pytest.mark.parametrize("words", _invocations(), ids=" ".join)
def test_each_readme_command_and_its_options_exist(words: list[str]) -> None:
    path = _subcommand(words)
    shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert shown.exit_code == 0, f"`{' '.join(words)}`: {shown.output}"
    options = [word.split("=")[0] for word in words if word.startswith("--")]
    missing = [option for option in options if option not in shown.output]
    assert not missing, f"`{' '.join(words)}` names options `etl-contacts {path}` lacks"


def test_each_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    named = set(MAKE_TARGET.findall(README))
    assert {"demo", "test", "lint", "bench", "conformance"} <= named
    assert named - targets == set()
