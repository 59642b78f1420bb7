"""`sandbox serve` refuses what it cannot serve, before it starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from etl_contacts.sandbox.cli import app


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--preset", "chaotic"], "calm, busy, hostile"),
        (["--sort", "name"], "lastSeenAt, createdAt, _id"),
        (["--ends-at", "sometimes"], "inclusive, exclusive"),
        (["--fault", "429=often"], "KIND=RATE"),
        (["--fault", "teapot=0.1"], "unknown fault kinds"),
        (["--fault", "500=0.7", "--fault", "502=0.7"], "at most 1"),
        (["--anchor", "2024-13-01"], "YYYY-MM-DD"),
        (["--page-size", "0"], "page-size"),
    ],
)
def test_bad_options_are_refused_with_what_to_use(arguments: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "0", *arguments])
    assert result.exit_code == 2
    words = [word for word in result.output.split() if word not in "│╭╮╰╯"]
    assert complaint in " ".join(words)
