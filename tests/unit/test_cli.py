"""User mistakes get one line of cause and one of remedy, and exit code 2, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from etl_contacts.cli.app import app


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("EXPRESS_CHAT_API_TOKEN", raising=False)
    monkeypatch.delenv("ETL_CONTACTS_ACCOUNTS", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_a_bad_day_says_how_to_write_it(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "t")
    result = run("sync", "--start", "2024-02-30", "--end", "2024-03-01")
    assert result.exit_code == 2
    assert "'2024-02-30' is not a day" in result.output
    assert "YYYY-MM-DD" in result.output
    assert "Traceback" not in result.output


def test_a_missing_token_names_the_variable(run) -> None:
    result = run("sync", "--start", "2024-03-01", "--end", "2024-03-01")
    assert result.exit_code == 2
    assert "EXPRESS_CHAT_API_TOKEN is not set" in result.output
    assert "export EXPRESS_CHAT_API_TOKEN=" in result.output


def test_a_reversed_range_is_refused(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "t")
    result = run("sync", "--start", "2024-03-02", "--end", "2024-03-01")
    assert result.exit_code == 2
    assert "before --start" in result.output


def test_a_day_before_the_first_partition_is_refused(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPRESS_CHAT_API_TOKEN", "t")
    result = run("sync", "--start", "2023-12-31", "--end", "2024-01-01")
    assert result.exit_code == 2
    assert "ETL_CONTACTS_START_DATE" in result.output


def test_an_unknown_account_lists_the_known_ones(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_CONTACTS_ACCOUNTS", "acme=ACME_TOKEN,beta=BETA_TOKEN")
    result = run("sync", "--account", "gamma", "--start", "2024-03-01")
    assert result.exit_code == 2
    assert "known: acme, beta" in result.output
