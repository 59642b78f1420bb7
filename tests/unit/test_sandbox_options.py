"""`sandbox serve` refuses what it cannot serve, before it starts, and serves what it is asked."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from etl_contacts.sandbox import command
from etl_contacts.sandbox.command import app
from etl_contacts.sandbox.config import SandboxConfig


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--preset", "chaotic"], "calm, busy, hostile"),
        (["--sort", "name"], "lastSeenAt, createdAt, updatedAt, _id"),
        (["--ends-at", "sometimes"], "inclusive, exclusive"),
        (["--fault", "429=often"], "KIND=RATE"),
        (["--fault", "teapot=0.1"], "unknown fault kinds"),
        (["--fault", "500=0.7", "--fault", "502=0.7"], "at most 1"),
        (["--anchor", "2024-13-01"], "YYYY-MM-DD"),
        (["--page-size", "0"], "page-size"),
        (["--nulls", "middle"], "last, first"),
        (["--two-ranges", "xor"], "and, or, lastSeenAt, createdAt"),
        (["--never-active-share", "1.5"], "never-active-share"),
    ],
)
def test_bad_options_are_refused_with_what_to_use(arguments: list[str], complaint: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "0", *arguments])
    assert result.exit_code == 2
    words = [word for word in result.output.split() if word not in "│╭╮╰╯"]
    assert complaint in " ".join(words)


@pytest.mark.parametrize(
    ("arguments", "quirks"),
    [
        ([], (0.0, False, 0, {})),
        (
            [
                "--never-active-share",
                "0.25",
                "--nulls",
                "first",
                "--clock-offset-ms",
                "-5000",
                "--fault",
                "hide=0.5",
            ],
            (0.25, True, -5000, {"hide": 0.5}),
        ),
    ],
)
def test_the_quirks_reach_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], quirks: tuple[object, ...]
) -> None:
    configs: list[SandboxConfig] = []

    class Started:
        base_url = "http://sandbox"

        def __init__(self, config: SandboxConfig, **_: object) -> None:
            configs.append(config)

        def serve_forever(self) -> None:
            """Returns at once: the test needs the configuration, not a server."""

    monkeypatch.setattr(command, "SandboxServer", Started)
    result = CliRunner().invoke(app, ["serve", "--port", "0", *arguments])
    assert result.exit_code == 0, result.output
    (config,) = configs
    assert (
        config.never_active_share,
        config.nulls_first,
        config.clock_offset_ms,
        config.faults,
    ) == quirks
