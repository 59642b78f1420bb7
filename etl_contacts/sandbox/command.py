"""`etl-contacts sandbox serve`: the sandbox as a standalone server, for demos and benchmarks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from typer.models import OptionInfo

from etl_contacts.sandbox.config import (
    DEMO_TOKEN,
    FAULT_KINDS,
    PRESETS,
    SILENT_FAULT_KINDS,
    SORTS,
    TWO_RANGES,
    SandboxConfig,
)
from etl_contacts.sandbox.config import preset as apply_preset
from etl_contacts.sandbox.server import SandboxServer

app = typer.Typer(no_args_is_help=True)

Choice = TypeVar("Choice", bound=str)


def _preset_default(help_text: str) -> OptionInfo:
    return typer.Option(min=0.0, show_default="the preset's", help=help_text)


@app.callback()
def sandbox() -> None:
    """A local Express-Chat-compatible API."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8400,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    contacts: Annotated[int, typer.Option(min=0, help="Number of contacts.")] = 1_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history before the anchor.")] = 30,
    seed: Annotated[int, typer.Option(help="Same seed, anchor and sizes: same contacts.")] = 1,
    anchor: Annotated[
        str | None, typer.Option(help="End of the history, YYYY-MM-DD (UTC). Default: today.")
    ] = None,
    token: Annotated[str, typer.Option(help="The accepted API token.")] = DEMO_TOKEN,
    preset: Annotated[
        str, typer.Option(help="calm (still), busy (activity), hostile (activity and faults).")
    ] = "calm",
    page_size: Annotated[int, typer.Option(min=1, help="Contacts per page.")] = 20,
    sort: Annotated[
        str, typer.Option(help="lastSeenAt, createdAt, updatedAt (newest first) or _id.")
    ] = "lastSeenAt",
    reverse: Annotated[
        bool, typer.Option("--reverse", help="The sort backwards (oldest first; _id newest).")
    ] = False,
    ends_at: Annotated[str, typer.Option(help="Is endsAt inclusive or exclusive?")] = "exclusive",
    starts_at: Annotated[
        str, typer.Option(help="Is startAt inclusive or exclusive?")
    ] = "inclusive",
    precision: Annotated[
        str, typer.Option(help="Are date bounds read to the millisecond (ms) or second (s)?")
    ] = "ms",
    two_ranges: Annotated[
        str,
        typer.Option(
            help="Both date ranges in one body: and, or, or the one range applied "
            "(lastSeenAt, createdAt)."
        ),
    ] = "and",
    page_size_two_ranges: Annotated[
        int, typer.Option(min=0, help="Pages of a query with both date ranges (0: --page-size).")
    ] = 0,
    never_active_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of contacts never active (no lastSeenAt)."),
    ] = 0.0,
    ids_minted_at_import: Annotated[
        bool,
        typer.Option(help="Bulk imports' _ids made at their import, not their createdAt."),
    ] = False,
    nulls: Annotated[
        str, typer.Option(help="Where a lastSeenAt sort puts those: last (as MongoDB) or first.")
    ] = "last",
    clock_offset_ms: Annotated[
        int, typer.Option(help="The server's clock minus ours, in ms (timestamps, Date header).")
    ] = 0,
    activity_rate: Annotated[
        float | None, _preset_default("Contacts becoming active, per request (2: two each).")
    ] = None,
    agent_change_rate: Annotated[
        float | None, _preset_default("Contacts an agent changes (status, tags...), per request.")
    ] = None,
    create_rate: Annotated[float | None, _preset_default("Contacts created, per request.")] = None,
    delete_rate: Annotated[float | None, _preset_default("Contacts deleted, per request.")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help=f"KIND=RATE, repeatable; kinds: {', '.join(FAULT_KINDS + SILENT_FAULT_KINDS)}."
        ),
    ] = None,
    latency_ms: Annotated[float | None, _preset_default("Added to every request, in ms.")] = None,
    jitter_ms: Annotated[float | None, _preset_default("Plus up to this, at random.")] = None,
    slow_seconds: Annotated[
        float | None, _preset_default("How late a 'slow' fault answers.")
    ] = None,
) -> None:
    """Serve POST /inbox/users, GET /_sandbox/truth and GET /_sandbox/status until interrupted.

    Rates and latencies default to the preset's; given ones override it.
    """
    preset_name = _choice(preset, PRESETS, "--preset")
    sort_field = _choice(sort, SORTS, "--sort")
    ends_inclusive = _choice(ends_at, ("inclusive", "exclusive"), "--ends-at") == "inclusive"
    starts_exclusive = _choice(starts_at, ("inclusive", "exclusive"), "--starts-at") == "exclusive"
    to_the_second = _choice(precision, ("ms", "s"), "--precision") == "s"
    both = _choice(two_ranges, TWO_RANGES, "--two-ranges")
    nulls_first = _choice(nulls, ("last", "first"), "--nulls") == "first"
    try:
        base = SandboxConfig(
            contacts=contacts,
            days=days,
            seed=seed,
            token=token,
            anchor=_day(anchor) if anchor else None,
            page_size=page_size,
            sort=sort_field,
            ends_at_inclusive=ends_inclusive,
            starts_at_exclusive=starts_exclusive,
            bound_precision_ms=1000 if to_the_second else 1,
            two_ranges=both,
            page_size_two_ranges=page_size_two_ranges,
            reverse_sort=reverse,
            never_active_share=never_active_share,
            ids_minted_at_import=ids_minted_at_import,
            nulls_first=nulls_first,
            clock_offset_ms=clock_offset_ms,
        )
        config = apply_preset(preset_name, base)
        config = replace(
            config,
            faults={**config.faults, **dict(_fault(item) for item in fault or [])},
            activity_rate=_or(activity_rate, config.activity_rate),
            agent_change_rate=_or(agent_change_rate, config.agent_change_rate),
            create_rate=_or(create_rate, config.create_rate),
            delete_rate=_or(delete_rate, config.delete_rate),
            latency_ms=_or(latency_ms, config.latency_ms),
            jitter_ms=_or(jitter_ms, config.jitter_ms),
            slow_seconds=_or(slow_seconds, config.slow_seconds),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # listening only once every contact is encoded: the first client is served at full speed
    server = SandboxServer(config, host=host, port=port, ready_first=True)
    typer.echo(f"sandbox: {contacts:,} contacts over {days} days at {server.base_url}", err=True)
    typer.echo(f"token: {token}  (send Authorization: Bearer <token> and authtype: Key)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.close()


def _choice(value: str, allowed: tuple[Choice, ...], option: str) -> Choice:
    """`value` as one of `allowed`: typer reads these options as plain strings."""
    for choice in allowed:
        if value == choice:
            return choice
    raise typer.BadParameter(f"use one of {', '.join(allowed)}", param_hint=option)


def _or(given: float | None, default: float) -> float:
    """A rate or delay given on the command line, else the preset's."""
    return default if given is None else given


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"--anchor {text!r} is not YYYY-MM-DD") from exc


def _fault(item: str) -> tuple[str, float]:
    kind, _, rate = item.partition("=")
    try:
        return kind, float(rate)
    except ValueError as exc:
        raise ValueError(f"--fault {item!r} is not KIND=RATE, e.g. 429=0.1") from exc
