"""`etl-contacts sandbox serve`: the sandbox as a standalone server, for demos and benchmarks."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from etl_contacts.sandbox.config import DEMO_TOKEN, FAULT_KINDS, SandboxConfig, preset
from etl_contacts.sandbox.server import SandboxServer

app = typer.Typer(no_args_is_help=True)


@app.callback()
def sandbox() -> None:
    """A local Express-Chat-compatible API."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0: any free port).")] = 8400,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    contacts: Annotated[int, typer.Option(help="Number of contacts.")] = 1_000,
    days: Annotated[int, typer.Option(help="Days of history before today 00:00 UTC.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same contacts.")] = 1,
    token: Annotated[str, typer.Option(help="The accepted API token.")] = DEMO_TOKEN,
    preset_name: Annotated[
        str, typer.Option("--preset", help="calm (still), busy (activity), hostile (+ faults).")
    ] = "calm",
    page_size: Annotated[int, typer.Option(help="Contacts per page.")] = 20,
    sort: Annotated[str, typer.Option(help="lastSeenAt, createdAt (newest first) or _id.")] = (
        "lastSeenAt"
    ),
    ends_at: Annotated[str, typer.Option(help="Is endsAt inclusive or exclusive?")] = "exclusive",
    latency_ms: Annotated[float, typer.Option(help="Added to every request, in ms.")] = 0.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help=f"KIND=RATE, repeatable; kinds: {', '.join(FAULT_KINDS)}."),
    ] = None,
) -> None:
    """Serve POST /inbox/users and GET /_sandbox/truth until interrupted."""
    if sort not in ("lastSeenAt", "createdAt", "_id"):
        raise typer.BadParameter("use lastSeenAt, createdAt or _id", param_hint="--sort")
    if ends_at not in ("inclusive", "exclusive"):
        raise typer.BadParameter("use inclusive or exclusive", param_hint="--ends-at")
    base = SandboxConfig(
        contacts=contacts,
        days=days,
        seed=seed,
        token=token,
        page_size=page_size,
        sort=sort,  # type: ignore[arg-type]
        ends_at_inclusive=ends_at == "inclusive",
    )
    try:
        config = preset(preset_name, base)  # type: ignore[arg-type]
        extra = dict(_fault(item) for item in fault or [])
        config = replace(config, faults={**config.faults, **extra}, latency_ms=latency_ms)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    server = SandboxServer(config, host=host, port=port)
    typer.echo(f"sandbox: {contacts} contacts over {days} days at {server.base_url}", err=True)
    typer.echo(f"token: {token}  (send as Authorization: Bearer <token>, authtype: Key)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.close()


def _fault(item: str) -> tuple[str, float]:
    kind, _, rate = item.partition("=")
    try:
        return kind, float(rate)
    except ValueError as exc:
        raise ValueError(f"--fault {item!r} is not KIND=RATE, e.g. 429=0.1") from exc
