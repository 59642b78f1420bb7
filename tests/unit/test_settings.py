import re
from datetime import date

import pytest

from etl_contacts.settings import DEFAULT_BASE_URL, ConfigError, Settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.schema == "express_chat"
    assert settings.timezone == "UTC"
    assert settings.start_date == date(2024, 1, 1)


def test_a_trailing_slash_on_the_base_url_is_dropped() -> None:
    assert Settings.from_env({"EXPRESS_CHAT_BASE_URL": "http://h:1/"}).base_url == "http://h:1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ETL_CONTACTS_TIMEZONE": "Mars/Olympus"},
            "ETL_CONTACTS_TIMEZONE='Mars/Olympus' is not a time zone",
        ),
        (
            {"ETL_CONTACTS_TIMEZONE": "CET"},
            "ETL_CONTACTS_TIMEZONE='CET' is ambiguous (PostgreSQL reads it as a fixed offset)",
        ),
        (
            {"ETL_CONTACTS_START_DATE": "01/02/2024"},
            "ETL_CONTACTS_START_DATE='01/02/2024' is not a date; use YYYY-MM-DD (e.g. 2024-01-01)",
        ),
    ],
)
def test_a_bad_setting_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_one_default_account_unless_configured() -> None:
    (account,) = Settings.from_env({}).accounts
    assert (account.name, account.token_env) == ("default", "EXPRESS_CHAT_API_TOKEN")


def test_several_accounts_each_with_its_token_variable() -> None:
    settings = Settings.from_env({"ETL_CONTACTS_ACCOUNTS": "acme=ACME_TOKEN, beta=BETA_TOKEN"})
    assert [(a.name, a.token_env) for a in settings.accounts] == [
        ("acme", "ACME_TOKEN"),
        ("beta", "BETA_TOKEN"),
    ]
    assert settings.account("beta").token_env == "BETA_TOKEN"
    with pytest.raises(
        ConfigError, match=re.escape("no account None is configured (known: acme, beta)")
    ):
        settings.account(None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("acme", "ETL_CONTACTS_ACCOUNTS='acme': 'acme' is not name=TOKEN_VARIABLE"),
        ("Acme=T", "ETL_CONTACTS_ACCOUNTS='Acme=T': 'Acme=T' is not name=TOKEN_VARIABLE"),
        ("acme=T,acme=U", "ETL_CONTACTS_ACCOUNTS='acme=T,acme=U' names an account twice"),
        (
            "b=B,a=not valid",
            "ETL_CONTACTS_ACCOUNTS='b=B,a=not valid': 'a=not valid' is not name=TOKEN_VARIABLE",
        ),
    ],
)
def test_malformed_accounts_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({"ETL_CONTACTS_ACCOUNTS": raw})
