"""`sandbox serve` as its own process: it listens, answers, and stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import requests
from process_groups import ProcessGroup

from etl_contacts.sandbox import DEMO_TOKEN

SERVE = [sys.executable, "-c", "from etl_contacts.sandbox.command import app; app()", "serve"]


def test_serve_answers_until_interrupted() -> None:
    options = [
        "--port",
        "0",
        "--contacts",
        "120",
        "--days",
        "3",
        "--page-size",
        "50",
        "--preset",
        "hostile",
        "--fault",
        "429=0",
        "--anchor",
        "2024-06-01",
    ]
    # default SIGINT in the child even when this runs under a shell that ignores it
    server = ProcessGroup([*SERVE, *options], name="sandbox", stderr=subprocess.PIPE)
    try:
        assert server.stderr is not None
        announced = re.search(r"http://\S+", server.stderr.readline().decode())
        assert announced, "the server's first line gives its URL"
        url = announced.group(0)
        truth = requests.get(f"{url}/_sandbox/truth", timeout=10).json()
        assert len(truth["contacts"]) == 120 and truth["config"]["page_size"] == 50
        assert truth["config"]["faults"]["429"] == 0 and truth["config"]["faults"]["500"] > 0
        assert truth["config"]["anchor"].startswith("2024-06-01")
        wrong = {"Authorization": f"Bearer {DEMO_TOKEN[::-1]}", "authtype": "Key"}
        assert (
            requests.post(f"{url}/inbox/users", json={}, headers=wrong, timeout=10).status_code
            == 400
        )
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
