"""`etl-contacts demo`: the whole product on one laptop, with nothing configured.

An in-process sandbox stands in for the API; the warehouse is the embedded PostgreSQL unless
`ETL_CONTACTS_DATABASE_URL` is set. The load goes through Dagster like any other run.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from etl_contacts.cli.launch import LaunchOutcome, launch_sync
from etl_contacts.sandbox import DEMO_TOKEN, SandboxConfig, SandboxServer
from etl_contacts.settings import (
    BASE_URL_ENV,
    DEFAULT_ACCOUNT,
    DEFAULT_START_DATE,
    START_DATE_ENV,
    TOKEN_ENV,
    Account,
    Settings,
)
from etl_contacts.warehouse import Warehouse, tables

DEMO_CONTACTS = 20_000
DEMO_DAYS = 30
DEMO_SEED = 2024
# shown as written and run as shown: what a newcomer copies into psql
ANALYST_QUERY = """SELECT channel, count(*) AS contacts
FROM {schema}.contacts_current
GROUP BY channel
ORDER BY contacts DESC;"""


def next_steps(first: date) -> str:
    """What to try after the demo, with the start date its account has: the default would
    show every earlier day as not loaded."""
    start = f"{START_DATE_ENV}={first}"
    return f"""
unchanged = received with the same content as the stored row: nothing written, only marked seen.
next (the demo's account begins on {first}; for a real account, {START_DATE_ENV} is the
first day of history to load and keep verified, by default {DEFAULT_START_DATE}):
  {start} make dev
      the Dagster UI on http://127.0.0.1:3000 (assets, runs, checks)
  {start} .venv/bin/etl-contacts status
      every day loaded and verified, freshness and last runs
  .venv/bin/etl-contacts psql
      a psql session on the warehouse, the query above included"""


def run_demo(
    settings: Settings, warehouse: Warehouse, console: Console
) -> tuple[LaunchOutcome, date, date]:
    """Serve a sandbox, load its 30 days in one Dagster run, and show what an analyst sees."""
    # the account's today: west of UTC in the evening, UTC's today is not a partition yet
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    first, last = today - timedelta(days=DEMO_DAYS), today - timedelta(days=1)
    config = SandboxConfig(contacts=DEMO_CONTACTS, days=DEMO_DAYS, seed=DEMO_SEED, token=DEMO_TOKEN)
    console.print(f"sandbox: {DEMO_CONTACTS} contacts over {DEMO_DAYS} days ({first}..{last})")
    with SandboxServer(config) as sandbox:
        os.environ[BASE_URL_ENV] = sandbox.base_url
        os.environ[TOKEN_ENV] = DEMO_TOKEN
        account = Account(DEFAULT_ACCOUNT, TOKEN_ENV)
        demo_settings = replace(
            settings, base_url=sandbox.base_url, accounts=(account,), start_date=first
        )
        outcome = launch_sync(demo_settings, account, first, last)
    if outcome.success:
        _summary(outcome, warehouse, settings.schema, console)
    return outcome, first, last


def _summary(outcome: LaunchOutcome, warehouse: Warehouse, schema: str, console: Console) -> None:
    rows = Table(title=f"warehouse schema {schema}")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for table in tables.CONTACT_TABLES:
        rows.add_row(table, str(outcome.value("dagster/row_count", table)))
    console.print(rows)
    console.print(f"loaded in {outcome.value('seconds')} s, {outcome.value('requests')} requests")

    query = ANALYST_QUERY.format(schema=warehouse.engine.dialect.identifier_preparer.quote(schema))
    answer = Table(title="contacts per channel")
    answer.add_column("channel")
    answer.add_column("contacts", justify="right")
    with warehouse.engine.connect() as conn:
        for channel, count in conn.execute(sa.text(query)):
            answer.add_row("(none)" if channel is None else str(channel), str(count))
    console.print(answer)
    console.print(f"the query, as an analyst writes it:\n{query}", highlight=False)
