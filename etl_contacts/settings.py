"""Configuration read from the environment: the only difference between a laptop and production."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_BASE_URL = "https://api-v7.express-chat.com"
DEFAULT_SCHEMA = "express_chat"
DEFAULT_START_DATE = "2024-01-01"
DEFAULT_ACCOUNT = "default"
DEFAULT_HOME = ".etl_contacts"

TOKEN_ENV = "EXPRESS_CHAT_API_TOKEN"
BASE_URL_ENV = "EXPRESS_CHAT_BASE_URL"
CA_BUNDLE_ENV = "EXPRESS_CHAT_CA_BUNDLE"
DATABASE_URL_ENV = "ETL_CONTACTS_DATABASE_URL"
DATABASE_FIX = (
    f"check that PostgreSQL is running and {DATABASE_URL_ENV} is right "
    "(unset it to use the embedded warehouse)"
)
SCHEMA_ENV = "ETL_CONTACTS_SCHEMA"
START_DATE_ENV = "ETL_CONTACTS_START_DATE"
TIMEZONE_ENV = "ETL_CONTACTS_TIMEZONE"
HOME_ENV = "ETL_CONTACTS_HOME"
PII_KEY_ENV = "ETL_CONTACTS_PII_KEY"
ACCOUNTS_ENV = "ETL_CONTACTS_ACCOUNTS"
MAX_DAYS_PER_RUN_ENV = "ETL_CONTACTS_MAX_DAYS_PER_RUN"
DEFAULT_MAX_DAYS_PER_RUN = 400
REVERIFY_DAYS_ENV = "ETL_CONTACTS_REVERIFY_DAYS"
DEFAULT_REVERIFY_DAYS = 7
LOOKBACK_DAYS_ENV = "ETL_CONTACTS_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 3
MAX_DELETE_PERCENT_ENV = "ETL_CONTACTS_MAX_DELETE_PERCENT"
DEFAULT_MAX_DELETE_PERCENT = 1.0
SUSPECT_PAUSE_ENV = "ETL_CONTACTS_SUSPECT_PAUSE_SECONDS"
DEFAULT_SUSPECT_PAUSE_SECONDS = 15.0
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Freshness:
    """The promise: every day since `history_start` read completely within `reverify_days`,
    and the activity of the last `lookback_days` re-read every night."""

    history_start: date
    reverify_days: int
    lookback_days: int

    def history(self, last: date) -> list[date]:
        return days_between(self.history_start, last)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _days(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}={raw!r} is not a positive number of days (e.g. {default})")
    return int(raw)


def _number(environ: Mapping[str, str], name: str, default: float, most: float) -> float:
    raw = environ.get(name) or f"{default:g}"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= most:
        raise ConfigError(f"{name}={raw!r} is not a number from 0 to {most:g} (e.g. {default:g})")
    return value


@dataclass(frozen=True)
class Account:
    """An Express-Chat account: its name in the warehouse and the variable holding its token."""

    name: str
    token_env: str


def parse_accounts(raw: str) -> tuple[Account, ...]:
    """`acme=ACME_TOKEN,beta=BETA_TOKEN`; empty means one account `default` on the usual token."""
    if not raw.strip():
        return (Account(DEFAULT_ACCOUNT, TOKEN_ENV),)
    accounts = []
    for item in raw.split(","):
        name, sep, token_env = (part.strip() for part in item.partition("="))
        if not sep or not ACCOUNT_NAME.fullmatch(name) or not token_env.isidentifier():
            raise ConfigError(
                f"{ACCOUNTS_ENV}={raw!r}: {item.strip()!r} is not name=TOKEN_VARIABLE (names "
                "are lower-case letters, digits and _), e.g. acme=ACME_EXPRESS_CHAT_TOKEN"
            )
        accounts.append(Account(name, token_env))
    if len({a.name for a in accounts}) != len(accounts):
        raise ConfigError(
            f"{ACCOUNTS_ENV}={raw!r} names an account twice; "
            "e.g. acme=ACME_EXPRESS_CHAT_TOKEN,beta=BETA_EXPRESS_CHAT_TOKEN"
        )
    return tuple(accounts)


@dataclass(frozen=True)
class Settings:
    """Non-secret settings. Secrets (token, database URL, PII key) reach Dagster as `EnvVar`s."""

    base_url: str
    schema: str
    start_date: date
    timezone: str
    home: Path
    accounts: tuple[Account, ...]
    max_days_per_run: int = DEFAULT_MAX_DAYS_PER_RUN
    reverify_days: int = DEFAULT_REVERIFY_DAYS
    """Every day since the start date is read completely again at least this often."""
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    """The nightly run re-reads the contacts active in this many last days."""
    max_delete_percent: float = DEFAULT_MAX_DELETE_PERCENT
    """A run deletes at most this share of the account's live contacts unless allowed once."""
    suspect_pause_seconds: float = DEFAULT_SUSPECT_PAUSE_SECONDS
    """How long a run waits before reading again a window that looks like an outage."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        timezone = environ.get(TIMEZONE_ENV) or "UTC"
        try:
            ZoneInfo(timezone)
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"{TIMEZONE_ENV}={timezone!r} is not a time zone; use an IANA name (Europe/Berlin)"
            ) from exc
        if timezone != "UTC" and "/" not in timezone:
            # CET, EET, MET, WET, EST5EDT...: Python reads the zone with its summer time,
            # PostgreSQL (the views' days) as a fixed abbreviation; an Area/City name is one
            # zone to both
            raise ConfigError(
                f"{TIMEZONE_ENV}={timezone!r} is ambiguous (PostgreSQL reads it as a fixed "
                "offset); use an Area/City name (Europe/Berlin) or UTC"
            )
        raw_start = environ.get(START_DATE_ENV) or DEFAULT_START_DATE
        try:
            start_date = date.fromisoformat(raw_start)
        except ValueError as exc:
            raise ConfigError(
                f"{START_DATE_ENV}={raw_start!r} is not a date; use YYYY-MM-DD (e.g. 2024-01-01)"
            ) from exc
        return cls(
            max_days_per_run=_days(environ, MAX_DAYS_PER_RUN_ENV, DEFAULT_MAX_DAYS_PER_RUN),
            reverify_days=_days(environ, REVERIFY_DAYS_ENV, DEFAULT_REVERIFY_DAYS),
            lookback_days=_days(environ, LOOKBACK_DAYS_ENV, DEFAULT_LOOKBACK_DAYS),
            max_delete_percent=_number(
                environ, MAX_DELETE_PERCENT_ENV, DEFAULT_MAX_DELETE_PERCENT, 100
            ),
            suspect_pause_seconds=_number(
                environ, SUSPECT_PAUSE_ENV, DEFAULT_SUSPECT_PAUSE_SECONDS, 3600
            ),
            base_url=(environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/"),
            schema=environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA,
            start_date=start_date,
            timezone=timezone,
            home=Path(environ.get(HOME_ENV) or DEFAULT_HOME),
            accounts=parse_accounts(environ.get(ACCOUNTS_ENV, "")),
        )

    @property
    def freshness(self) -> Freshness:
        return Freshness(self.start_date, self.reverify_days, self.lookback_days)

    def account(self, name: str | None) -> Account:
        """The named account, or the only one; a ConfigError names the known ones."""
        if name is None and len(self.accounts) == 1:
            return self.accounts[0]
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(a.name for a in self.accounts)
        raise ConfigError(f"no account {name!r} is configured (known: {known}); see {ACCOUNTS_ENV}")
